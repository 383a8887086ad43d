"""Notion (seed 003 sync_notion, hourly): pages tagged SOP / Canonical / Final become canonical memory_items.

Notion's search (POST /v1/search) filters only by object type, so every page is listed, 100 a request,
following `next_cursor` while `has_more`, and the tag filter (a multi-select property, `Tags` by default,
containing any of the tags) is applied here. A page whose content (title, tags, URL, last edit) changed
supersedes its current row (`notion.page.<id>`, authority canonical, reason canonical_update).
At most 3 requests per second across processes (rate_limit.py); 429s wait as Notion's Retry-After asks.
"""

from __future__ import annotations

from datetime import datetime

from ops_platform.resources.postgres import PostgresResource
from ops_platform.framework.error_categories import VALIDATION
from ops_platform.sources.client import SourceClient, SourceFailed
from ops_platform.sources.memory_items import CANONICAL, store
from ops_platform.sources.rate_limit import RateLimit
from ops_platform.sources.sync import HealthRequest, SourceResource, Synced

NOTION_VERSION = "2022-06-28"
RATE_LIMIT = RateLimit("notion", limit=3, window_seconds=1)
TOKEN_VAR, URL_VAR = "OPS_NOTION_TOKEN", "OPS_NOTION_URL"
PAGE_SIZE = 100


class NotionSource(SourceResource):
    """Notion's integration token comes from OPS_NOTION_TOKEN (EnvVar); base_url from OPS_NOTION_URL."""

    name = "notion"
    token: str | None = None
    base_url: str = "https://api.notion.com"
    tags: list[str] = ["SOP", "Canonical", "Final"]
    tag_property: str = "Tags"

    def needs(self) -> list[str]:
        return [] if self.token else [TOKEN_VAR]

    def fetch_and_store(self, postgres: PostgresResource, since: datetime | None) -> Synced:
        pages = [p for p in self.search_pages(postgres) if set(page_tags(p, self.tag_property)) & set(self.tags)]
        items = {f"notion.page.{p['id']}": page_item(p, self.tag_property) for p in pages}
        with postgres.begin() as conn:
            store(conn, items, authority=CANONICAL, source_type="notion", reason="canonical_update")
        newest = max((p["last_edited_time"] for p in pages), default=None)
        return Synced(len(pages), datetime.fromisoformat(newest.replace("Z", "+00:00")) if newest else None)

    def health_request(self) -> HealthRequest:
        return HealthRequest(self.base_url, "POST", "/v1/search", self._headers(),
                             json={"filter": {"property": "object", "value": "page"}, "page_size": 1})

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}", "Notion-Version": NOTION_VERSION}

    def search_pages(self, postgres: PostgresResource) -> list[dict]:
        """Every page the integration can see, following Notion's cursor."""
        headers = self._headers()
        pages, cursor = [], None
        with SourceClient("notion", self.base_url, headers, postgres, RATE_LIMIT, self.retry_rule) as client:
            while True:
                body = {"filter": {"property": "object", "value": "page"}, "page_size": PAGE_SIZE}
                if cursor:
                    body["start_cursor"] = cursor
                answer = client.call("POST", "/v1/search", json=body)
                if not isinstance(answer.get("results"), list):
                    raise SourceFailed("notion /v1/search: no results list in the answer", VALIDATION)
                pages += [r for r in answer["results"] if r.get("object") == "page"]
                cursor = answer.get("next_cursor")
                if not answer.get("has_more") or not cursor:
                    return pages


def page_tags(page: dict, tag_property: str) -> list[str]:
    prop = (page.get("properties") or {}).get(tag_property) or {}
    return [option.get("name") for option in prop.get("multi_select") or []]


def page_title(page: dict) -> str:
    for prop in (page.get("properties") or {}).values():
        if isinstance(prop, dict) and prop.get("type") == "title":
            return "".join(part.get("plain_text", "") for part in prop.get("title") or [])
    return ""


def page_item(page: dict, tag_property: str) -> dict:
    return {"id": page["id"], "title": page_title(page), "url": page.get("url"),
            "tags": page_tags(page, tag_property), "last_edited_time": page["last_edited_time"]}
