"""The analytics warehouse: ClickHouse over HTTP, or chDB in process, through one clickhouse-connect client.

An on-disk chDB directory is usable by one process at a time. Dagster runs each step in its own
process, so in embedded mode a step opens the client late, closes it early, and waits (with
backoff and jitter) while another process holds the directory. Steps that touch the warehouse also
sit in the `warehouse` concurrency pool, whose limit follows the warehouse kind (warehouse_pool_limit:
1 for chDB, so they rarely wait at all; more for a ClickHouse server).
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

from ops_platform.settings import ConfigError, Settings

WAREHOUSE_POOL = "warehouse"
POOL_LIMIT_VAR = "OPS_WAREHOUSE_POOL_LIMIT"
SERVER_POOL_LIMIT = 8
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


def is_chdb(url: str) -> bool:
    return url.startswith("chdb:")


def warehouse_pool_limit(url: str, settings: Settings | None = None) -> int:
    """How many steps the `warehouse` pool lets run at once for the warehouse at `url`: 1 for chDB (an on-disk
    chDB directory is usable by one process at a time), else OPS_WAREHOUSE_POOL_LIMIT (default 8) for a
    ClickHouse server. Raises ConfigError for a limit that is not a whole number above 0, or above 1 for chDB.
    `settings`: read now when not given (the CLI sets the limit when it starts the platform)."""
    configured = (settings or Settings.load()).warehouse_pool_limit
    if is_chdb(url):
        if configured not in (None, 1):
            raise ConfigError(f"{POOL_LIMIT_VAR} cannot raise the limit for chDB, whose directory is one process's "
                              "at a time: unset it, or use a ClickHouse server (OPS_WAREHOUSE_URL=http(s)://…)")
        return 1
    return configured or SERVER_POOL_LIMIT


def apply_pool_limit(instance: dg.DagsterInstance, url: str) -> int:
    """Set the `warehouse` pool's limit in Dagster's instance from the warehouse kind (`ops up`, `ops migrate`);
    returns it. Lowering it lets the steps that hold slots finish; new ones wait."""
    limit = warehouse_pool_limit(url)
    instance.event_log_storage.set_concurrency_slots(WAREHOUSE_POOL, limit)
    return limit


class WarehouseResource(dg.ConfigurableResource):
    """ClickHouse (`http(s)://…`) or chDB (`chdb:///dir`). The URL comes from the environment (EnvVar)."""

    url: str = Field(description="ClickHouse DSN: http(s)://user:password@host:8123 or chdb:///absolute/dir")
    database: str = Field(default="ops", description="ClickHouse database holding the platform's tables.")
    lock_wait_seconds: float = Field(default=300.0, description="How long to wait for chDB's directory lock.")
    pull_postgres_url: str | None = Field(
        default=None, description="When set, ClickHouse pulls synced rows from this Postgres URL (postgresql() table "
        "function) instead of the platform streaming them; it must be reachable from ClickHouse. EnvVar.")
    parallel_from_rows: int = Field(
        default=300_000, gt=0, description="A sync window Postgres estimates at this many rows or more moves in "
        "parallel key ranges (OPS_SYNC_PARALLEL_FROM_ROWS).")

    @property
    def embedded(self) -> bool:
        return is_chdb(self.url)

    @contextmanager
    def client(self) -> Iterator[Client]:
        """Open late, close early: hold the warehouse only for the block. One open per block (starting
        chDB's engine is most of an incremental sync's fixed cost), creating the database the first time."""
        client = open_client(self.url, None, self.lock_wait_seconds)
        try:
            key = (self.url, self.database)
            if key not in _databases_made:
                client.command(f"CREATE DATABASE IF NOT EXISTS `{self.database}`")
                _databases_made.add(key)
            client.database = self.database
            yield client
        finally:
            client.close()
