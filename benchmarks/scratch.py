"""A throwaway embedded Postgres (and chDB directory) for a benchmark run, removed afterwards."""

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ops_platform.embedded import embedded_postgres
from ops_platform.resources.postgres import PostgresResource
from ops_platform.schema.migrate import migrate_postgres


@contextmanager
def scratch_platform() -> Iterator[tuple[Path, PostgresResource]]:
    """(data directory, migrated Postgres): everything is gone when the block ends."""
    with tempfile.TemporaryDirectory(prefix="ops-bench-") as home:
        pg = embedded_postgres(Path(home))
        pg.start()
        try:
            postgres = PostgresResource(url=pg.create_database("bench"))
            migrate_postgres(postgres)
            yield Path(home), postgres
        finally:
            pg.stop()
