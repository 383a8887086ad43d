"""The sources as the environment configures them: secrets as `dg.EnvVar`, URLs and demo mode as settings.

| source    | needs                                 | optional                          |
|-----------|---------------------------------------|-----------------------------------|
| notion    | OPS_NOTION_TOKEN                      | OPS_NOTION_URL (api.notion.com)   |
| n8n       | OPS_N8N_URL, OPS_N8N_API_KEY          |                                   |
| hubspot   | OPS_HUBSPOT_TOKEN                     | OPS_HUBSPOT_URL (api.hubapi.com)  |
| chat_logs | nothing (the chat_logs table)         |                                   |

Demo mode (`ops up --demo`) starts the local stand-ins (standins.py) and sets these variables to them, so
the same code path runs against a server that speaks the providers' shapes.
"""

from __future__ import annotations

from collections.abc import Mapping

from ops_platform.settings import Settings, current
from ops_platform.sources import hubspot, n8n, notion
from ops_platform.sources.chat_logs import ChatLogsSource
from ops_platform.sources.hubspot import HubSpotSource
from ops_platform.sources.n8n import N8nSource
from ops_platform.sources.notion import NotionSource
from ops_platform.sources.standins import DEMO_TOKEN
from ops_platform.sources.sync import SourceResource

def build_sources(settings: Settings | None = None) -> dict[str, SourceResource]:
    """{resource key: source}, from the settings (a malformed URL has already stopped the load, named)."""
    s = settings or current()
    return {
        "notion_source": NotionSource(token=s.secret_env(notion.TOKEN_VAR), base_url=s.notion_url),
        "n8n_source": N8nSource(api_key=s.secret_env(n8n.KEY_VAR), base_url=s.n8n_url),
        "hubspot_source": HubSpotSource(token=s.secret_env(hubspot.TOKEN_VAR), base_url=s.hubspot_url),
        "chat_logs_source": ChatLogsSource(),
    }


def needs(settings: Settings | None = None) -> dict[str, list[str]]:
    """What each source still needs (environment variable names, never values); [] when configured."""
    return {source.name: source.needs() for source in build_sources(settings).values()}


def demo_environment(base_url: str, configured: Mapping[str, str]) -> dict[str, str]:
    """The variables that point the sources at the stand-ins at `base_url`: every source none of whose
    variables is set in `configured` (the environment); a configured source keeps its own, untouched."""
    groups = [(notion.URL_VAR, notion.TOKEN_VAR), (n8n.URL_VAR, n8n.KEY_VAR), (hubspot.URL_VAR, hubspot.TOKEN_VAR)]
    return {var: value for url_var, secret_var in groups if not (configured.get(url_var) or configured.get(secret_var))
            for var, value in ((url_var, base_url), (secret_var, DEMO_TOKEN))}
