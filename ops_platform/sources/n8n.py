"""n8n (seed 003 sync_n8n, every 30 minutes): failed executions since the last sync, and incidents.

GET /api/v1/executions?status=error lists the newest first, `limit` at a time, with `nextCursor`; the
client follows it until it reaches executions that started at or before the watermark. Each one is kept
in `n8n_executions`; 3 or more failures of one workflow in this batch open a WARN incident
`repeated_failures` for `n8n workflow <id>` (deduplicated per workflow and hour). n8n names no rate limit;
its 429s and their Retry-After / X-RateLimit-Reset headers are obeyed (client.py).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import text

from ops_platform.monitoring.incidents import Incident, open_incidents
from ops_platform.notifications import Severity
from ops_platform.resources.postgres import PostgresResource
from ops_platform.framework.error_categories import VALIDATION
from ops_platform.sources.client import SourceClient, SourceFailed
from ops_platform.sources.sync import HealthRequest, SourceResource, Synced

KEY_VAR, URL_VAR = "OPS_N8N_API_KEY", "OPS_N8N_URL"
PAGE_SIZE = 100
FAILURES_FOR_INCIDENT = 3

SAVE_SQL = text("""
INSERT INTO n8n_executions (id, workflow_id, status, started_at, stopped_at)
SELECT id, "workflowId", status, "startedAt", "stoppedAt"
FROM jsonb_to_recordset(CAST(:rows AS jsonb))
     AS e(id text, "workflowId" text, status text, "startedAt" timestamptz, "stoppedAt" timestamptz)
ON CONFLICT (id) DO NOTHING
""")


class N8nSource(SourceResource):
    """n8n's API key comes from OPS_N8N_API_KEY (EnvVar); the instance's URL from OPS_N8N_URL."""

    name = "n8n"
    api_key: str | None = None
    base_url: str | None = None

    def needs(self) -> list[str]:
        return [var for var, value in ((URL_VAR, self.base_url), (KEY_VAR, self.api_key)) if not value]

    def fetch_and_store(self, postgres: PostgresResource, since: datetime | None) -> Synced:
        failed = self.failed_executions(postgres, since)
        per_workflow = Counter(str(e["workflowId"]) for e in failed)
        now = datetime.now(UTC)
        incidents = [Incident("repeated_failures", f"n8n workflow {workflow}", Severity.WARN,
                              f"Workflow {workflow} failed {count} times",
                              f"n8n workflow {workflow} failed {count} times since the last sync.")
                     for workflow, count in sorted(per_workflow.items()) if count >= FAILURES_FOR_INCIDENT]
        with postgres.begin() as conn:
            conn.execute(SAVE_SQL, {"rows": json.dumps(failed)})
            open_incidents(conn, incidents, now)
        newest = max((parse_time(e["startedAt"]) for e in failed), default=None)
        return Synced(len(failed), newest)

    def health_request(self) -> HealthRequest:
        return HealthRequest(self.base_url or "", "GET", "/api/v1/executions", self._headers(), params={"limit": 1})

    def _headers(self) -> dict:
        return {"X-N8N-API-KEY": self.api_key or "", "Accept": "application/json"}

    def failed_executions(self, postgres: PostgresResource, since: datetime | None) -> list[dict]:
        found, cursor = [], None
        with SourceClient("n8n", self.base_url or "", self._headers(), postgres, rule=self.retry_rule) as client:
            while True:
                params = {"status": "error", "limit": PAGE_SIZE} | ({"cursor": cursor} if cursor else {})
                answer = client.call("GET", "/api/v1/executions", params=params)
                data = answer.get("data")
                if not isinstance(data, list):
                    raise SourceFailed("n8n /api/v1/executions: no data list in the answer", VALIDATION)
                for execution in data:
                    if since is not None and parse_time(execution["startedAt"]) <= since:
                        return found  # newest first: the rest were seen by an earlier sync
                    found.append(execution)
                cursor = answer.get("nextCursor")
                if not cursor:
                    return found


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
