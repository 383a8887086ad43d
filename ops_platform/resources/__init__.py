"""Resources, built from the environment. Anything that may hold a secret is an EnvVar."""

from __future__ import annotations

import os

import dagster as dg

from ops_platform.notifications import NotifierResource
from ops_platform.resources.postgres import PostgresResource
from ops_platform.resources.warehouse import WarehouseResource
from ops_platform.settings import DATABASE_URL_VAR, WAREHOUSE_URL_VAR, warehouse_database


def _optional_env(name: str) -> dg.EnvVar | None:
    return dg.EnvVar(name) if os.environ.get(name) else None


def build_resources() -> dict[str, dg.ConfigurableResource]:
    postgres = PostgresResource(url=dg.EnvVar(DATABASE_URL_VAR))
    return {
        "postgres": postgres,
        "warehouse": WarehouseResource(url=dg.EnvVar(WAREHOUSE_URL_VAR), database=warehouse_database()),
        "notifier": NotifierResource(
            postgres=postgres,
            webhook_url=_optional_env("OPS_WEBHOOK_URL"),
            webhook_secret=_optional_env("OPS_WEBHOOK_SECRET"),
        ),
    }
