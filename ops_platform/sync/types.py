"""Postgres column types → ClickHouse column types, the SELECT expression that moves each one, and
the values ClickHouse cannot hold.

Every value travels as Postgres COPY text read as ClickHouse TabSeparated (the client stream) or
through ClickHouse's postgresql() (the server pull); both leave out the same rows. The value policy
(README, "Warehouse sync"):
- a type not listed stops the table's sync before any row moves, naming `table.column` and the way out;
- a value of a listed type that ClickHouse cannot hold exactly (numeric NaN, a time outside
  ClickHouse's range, ±infinity, a multi-dimensional array) is never changed: its row is held back
  and quarantined in `sync_rejects` (key, column, value, reason) until it is fixed in Postgres, and
  the table's other rows move on;
- floats keep NaN and ±Infinity (ClickHouse's Float holds them).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

SCALARS = {
    "smallint": "Int16",
    "integer": "Int32",
    "bigint": "Int64",
    "real": "Float32",
    "double precision": "Float64",
    "boolean": "Bool",
    "text": "String",
    "character varying": "String",
    "character": "String",
    "uuid": "UUID",
    "date": "Date32",
    "timestamp with time zone": "DateTime64(6, 'UTC')",
    "timestamp without time zone": "DateTime64(6)",
    "json": "String",   # the document's own text, byte for byte
    "jsonb": "String",  # Postgres' canonical jsonb text, byte for byte
}
TEXT_CAST = {"json", "jsonb", "uuid"}
# One-dimensional arrays, by Postgres element type (udt_name without its leading underscore).
ARRAY_ELEMENTS = {"int2": "Int16", "int4": "Int32", "int8": "Int64", "float8": "Float64", "bool": "Bool",
                  "text": "String", "varchar": "String"}
# Postgres' array text ({"it's",NULL}, {t,f}) is not ClickHouse's (['it''s',NULL], [true,false]): the
# SELECT renders the latter, element by element in order. Quotes are doubled; backslashes are left
# alone because COPY's text format escapes them already, and ClickHouse reads elements from that text.
_ELEMENT_TEXT = {"String": "'''' || replace(e, '''', '''''') || ''''",
                 "Bool": "CASE WHEN e THEN 'true' WHEN NOT e THEN 'false' END"}


class UnsupportedType(TypeError):
    pass


@dataclass(frozen=True)
class TimeRange:
    """The times the warehouse stores exactly, [lo, hi) as ISO text: ClickHouse 25+ stores years
    0001–9999 in DateTime64 and Date32; older servers 1900–2299 (and clamp what lies outside)."""

    lo: str
    hi: str


WIDE_RANGE = TimeRange("0001-01-01", "10000-01-01")
NARROW_RANGE = TimeRange("1900-01-01", "2300-01-01")
MAX_DECIMAL_PRECISION = 76

# Year 1000 comes back as written on a server that stores 0001–9999, clamped or wrapped on an older one.
YEAR_1000_SQL = "SELECT toString(toDateTime64('1000-01-01 00:00:00', 6, 'UTC'))"
POSTGRES_COLUMNS_SQL = text(
    "SELECT column_name, data_type, is_nullable = 'YES', numeric_precision, numeric_scale, ltrim(udt_name, '_'), "
    "ordinal_position "
    "FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = :t "
    "ORDER BY ordinal_position"
)


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str
    nullable: bool
    precision: int | None = None
    scale: int | None = None
    element: str | None = None  # for arrays: the Postgres element type
    as_text: bool = False       # moved as its exact Postgres text (SyncedTable.text_columns)
    position: int | None = None  # Postgres' attnum: a column dropped and added again gets a new one

    @property
    def identity(self) -> str:
        """What the ClickHouse column's COMMENT holds, to tell a re-created column from the one it replaced."""
        return f"pg:{self.position}"

    def clickhouse_type(self, table: str) -> str:
        """The ClickHouse type of this column. Raises UnsupportedType naming `table.column` and the way out."""
        if self.as_text:
            return "Nullable(String)" if self.nullable else "String"
        if self.pg_type == "ARRAY":
            if self.element not in ARRAY_ELEMENTS:
                raise UnsupportedType(f"{table}.{self.name}: arrays of {self.element!r} are not supported by the sync")
            # ClickHouse has no Nullable(Array): a NULL array arrives as [] (its elements may be NULL).
            return f"Array(Nullable({ARRAY_ELEMENTS[self.element]}))"
        if self.pg_type == "numeric":
            if self.precision is None or self.precision > MAX_DECIMAL_PRECISION:
                shape = "numeric without a precision" if self.precision is None else f"numeric({self.precision}, {self.scale})"
                raise UnsupportedType(
                    f"{table}.{self.name}: {shape} has no exact ClickHouse type; declare it numeric(p, s) with "
                    f"p ≤ {MAX_DECIMAL_PRECISION}, or list it in SyncedTable(text_columns=...) to move its exact text"
                )
            base = f"Decimal({self.precision}, {self.scale or 0})"
        elif self.pg_type in SCALARS:
            base = SCALARS[self.pg_type]
        else:
            raise UnsupportedType(f"{table}.{self.name}: Postgres type {self.pg_type!r} is not supported by the sync")
        return f"Nullable({base})" if self.nullable else base

    def select_expression(self) -> str:
        if self.as_text:
            return f"{self.name}::text"
        if self.pg_type == "ARRAY":
            element = _ELEMENT_TEXT.get(ARRAY_ELEMENTS.get(self.element))
            if element:
                items = (f"(SELECT string_agg(coalesce({element}, 'NULL'), ',' ORDER BY i) "
                         f"FROM unnest({self.name}) WITH ORDINALITY AS u (e, i))")
            else:
                items = f"array_to_string({self.name}, ',', 'NULL')"
            return f"'[' || coalesce({items}, '') || ']'"
        if self.pg_type == "timestamp with time zone":
            # The UTC wall time without its offset: cheaper for Postgres to format and for ClickHouse
            # to parse than "…+00", and right whatever the session's time zone.
            return f"{self.name} AT TIME ZONE 'UTC'"
        return f"{self.name}::text" if self.pg_type in TEXT_CAST else self.name

    def reject(self, times: TimeRange) -> tuple[str, str] | None:
        """(SQL that is true when this column's value cannot be held exactly, the reason), or None
        when every value of the type can. NULL is never a reject."""
        if self.as_text:
            return None
        if self.pg_type == "numeric":  # a typed numeric holds NaN, never ±Infinity
            test, reason = f"{self.name} = 'NaN'", "NaN has no ClickHouse Decimal"
        elif self.pg_type in ("timestamp with time zone", "timestamp without time zone", "date"):
            cast = {"date": "date", "timestamp without time zone": "timestamp"}.get(self.pg_type, "timestamptz")
            bounds = f"'{times.lo}'::{cast} AND {self.name} < '{times.hi}'::{cast}"
            test = f"NOT ({self.name} >= {bounds})"
            reason = f"outside the warehouse's time range [{times.lo}, {times.hi}) (±infinity included)"
        elif self.pg_type == "ARRAY":
            test = f"(coalesce(array_ndims({self.name}), 1) <> 1 OR coalesce(array_lower({self.name}, 1), 1) <> 1)"
            reason = "a multi-dimensional array, or one not starting at index 1, has no exact ClickHouse Array"
        else:
            return None
        return f"({self.name} IS NOT NULL AND {test})", reason


def warehouse_time_range(ch) -> TimeRange:
    """The time range the connected ClickHouse stores exactly (it clamps or wraps what lies outside)."""
    year_1000 = ch.query(YEAR_1000_SQL).result_rows[0][0]
    return WIDE_RANGE if year_1000.startswith("1000-01-01") else NARROW_RANGE


def postgres_columns(conn: Connection, table: str) -> list[Column]:
    rows = conn.execute(POSTGRES_COLUMNS_SQL, {"t": table}).all()
    if not rows:
        raise UnsupportedType(f"{table}: no such table in Postgres")
    return [Column(r[0], r[1], r[2], r[3] if r[1] == "numeric" else None, r[4] if r[1] == "numeric" else None,
                   r[5] if r[1] == "ARRAY" else None, position=r[6]) for r in rows]
