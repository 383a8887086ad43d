"""Bring the platform's servers up (embedded or configured) and describe them as environment variables.

Used by the CLI and the tests alike, so `make run` and `make test` exercise one path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ops_platform.embedded import EmbeddedPostgres, chdb_url, embedded_postgres
from ops_platform.resources.postgres import PostgresResource
from ops_platform.resources.warehouse import WarehouseResource
from ops_platform.settings import (
    DAGSTER_PG_URL_VAR,
    DATABASE_URL_VAR,
    PROJECT_ROOT,
    WAREHOUSE_URL_VAR,
    ops_home,
    warehouse_database,
)


@dataclass
class Runtime:
    home: Path
    env: dict[str, str]
    embedded: EmbeddedPostgres | None = None
    started_postgres: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def postgres(self) -> PostgresResource:
        return PostgresResource(url=self.env[DATABASE_URL_VAR])

    @property
    def warehouse(self) -> WarehouseResource:
        return WarehouseResource(url=self.env[WAREHOUSE_URL_VAR], database=warehouse_database())

    def stop(self) -> None:
        if self.embedded and self.started_postgres:
            self.embedded.stop()


@contextmanager
def running(home: Path | None = None) -> Iterator[Runtime]:
    """The platform's servers for the duration of a command; an embedded server it started stops after."""
    runtime = start(home)
    try:
        yield runtime
    finally:
        runtime.stop()


def start(home: Path | None = None) -> Runtime:
    """Use OPS_DATABASE_URL / OPS_WAREHOUSE_URL when set, else the embedded defaults under OPS_HOME."""
    home = home or ops_home()
    home.mkdir(parents=True, exist_ok=True)
    env: dict[str, str] = {}
    runtime = Runtime(home=home, env=env)
    if os.environ.get(DATABASE_URL_VAR):
        env[DATABASE_URL_VAR] = os.environ[DATABASE_URL_VAR]
        env[DAGSTER_PG_URL_VAR] = os.environ.get(DAGSTER_PG_URL_VAR, os.environ[DATABASE_URL_VAR])
        runtime.notes.append("Postgres: OPS_DATABASE_URL")
    else:
        pg = embedded_postgres(home)
        runtime.embedded, runtime.started_postgres = pg, pg.start()
        env[DATABASE_URL_VAR] = pg.create_database("ops")
        env[DAGSTER_PG_URL_VAR] = pg.create_database("dagster")
        runtime.notes.append(f"Postgres: embedded, {pg.pgdata} on 127.0.0.1:{pg.port()}")
    env[WAREHOUSE_URL_VAR] = os.environ.get(WAREHOUSE_URL_VAR) or chdb_url(home)
    runtime.notes.append("Warehouse: " + ("OPS_WAREHOUSE_URL" if os.environ.get(WAREHOUSE_URL_VAR) else env[WAREHOUSE_URL_VAR]))
    dagster_home = home / "dagster"
    dagster_home.mkdir(exist_ok=True)
    link = dagster_home / "dagster.yaml"
    if not link.exists():
        link.symlink_to(PROJECT_ROOT / "dagster.yaml")
    env["DAGSTER_HOME"] = str(dagster_home)
    os.environ.update(env)
    return runtime
