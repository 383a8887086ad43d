"""HubSpot (seed 003 sync_hubspot, hourly, read-only): contacts modified since the last sync.

POST /crm/v3/objects/contacts/search with a `lastmodifieddate GTE <watermark in ms>` filter, sorted
ascending, 100 a page, following `paging.next.after`. Each contact is stored as a memory item
`hubspot.contact.<id>` (authority inferred, source_type hubspot); an unchanged one writes nothing.
At most 100 requests per 10 seconds across processes (rate_limit.py), with exponential backoff on 429.
"""

from __future__ import annotations

from datetime import datetime

from ops_platform.resources.postgres import PostgresResource
from ops_platform.framework.error_categories import VALIDATION
from ops_platform.sources.client import SourceClient, SourceFailed
from ops_platform.sources.memory_items import INFERRED, store
from ops_platform.sources.rate_limit import RateLimit
from ops_platform.sources.sync import HealthRequest, SourceResource, Synced

RATE_LIMIT = RateLimit("hubspot", limit=100, window_seconds=10)
TOKEN_VAR, URL_VAR = "OPS_HUBSPOT_TOKEN", "OPS_HUBSPOT_URL"
PAGE_SIZE = 100
PROPERTIES = ["email", "firstname", "lastname", "company", "lifecyclestage", "lastmodifieddate"]


class HubSpotSource(SourceResource):
    """A private app's access token from OPS_HUBSPOT_TOKEN (EnvVar); base_url from OPS_HUBSPOT_URL."""

    name = "hubspot"
    token: str | None = None
    base_url: str = "https://api.hubapi.com"

    def needs(self) -> list[str]:
        return [] if self.token else [TOKEN_VAR]

    def fetch_and_store(self, postgres: PostgresResource, since: datetime | None) -> Synced:
        contacts = self.modified_contacts(postgres, since)
        items = {f"hubspot.contact.{c['id']}": c for c in contacts}
        with postgres.begin() as conn:
            store(conn, items, authority=INFERRED, source_type="hubspot", reason="hubspot_update")
        newest = max((c["updatedAt"] for c in contacts), default=None)
        return Synced(len(contacts), datetime.fromisoformat(newest.replace("Z", "+00:00")) if newest else None)

    def health_request(self) -> HealthRequest:
        return HealthRequest(self.base_url, "POST", "/crm/v3/objects/contacts/search",
                             {"Authorization": f"Bearer {self.token}"}, json={"limit": 1, "properties": ["email"]})

    def modified_contacts(self, postgres: PostgresResource, since: datetime | None) -> list[dict]:
        since_ms = int(since.timestamp() * 1000) if since else 0
        contacts, after = [], None
        with SourceClient("hubspot", self.base_url, {"Authorization": f"Bearer {self.token}"}, postgres,
                          RATE_LIMIT, self.retry_rule) as client:
            while True:
                body = {"filterGroups": [{"filters": [
                            {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(since_ms)}]}],
                        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
                        "properties": PROPERTIES, "limit": PAGE_SIZE}
                if after:
                    body["after"] = after
                answer = client.call("POST", "/crm/v3/objects/contacts/search", json=body)
                if not isinstance(answer.get("results"), list):
                    raise SourceFailed("hubspot contacts search: no results list in the answer", VALIDATION)
                contacts += answer["results"]
                after = ((answer.get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    return contacts
