"""Is ClickHouse's FINAL view of a synced table the same as Postgres? Counts and an order-free checksum.

The checksum sums (key × 1000003 + version) mod 1000000007 over the live rows on each side, so a
missing, extra or stale row (an older version of a key) changes it; it reads each table once.
"""

from sqlalchemy import text

from ops_platform.resources.postgres import PostgresResource
from ops_platform.resources.warehouse import WarehouseResource
from ops_platform.sync.spec import SyncedTable

POSTGRES_PARITY_SQL = "SELECT count(*), coalesce(sum(({key} * 1000003 + {version}) % 1000000007), 0) FROM {table}"
WAREHOUSE_PARITY_SQL = "SELECT count(), sum((toInt128({key}) * 1000003 + _version) % 1000000007) FROM {table} FINAL"
# Rows of the active parts, free to read; rows not yet merged away (older versions, tombstones) count
# too, so it is an upper bound of `count() FINAL`, which would read the whole table.
STORED_ROWS_SQL = ("SELECT sum(rows) FROM system.parts WHERE database = currentDatabase() "
                   "AND table = {t:String} AND active")


def parity_postgres(table: SyncedTable, postgres: PostgresResource) -> tuple[int, int]:
    """(rows, checksum) of the Postgres table."""
    sql = POSTGRES_PARITY_SQL.format(key=table.key, version=table.version_expression(), table=table.name)
    with postgres.begin() as conn:
        row = conn.execute(text(sql)).one()
    return int(row[0]), int(row[1])


def parity_warehouse(table: SyncedTable, warehouse: WarehouseResource) -> tuple[int, int]:
    """(rows, checksum) of the ClickHouse table read FINAL."""
    with warehouse.client() as ch:
        row = ch.query(WAREHOUSE_PARITY_SQL.format(key=table.key, table=table.name)).result_rows[0]
    return int(row[0]), int(row[1] or 0)


def stored_rows(ch, table: str) -> int:
    """`dagster/row_count` of a synced table (an upper bound of its live rows, see STORED_ROWS_SQL)."""
    return int(ch.query(STORED_ROWS_SQL, parameters={"t": table}).result_rows[0][0] or 0)
