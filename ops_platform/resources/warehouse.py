"""The analytics warehouse: ClickHouse over HTTP, or chDB in process, through one clickhouse-connect client.

An on-disk chDB directory is usable by one process at a time. Dagster runs each step in its own
process, so in embedded mode a step opens the client late, closes it early, and waits (with
backoff and jitter) while another process holds the directory. Steps that touch the warehouse also
sit in the `warehouse` concurrency pool, limited to 1 in dagster.yaml, so they rarely wait at all.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager

import clickhouse_connect
import dagster as dg
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ProgrammingError
from pydantic import Field

from ops_platform.schema.cluster import WarehouseLayout, run_ddl

WAREHOUSE_POOL = "warehouse"
WAITING_MESSAGE = "the embedded warehouse directory is in use by another process; waiting"
log = logging.getLogger("ops_platform.warehouse")
_LOCKED = "Unable to open the chdb engine"
_databases_made: set[tuple[str, str]] = set()


class WarehouseBusy(TimeoutError):
    """Another process kept the embedded warehouse directory for longer than we were willing to wait."""


def open_client(url: str, database: str | None = None, wait_seconds: float = 300.0) -> Client:
    """A client for `url`; for chDB, wait while another process holds the directory."""
    deadline = time.monotonic() + wait_seconds
    delay, waited = 0.05, False
    while True:
        try:
            return clickhouse_connect.get_client(dsn=url, database=database)
        except ProgrammingError as err:
            if _LOCKED not in str(err):
                raise
            if not waited:
                log.info("%s (up to %.0fs)", WAITING_MESSAGE, wait_seconds)
                waited = True
            if time.monotonic() >= deadline:
                raise WarehouseBusy(
                    f"the embedded warehouse directory stayed locked by another process for {wait_seconds:.0f}s"
                ) from None
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 1.0)


class WarehouseResource(dg.ConfigurableResource):
    """ClickHouse (`http(s)://…`) or chDB (`chdb:///dir`). The URL comes from the environment (EnvVar)."""

    url: str = Field(description="ClickHouse DSN: http(s)://user:password@host:8123 or chdb:///absolute/dir")
    database: str = Field(default="ops", description="ClickHouse database holding the platform's tables.")
    lock_wait_seconds: float = Field(default=300.0, description="How long to wait for chDB's directory lock.")
    pull_postgres_url: str | None = Field(
        default=None, description="When set, ClickHouse pulls synced rows from this Postgres URL (postgresql() table "
        "function) instead of the platform streaming them; it must be reachable from ClickHouse. EnvVar.")

    @property
    def embedded(self) -> bool:
        return self.url.startswith("chdb:")

    @contextmanager
    def client(self) -> Iterator[Client]:
        """Open late, close early: hold the warehouse only for the block. One open per block (starting
        chDB's engine is most of an incremental sync's fixed cost), creating the database the first time."""
        client = open_client(self.url, None, self.lock_wait_seconds)
        try:
            key = (self.url, self.database)
            if key not in _databases_made:
                run_ddl(client, f"CREATE DATABASE IF NOT EXISTS `{self.database}`")
                _databases_made.add(key)
            client.database = self.database
            for name, value in WarehouseLayout.from_settings().session_settings().items():
                client.set_client_setting(name, value)
            yield client
        finally:
            client.close()
