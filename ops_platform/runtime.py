"""Bring the platform's servers up (embedded or configured) and describe them as environment variables.

Used by the CLI and the tests alike, so `make run` and `make test` exercise one path.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ops_platform.embedded import EmbeddedPostgres, chdb_url, embedded_postgres
from ops_platform.resources.postgres import PostgresResource
from ops_platform.resources.warehouse import WarehouseResource
from ops_platform.settings import (
    DAGSTER_PG_URL_VAR,
    DATABASE_URL_VAR,
    PROJECT_ROOT,
    WAREHOUSE_URL_VAR,
    ConfigError,
    Settings,
    current,
)

PLATFORM_LOCK = "platform.lock"  # in OPS_HOME: held by a running `ops up`, holds its pid and URL


class PlatformRunning(ConfigError):
    """An `ops up` already runs on this data directory; the message names it (pid, URL)."""


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
        return WarehouseResource(url=self.env[WAREHOUSE_URL_VAR], database=current().warehouse_database)

    def stop(self) -> None:
        """Stop the embedded Postgres if this process started it, unless an `ops up` (another process)
        now runs on it: no command stops a Postgres it did not start or one a running platform uses."""
        if self.embedded and self.started_postgres:
            holder = running_platform(self.home)
            if holder is None or holder.get("pid") == os.getpid():
                self.embedded.stop()


def lock_platform(home: Path, url: str) -> IO[str]:
    """Take OPS_HOME's platform lock for `ops up`; the open file holds it (with our pid and URL) until
    closed or until the process dies, so a crashed `ops up` never blocks the next one.

    Raises PlatformRunning naming the running one (pid, URL) when another process holds it.
    """
    home.mkdir(parents=True, exist_ok=True)
    handle = open(home / PLATFORM_LOCK, "a+")  # "a+": never truncate the holder's pid and URL before we own it
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise PlatformRunning(_describe(home, running_platform(home) or {})) from None
    handle.truncate(0)
    handle.write(json.dumps({"pid": os.getpid(), "url": url}))
    handle.flush()
    return handle


def running_platform(home: Path) -> dict | None:
    """{"pid": …, "url": …} of the `ops up` holding OPS_HOME's platform lock, or None when none runs."""
    try:
        handle = open(home / PLATFORM_LOCK)
    except FileNotFoundError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                return json.loads(handle.read())
            except json.JSONDecodeError:  # the holder is still writing it
                return {}
        return None


def _describe(home: Path, holder: dict) -> str:
    where = home.relative_to(Path.cwd()) if home.is_relative_to(Path.cwd()) else home
    return (f"a platform is already running on {where} (pid {holder.get('pid', '?')}, "
            f"{holder.get('url', 'URL unknown')}); stop it first")


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
    settings = Settings.load()
    home = (home or settings.home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    env: dict[str, str] = {}
    runtime = Runtime(home=home, env=env)
    if settings.database_url:
        env[DATABASE_URL_VAR] = settings.database_url.get_secret_value()
        env[DAGSTER_PG_URL_VAR] = os.environ.get(DAGSTER_PG_URL_VAR) or env[DATABASE_URL_VAR]
        runtime.notes.append("Postgres: OPS_DATABASE_URL")
    else:
        pg = embedded_postgres(home)
        runtime.embedded, runtime.started_postgres = pg, pg.start()
        env[DATABASE_URL_VAR] = pg.create_database("ops")
        env[DAGSTER_PG_URL_VAR] = pg.create_database("dagster")
        kept = "" if runtime.started_postgres else " (already running: left running at exit)"
        runtime.notes.append(f"Postgres: embedded, {pg.pgdata} on 127.0.0.1:{pg.port()}{kept}")
    configured = settings.warehouse_url.get_secret_value() if settings.warehouse_url else None
    env[WAREHOUSE_URL_VAR] = configured or chdb_url(home)
    runtime.notes.append("Warehouse: " + ("OPS_WAREHOUSE_URL" if configured else env[WAREHOUSE_URL_VAR]))
    dagster_home = home / "dagster"
    dagster_home.mkdir(exist_ok=True)
    link = dagster_home / "dagster.yaml"
    if not link.exists():
        link.symlink_to(PROJECT_ROOT / "dagster.yaml")
    env["DAGSTER_HOME"] = str(dagster_home)
    os.environ.update(env)
    current.cache_clear()  # this process's settings are now the ones its children get
    return runtime
