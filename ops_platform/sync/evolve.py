"""The warehouse follows the Postgres schema of a synced table (issue 9, as PeerDB, dlt and Airbyte do).

| Postgres change | ClickHouse | then |
|---|---|---|
| column added | `ADD COLUMN` with its type | the platform backfills the whole table (warehouse_backfill_sensor) |
| column dropped | kept, made Nullable (an Array keeps `[]`), no longer filled | nothing |
| type widened (int → bigint, real → double, numeric precision or scale up, NOT NULL dropped, varchar longer) | `MODIFY COLUMN` in place | nothing |
| anything else (narrowing, an unrelated type) | unchanged | this table's sync stops with one sentence naming `table.column` and the way out; other tables go on |

Each decision is recorded in `sync_schema_changes` and the audit log, and shown on the asset's run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import text

from ops_platform.framework.audit import record
from ops_platform.resources.postgres import PostgresResource
from ops_platform.sync.types import Column

Change = Literal["added", "retired", "widened", "refused"]
SYNC_COLUMNS = ("_version", "_deleted")
_INTS = ("Int16", "Int32", "Int64")
_FLOATS = ("Float32", "Float64")

RECORD_CHANGE_SQL = text("""
INSERT INTO sync_schema_changes (table_name, column_name, change, detail, needs_backfill)
VALUES (:table, :column, :change, :detail, :backfill)
ON CONFLICT (table_name, column_name, detail) WHERE change = 'refused' DO NOTHING
RETURNING id
""")
PENDING_BACKFILLS_SQL = text(
    "SELECT table_name, max(id) FROM sync_schema_changes WHERE needs_backfill AND backfilled_at IS NULL "
    "GROUP BY table_name ORDER BY table_name"
)
MARK_BACKFILLED_SQL = text(
    "UPDATE sync_schema_changes SET backfilled_at = now(), backfill_run_id = :run "
    "WHERE table_name = :table AND needs_backfill AND backfilled_at IS NULL AND column_name = ANY(:columns)"
)
RETIRED_BEFORE_SQL = text(
    "SELECT 1 FROM sync_schema_changes WHERE table_name = :table AND column_name = :column AND change = 'retired'"
)
# The ClickHouse ALTERs a SchemaChange carries. An added column's COMMENT is its Postgres identity
# (Column.identity); `position` is " AFTER `<previous column>`" or " FIRST", to keep Postgres' order.
RENAME_COLUMN_SQL = "ALTER TABLE {table} RENAME COLUMN `{name}` TO `{new_name}`"
ADD_COLUMN_SQL = "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS `{name}` {type} COMMENT '{identity}'{position}"
MODIFY_COLUMN_SQL = "ALTER TABLE {table} MODIFY COLUMN `{name}` {type}"


class SchemaDrift(RuntimeError):
    """A Postgres change ClickHouse cannot follow safely: this table's sync stops until someone decides."""


@dataclass(frozen=True)
class SchemaChange:
    column: str
    change: Change
    detail: str
    statement: str | None = None  # the ClickHouse ALTER that applies it

    @property
    def needs_backfill(self) -> bool:
        return self.change == "added"


def plan_changes(table: str, columns: list[Column], existing: dict[str, str],
                 keys: frozenset[str] = frozenset(), identities: dict[str, str] | None = None) -> list[SchemaChange]:
    """What ClickHouse must do to follow Postgres. `existing`: ClickHouse column → type, in table order;
    `keys`: the sorting and partition key columns, which ClickHouse cannot retype in place; `identities`:
    ClickHouse column → its COMMENT (Column.identity), which tells a column Postgres dropped and added
    again under the same name (its old values must not pass for the new column's)."""
    identities = identities or {}
    wanted = {c.name: c for c in columns}
    changes = []
    previous = None
    for name, column in wanted.items():
        ch_type = column.clickhouse_type(table)
        recreated = identities.get(name, "").startswith("pg:") and identities[name] != column.identity
        if recreated:
            retired = f"{name}__retired_{identities[name][3:]}"
            changes.append(SchemaChange(name, "retired", f"dropped and added again in Postgres: the old column is "
                                        f"kept as {retired}",
                                        RENAME_COLUMN_SQL.format(table=table, name=name, new_name=retired)))
        if name not in existing or recreated:
            after = f" AFTER `{previous}`" if previous else " FIRST"
            changes.append(SchemaChange(name, "added", f"added as {ch_type}", ADD_COLUMN_SQL.format(
                table=table, name=name, type=ch_type, identity=column.identity, position=after)))
        elif existing[name] != ch_type:
            changes.append(_type_change(table, name, existing[name], ch_type, name in keys))
        previous = name
    for name, ch_type in existing.items():
        if name not in wanted and name not in SYNC_COLUMNS:
            retired = ch_type if ch_type.startswith(("Nullable(", "Array(")) else f"Nullable({ch_type})"
            changes.append(SchemaChange(name, "retired", f"dropped in Postgres: kept as {retired}, no longer filled",
                                        None if retired == ch_type else
                                        MODIFY_COLUMN_SQL.format(table=table, name=name, type=retired)))
    return changes


def _type_change(table: str, name: str, current: str, wanted: str, key: bool) -> SchemaChange:
    current_inner, current_null = _unwrap(current)
    wanted_inner, wanted_null = _unwrap(wanted)
    target = f"Nullable({wanted_inner})" if (current_null or wanted_null) else wanted_inner
    if target == current:  # e.g. NOT NULL added in Postgres: the Nullable column still holds every value
        return SchemaChange(name, "widened", f"{wanted} fits the existing {current}")
    if _holds(wanted_inner, current_inner) and not key:
        return SchemaChange(name, "widened", f"{current} → {target}",
                            MODIFY_COLUMN_SQL.format(table=table, name=name, type=target))
    return SchemaChange(
        name, "refused",
        f"{table}.{name} changed in Postgres from {current} to {wanted}, which ClickHouse cannot follow in place "
        f"{'in a sorting or partition key column' if key else 'without risking its rows'}; the way out: revert "
        f"the column's type, or drop the ClickHouse table {table} and backfill every partition of warehouse/{table}")


def _unwrap(ch_type: str) -> tuple[str, bool]:
    match = re.fullmatch(r"Nullable\((.*)\)", ch_type)
    return (match[1], True) if match else (ch_type, False)


def _holds(wide: str, narrow: str) -> bool:
    """Whether ClickHouse type `wide` holds every value of `narrow` exactly."""
    if wide == narrow:
        return True
    for family in (_INTS, _FLOATS):
        if wide in family and narrow in family:
            return family.index(wide) >= family.index(narrow)
    decimals = [re.fullmatch(r"Decimal\((\d+), (\d+)\)", t) for t in (wide, narrow)]
    if all(decimals):
        (wp, ws), (np_, ns) = ((int(m[1]), int(m[2])) for m in decimals)
        return ws >= ns and wp - ws >= np_ - ns
    arrays = [re.fullmatch(r"Array\(Nullable\((.*)\)\)", t) for t in (wide, narrow)]
    return all(arrays) and _holds(arrays[0][1], arrays[1][1])


def apply_changes(postgres: PostgresResource, ch, table: str, changes: list[SchemaChange]) -> list[SchemaChange]:
    """Record every decision once, then apply the ALTER ClickHouse can make. Each decision is committed
    before its ALTER runs, so a run that dies between the two still leaves the backfill an added column
    needs on the record (the next run finds the column missing and adds it). When a change cannot be
    followed, nothing is altered and only the refusal is recorded: the caller raises
    SchemaDrift(refusal.detail). Returns what was decided."""
    refused = [c for c in changes if c.change == "refused"]
    applied = []
    for change in refused or changes:
        if change.statement is None and change.change == "widened":
            continue  # nothing to do, nothing to record
        with postgres.begin() as conn:
            if change.change == "retired" and change.statement is None and \
                    conn.execute(RETIRED_BEFORE_SQL, {"table": table, "column": change.column}).first():
                continue  # already on the record
            row = conn.execute(RECORD_CHANGE_SQL, {"table": table, "column": change.column, "change": change.change,
                                                   "detail": change.detail, "backfill": change.needs_backfill}).first()
            if row is not None:
                record(conn, action=f"warehouse/{table}", action_type="system", success=change.change != "refused",
                       error=change.detail if change.change == "refused" else None,
                       output={"schema_change": change.change, "column": change.column, "detail": change.detail})
        if change.statement:
            ch.command(change.statement)
        applied.append(change)
    return applied


def pending_backfills(postgres: PostgresResource) -> list[tuple[str, int]]:
    """[(table, newest change id)] of tables with an added column their existing rows do not hold yet."""
    with postgres.begin() as conn:
        return [(r[0], r[1]) for r in conn.execute(PENDING_BACKFILLS_SQL)]


def mark_backfilled(postgres: PostgresResource, table: str, columns: list[str], run_id: str) -> None:
    """A full copy of `table` with these columns filled every added column among them."""
    with postgres.begin() as conn:
        conn.execute(MARK_BACKFILLED_SQL, {"table": table, "columns": columns, "run": run_id})
