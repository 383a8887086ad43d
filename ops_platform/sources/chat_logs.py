"""Chat logs (seed 003 syncChatLogs): the assistant's conversations, from the `chat_logs` table.

The chat front end writes one row per message into Postgres (no external API, so no rate limit and no
api_calls). A sync reads the conversations with messages newer than the watermark and stores each one
whole as a memory item `chat.conversation.<id>` (authority inferred, source_type chat): a conversation
that grew supersedes its previous row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text

from ops_platform.resources.postgres import PostgresResource
from ops_platform.sources.memory_items import INFERRED, store
from ops_platform.sources.sync import SourceResource, Synced

CHANGED_SQL = text("""
WITH touched AS (
    SELECT DISTINCT conversation_id FROM chat_logs WHERE CAST(:since AS timestamptz) IS NULL OR ts > :since
)
SELECT c.conversation_id, jsonb_agg(jsonb_build_object('role', c.role, 'content', c.content, 'ts', c.ts)
                                    ORDER BY c.ts, c.id) AS messages, max(c.ts) AS newest
FROM chat_logs c JOIN touched USING (conversation_id)
GROUP BY c.conversation_id
""")


class ChatLogsSource(SourceResource):
    """Always configured: the table is in the operational database."""

    name = "chat_logs"

    def fetch_and_store(self, postgres: PostgresResource, since: datetime | None) -> Synced:
        with postgres.begin() as conn:
            rows = conn.execute(CHANGED_SQL, {"since": since}).all()
            store(conn, {f"chat.conversation.{r.conversation_id}": {"messages": r.messages} for r in rows},
                  authority=INFERRED, source_type="chat", reason="conversation_update")
        return Synced(len(rows), max((r.newest for r in rows), default=None))
