"""Demo mode for seed 003's sources (`ops up --demo`, what `make run` uses): local stand-ins, chat logs.

The stand-ins (sources/standins.py) run in the `ops up` process on a free port of 127.0.0.1, and every
source that is not configured is pointed at them through its environment variables, which the Dagster
processes inherit (`ops up` exports them): the syncs, the scan and the health monitor run their real code against a server that
speaks Notion's, n8n's and HubSpot's shapes. A source configured for real keeps its own settings.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import text

from ops_platform.resources.postgres import PostgresResource
from ops_platform.sources.configured import demo_environment
from ops_platform.sources.standins import StandIns, demo_standins

CHAT_SQL = text("""
INSERT INTO chat_logs (conversation_id, role, content, ts)
SELECT * FROM (VALUES
    ('demo-1', 'user', 'What failed overnight?', now() - interval '50 minutes'),
    ('demo-1', 'assistant', 'The invoices workflow failed 4 times; I opened an incident.', now() - interval '49 minutes'),
    ('demo-2', 'user', 'Remind me of the pricing SOP.', now() - interval '10 minutes')
) AS m(conversation_id, role, content, ts)
WHERE NOT EXISTS (SELECT 1 FROM chat_logs)
""")


def start_demo_sources(postgres: PostgresResource, configured: Mapping[str, str]) -> tuple[StandIns, dict[str, str]]:
    """Start the stand-ins and add demo chat logs once. Returns the running stand-ins (stop them on exit) and
    the variables that point the sources not set in `configured` (the environment) at them: the caller
    (`ops up`) exports them to the Dagster processes. Their values are demo tokens, not secrets."""
    standins = demo_standins().start()
    env = demo_environment(standins.base_url, configured)
    with postgres.begin() as conn:
        conn.execute(CHAT_SQL)
    return standins, env
