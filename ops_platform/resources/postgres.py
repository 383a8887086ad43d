"""The operational database: one SQLAlchemy engine per process and URL, sessions pinned to UTC."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import dagster as dg
from pydantic import Field
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.exc import OperationalError

from ops_platform.settings import redact_url


class DatabaseUnavailable(RuntimeError):
    """The operational database cannot be reached. The message names where, never with credentials."""


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """A small pool per process. Runs are short-lived processes; the pool closes with them."""
    sa_url = url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith("postgresql://") else url
    return create_engine(
        sa_url,
        pool_size=2,
        max_overflow=4,
        pool_pre_ping=True,
        pool_recycle=300,
        connect_args={"options": "-c timezone=UTC", "application_name": "ops_platform", "connect_timeout": 5},
    )


@contextmanager
def reachable(url: str) -> Iterator[None]:
    """Turn a connection failure into one clear sentence instead of a driver traceback."""
    try:
        yield
    except OperationalError as err:
        if err.connection_invalidated or "connection" in str(err.orig).lower():
            reason = str(err.orig).strip().splitlines()[0] if err.orig else "unreachable"
            raise DatabaseUnavailable(
                f"cannot reach the operational database at {redact_url(url)}: {reason}. "
                "Check OPS_DATABASE_URL, or start the embedded defaults with `make run`."
            ) from None
        raise


class PostgresResource(dg.ConfigurableResource):
    """Postgres, the operational database. `url` comes from the environment (EnvVar): it may hold a password."""

    url: str = Field(description="SQLAlchemy/libpq URL of the operational database.")

    @property
    def engine(self) -> Engine:
        return engine_for(self.url)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction: committed when the block ends, rolled back on error."""
        with reachable(self.url), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def raw(self):
        """A psycopg connection (for COPY), committed at the end of the block."""
        with reachable(self.url):
            pooled = self.engine.raw_connection()
        try:
            yield pooled.driver_connection
            pooled.commit()
        except BaseException:
            pooled.rollback()
            raise
        finally:
            pooled.close()

    def where(self) -> str:
        return redact_url(self.url)
