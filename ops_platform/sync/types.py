"""Postgres column types → ClickHouse column types, and the SELECT expression that moves each one.

Every value travels as Postgres COPY text read as ClickHouse TabSeparated; the two agree for the
types below. A type not listed stops the sync with its column named, before any row moves.
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
# Postgres' array text ({"it's",NULL}) is not ClickHouse's (['it''s',NULL]): the SELECT renders the latter.
# Quotes are doubled; backslashes are left alone because COPY's text format escapes them already,
# and ClickHouse reads array elements from that escaped text.
_CLICKHOUSE_QUOTED = "'''' || replace(e, '''', '''''') || ''''"


class UnsupportedType(TypeError):
    pass


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str
    nullable: bool
    precision: int | None = None
    scale: int | None = None
    element: str | None = None  # for arrays: the Postgres element type

    def clickhouse_type(self, table: str) -> str:
        if self.pg_type == "ARRAY":
            if self.element not in ARRAY_ELEMENTS:
                raise UnsupportedType(f"{table}.{self.name}: arrays of {self.element!r} are not supported by the sync")
            # ClickHouse has no Nullable(Array): a NULL array arrives as [] (its elements may be NULL).
            return f"Array(Nullable({ARRAY_ELEMENTS[self.element]}))"
        if self.pg_type == "numeric":
            if self.precision is None:
                raise UnsupportedType(
                    f"{table}.{self.name}: numeric without a precision has no exact ClickHouse type; "
                    "declare it numeric(p, s) with p ≤ 76"
                )
            base = f"Decimal({self.precision}, {self.scale or 0})"
        elif self.pg_type in SCALARS:
            base = SCALARS[self.pg_type]
        else:
            raise UnsupportedType(f"{table}.{self.name}: Postgres type {self.pg_type!r} is not supported by the sync")
        return f"Nullable({base})" if self.nullable else base

    def select_expression(self) -> str:
        if self.pg_type == "ARRAY":
            if ARRAY_ELEMENTS.get(self.element) == "String":
                items = f"(SELECT string_agg(coalesce({_CLICKHOUSE_QUOTED}, 'NULL'), ',') FROM unnest({self.name}) e)"
            else:
                items = f"array_to_string({self.name}, ',', 'NULL')"
            return f"'[' || coalesce({items}, '') || ']'"
        if self.pg_type == "timestamp with time zone":
            # The UTC wall time without its offset: cheaper for Postgres to format and for ClickHouse
            # to parse than "…+00", and right whatever the session's time zone.
            return f"{self.name} AT TIME ZONE 'UTC'"
        return f"{self.name}::text" if self.pg_type in TEXT_CAST else self.name


def postgres_columns(conn: Connection, table: str) -> list[Column]:
    rows = conn.execute(
        text(
            "SELECT column_name, data_type, is_nullable = 'YES', numeric_precision, numeric_scale, ltrim(udt_name, '_') "
            "FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = :t "
            "ORDER BY ordinal_position"
        ),
        {"t": table},
    ).all()
    if not rows:
        raise UnsupportedType(f"{table}: no such table in Postgres")
    return [Column(r[0], r[1], r[2], r[3] if r[1] == "numeric" else None, r[4] if r[1] == "numeric" else None,
                   r[5] if r[1] == "ARRAY" else None) for r in rows]
