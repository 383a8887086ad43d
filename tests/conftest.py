"""Shared test infrastructure: real Postgres, real chDB, real HTTP servers.

One embedded PostgreSQL serves the whole session (or the server in OPS_TEST_DATABASE_URL). Each
test gets its own database, cloned from a migrated template in milliseconds, and its own
ClickHouse database inside the session's one chDB directory (chDB allows one directory per process).
Under pytest-xdist every worker is such a session: its own server, template and chDB directory.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from ops_platform.embedded import chdb_url, embedded_postgres
from ops_platform.resources.postgres import PostgresResource, engine_for
from ops_platform.resources.warehouse import WarehouseResource
from ops_platform.schema.migrate import migrate_postgres, migrate_warehouse

TEMPLATE = f"ops_template_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"  # one per worker on a shared server
_ids = itertools.count(1)


class Server:
    """Where test databases are made: the embedded server or OPS_TEST_DATABASE_URL's server."""

    def __init__(self, admin_url: str):
        self.admin_url = admin_url

    def url(self, database: str) -> str:
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{database}"

    def create(self, database: str, template: str | None = None) -> str:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{database}"' + (f' TEMPLATE "{template}"' if template else ""))
        return self.url(database)


@pytest.fixture(scope="session")
def ops_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ops_home")


@pytest.fixture(scope="session")
def pg_server(ops_home):
    given = os.environ.get("OPS_TEST_DATABASE_URL")
    embedded = None
    if given:
        server = Server(given)
    else:
        embedded = embedded_postgres(ops_home)
        embedded.start()
        server = Server(embedded.url("postgres"))
    template_url = server.create(TEMPLATE)
    migrate_postgres(PostgresResource(url=template_url))
    engine_for(template_url).dispose()  # a template must have no sessions to be cloned
    yield server
    if embedded:
        embedded.stop()


@pytest.fixture
def database_url(pg_server) -> str:
    url = pg_server.create(f"test_{os.getpid()}_{next(_ids)}", template=TEMPLATE)
    yield url
    engine_for(url).dispose()


@pytest.fixture
def postgres(database_url) -> PostgresResource:
    return PostgresResource(url=database_url)


@pytest.fixture(scope="session")
def warehouse_url(ops_home) -> str:
    return chdb_url(ops_home)


@pytest.fixture
def warehouse(warehouse_url) -> WarehouseResource:
    resource = WarehouseResource(url=warehouse_url, database=f"test_{next(_ids)}")
    migrate_warehouse(resource)
    return resource


@pytest.fixture
def platform_env(monkeypatch, database_url, warehouse):
    """The environment the code location reads, pointing at this test's databases."""
    monkeypatch.setenv("OPS_DATABASE_URL", database_url)
    monkeypatch.setenv("OPS_WAREHOUSE_URL", warehouse.url)
    monkeypatch.setenv("OPS_WAREHOUSE_DATABASE", warehouse.database)
    return {"postgres": database_url, "warehouse": warehouse}


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst



@pytest.fixture(params=["client", "server"])
def wh(request, warehouse, database_url) -> WarehouseResource:
    """A sync test on both paths: the platform streaming rows, and ClickHouse pulling them itself."""
    return WarehouseResource(url=warehouse.url, database=warehouse.database,
                             pull_postgres_url=database_url if request.param == "server" else None)


@pytest.fixture
def settings_env(monkeypatch):
    """Set environment variables as a deploy would: this process's settings are read again from them
    (and once more after the test, from the environment as it was)."""
    from ops_platform.settings import current

    def setenv(name: str, value: str) -> None:
        monkeypatch.setenv(name, value)
        current.cache_clear()

    yield setenv
    current.cache_clear()
