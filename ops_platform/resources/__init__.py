"""Resources, built from the environment. Anything that may hold a secret is an EnvVar."""

from __future__ import annotations

import json
import os

import dagster as dg

from ops_platform.notifications import NotifierResource
from ops_platform.notifications.policy import DEFAULT_ALIASES, DEFAULT_ROUTES
from ops_platform.resources.postgres import PostgresResource
from ops_platform.resources.warehouse import WarehouseResource
from ops_platform.settings import DATABASE_URL_VAR, WAREHOUSE_URL_VAR, ConfigError, warehouse_database


def _optional_env(name: str) -> dg.EnvVar | None:
    return dg.EnvVar(name) if os.environ.get(name) else None


def _json_env(name: str, default: dict) -> dict:
    """A JSON object from the environment, checked when the code location loads."""
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{name} is not valid JSON ({err.msg} at position {err.pos})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a JSON object, e.g. {json.dumps(default)}")
    return value


def build_resources() -> dict[str, dg.ConfigurableResource]:
    postgres = PostgresResource(url=dg.EnvVar(DATABASE_URL_VAR))
    return {
        "postgres": postgres,
        "warehouse": WarehouseResource(url=dg.EnvVar(WAREHOUSE_URL_VAR), database=warehouse_database(),
                                       pull_postgres_url=_optional_env("OPS_SYNC_PULL_URL")),
        "notifier": NotifierResource(
            postgres=postgres,
            webhook_url=_optional_env("OPS_WEBHOOK_URL"),
            webhook_secret=_optional_env("OPS_WEBHOOK_SECRET"),
            routes=_json_env("OPS_NOTIFY_ROUTES", DEFAULT_ROUTES),
            aliases=_json_env("OPS_NOTIFY_ALIASES", DEFAULT_ALIASES),
        ),
    }
