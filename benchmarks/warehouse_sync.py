"""Warehouse sync benchmark: our COPY → TabSeparated stream vs the naive pandas path, same run, same data.

A wide table (bigint, text, int, numeric(12,2), timestamptz, jsonb, bool, nullable columns) is
generated in Postgres, then each path runs in a fresh process (so peak memory is its own):

  ours      the platform's sync (incremental from an empty watermark), Postgres COPY text streamed
            into ClickHouse as TabSeparated (the default, client-side path): two key-range streams
            read by threads and piped into one INSERT while ClickHouse parses
  server    the same sync with OPS_SYNC_PULL_URL: ClickHouse pulls the window through postgresql(),
            two key ranges in parallel
  naive     pandas.read_sql + clickhouse-connect insert_df (jsonb has to be json.dumps'ed first)
  ceiling   one COPY stream read by a client and thrown away: what reading alone costs (read
            with libpq's COPY calls, as the sync does; psycopg's row iterator would understate it)

then an incremental run after updating `--changed` rows. Parity (count and checksum through FINAL)
is checked after each load.

    .venv/bin/python benchmarks/warehouse_sync.py [--rows 1000000] [--changed 100000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from scratch import scratch_platform
from sqlalchemy import text

from ops_platform.embedded import chdb_url
from ops_platform.resources.postgres import PostgresResource
from ops_platform.resources.warehouse import WarehouseResource

CREATE = """
CREATE TABLE wide_events (
    id          bigint PRIMARY KEY,
    name        text NOT NULL,
    quantity    integer,
    amount      numeric(12, 2),
    created_at  timestamptz NOT NULL,
    payload     jsonb,
    flag        boolean NOT NULL,
    note        text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX wide_events_updated_at ON wide_events (updated_at);
INSERT INTO wide_events (id, name, quantity, amount, created_at, payload, flag, note)
SELECT g, 'event ' || g, CASE WHEN g % 7 = 0 THEN NULL ELSE g % 1000 END, round((g % 100000) / 100.0, 2),
       timestamptz '2026-01-01' + make_interval(secs => g * 13 % 31536000),
       CASE WHEN g % 11 = 0 THEN NULL ELSE jsonb_build_object('k', g % 97, 'tags', jsonb_build_array('a', g % 5), 's', 'x"y') END,
       g % 2 = 0, CASE WHEN g % 3 = 0 THEN NULL ELSE 'note ' || (g % 5000) END
FROM generate_series(1, {rows}) g;
ANALYZE wide_events;
"""

RUNNER = r'''
import json, resource, sys, time
from ops_platform.resources.postgres import PostgresResource
from ops_platform.resources.warehouse import WarehouseResource
path, pg_url, ch_url, database = sys.argv[1:5]
postgres = PostgresResource(url=pg_url)
warehouse = WarehouseResource(url=ch_url, database=database, pull_postgres_url=pg_url if path == "server" else None)
# Imports are part of process start, which no path is timed for.
from ops_platform.sync import engine
from ops_platform.sync.spec import SyncedTable
from ops_platform.sync.stream import read_copy
if path == "naive":
    import pandas as pd
started = time.perf_counter()
if path in ("ours", "server"):
    table = SyncedTable("wide_events", partition_column="created_at")
    with warehouse.client() as ch:
        rows = engine.incremental(engine.prepare(table, postgres, ch), postgres, ch, warehouse.pull_postgres_url).rows
elif path == "naive":
    frame = pd.read_sql("SELECT id, name, quantity, amount, created_at, payload, flag, note, updated_at, "
                        "(extract(epoch FROM updated_at) * 1000000)::bigint AS _version FROM wide_events", postgres.engine)
    frame["payload"] = frame["payload"].map(lambda v: None if v is None else json.dumps(v))
    frame["quantity"] = frame["quantity"].astype("Int32")
    with warehouse.client() as ch:
        ch.command("CREATE TABLE naive_events AS wide_events")
        ch.insert_df("naive_events", frame, column_names=list(frame.columns),
                     settings={"max_partitions_per_insert_block": 0})
    rows = len(frame)
else:  # ceiling: read the same rows with one COPY stream and drop them (the sync's own lean reader)
    rows = read_copy(postgres, "SELECT id, name, quantity, amount, created_at, payload::text, flag, note, updated_at "
                     "FROM wide_events", {}, lambda chunk: None)
seconds = time.perf_counter() - started
print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''


def run(path: str, pg_url: str, ch_url: str, database: str) -> dict:
    out = subprocess.run([sys.executable, "-c", RUNNER, path, pg_url, ch_url, database],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def parity(postgres: PostgresResource, warehouse: WarehouseResource, table: str) -> bool:
    with postgres.begin() as conn:
        expected = conn.execute(text("SELECT count(*), sum(id) FROM wide_events")).one()
    with warehouse.client() as ch:
        got = ch.query(f"SELECT count(), sum(id) FROM {table} FINAL").result_rows[0]
    return (int(expected[0]), int(expected[1])) == (int(got[0]), int(got[1]))


def fresh(postgres: PostgresResource, warehouse: WarehouseResource, table: str) -> None:
    """Start a full load from nothing: no ClickHouse table, no watermark."""
    with warehouse.client() as ch:
        ch.command(f"DROP TABLE IF EXISTS {table}")
    with postgres.begin() as conn:
        conn.execute(text("DELETE FROM sync_state"))


def median_run(path: str, runs: int, pg_url: str, ch_url: str, database: str, before=None) -> dict:
    """The median (by time) of `runs` fresh processes."""
    results = []
    for _ in range(runs):
        if before:
            before()
        results.append(run(path, pg_url, ch_url, database))
    results.sort(key=lambda r: r["seconds"])
    return results[len(results) // 2] | {"all_seconds": [round(r["seconds"], 2) for r in results]}


def seq_scans(postgres: PostgresResource) -> int:
    with postgres.begin() as conn:
        return conn.execute(text("SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'wide_events'")).scalar_one()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--changed", type=int, nargs="+", default=[100_000], help="incremental runs, one per value")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per path; the median is reported")
    parser.add_argument("--naive-runs", type=int, default=None, help="fewer runs for the slow pandas path")
    args = parser.parse_args()
    with scratch_platform() as (home, postgres):
        pg_url = postgres.url
        started = time.perf_counter()
        with postgres.raw() as conn:
            conn.execute(CREATE.replace("{rows}", str(args.rows)))
        print(f"generated {args.rows:,} wide rows in Postgres in {time.perf_counter() - started:.1f} s")
        ch_url, database = chdb_url(home), "bench"
        warehouse = WarehouseResource(url=ch_url, database=database)
        server_side = WarehouseResource(url=ch_url, database="bench_server")
        for resource in (warehouse, server_side):
            with resource.client():  # create the database, then let go of the directory
                pass

        results = {
            "ceiling": median_run("ceiling", args.runs, pg_url, ch_url, database),
            "ours": median_run("ours", args.runs, pg_url, ch_url, database,
                               lambda: fresh(postgres, warehouse, "wide_events")),
            "server": median_run("server", args.runs, pg_url, ch_url, "bench_server",
                                 lambda: fresh(postgres, server_side, "wide_events")),
            "naive": median_run("naive", args.naive_runs or args.runs, pg_url, ch_url, database,
                                lambda: fresh(postgres, warehouse, "naive_events")),
        }
        with postgres.begin() as conn:  # the incremental runs continue from the client path's load
            conn.execute(text("INSERT INTO sync_state (table_name, watermark) SELECT 'wide_events', "
                              "max(updated_at) + interval '1 microsecond' FROM wide_events ON CONFLICT (table_name) "
                              "DO UPDATE SET watermark = excluded.watermark, pending_upper = NULL"))
        for path, r in results.items():
            print(f"  {path:8} {r['rows'] / r['seconds']:>12,.0f} rows/s  {r['seconds']:6.1f} s  peak {r['peak_mb']:,.0f} MB"
                  f"  (runs: {r['all_seconds']} s)")
        ours, naive, ceiling = (results[p]["rows"] / results[p]["seconds"] for p in ("ours", "naive", "ceiling"))
        print(f"  ours / naive = {ours / naive:.1f}x; ours / ceiling = {100 * ours / ceiling:.0f}%")
        server = results["server"]["rows"] / results["server"]["seconds"]
        print(f"  server / naive = {server / naive:.1f}x; server / ceiling = {100 * server / ceiling:.0f}%")
        print(f"  parity (count, sum of ids through FINAL): ours {parity(postgres, warehouse, 'wide_events')}, "
              f"server {parity(postgres, server_side, 'wide_events')}, naive {parity(postgres, warehouse, 'naive_events')}")

        for changed in args.changed:
            with postgres.begin() as conn:
                conn.execute(text("UPDATE wide_events SET note = 'changed' WHERE id <= :n"), {"n": changed})
            scans = seq_scans(postgres)
            incremental = run("ours", pg_url, ch_url, database)
            print(f"incremental after updating {changed:,} rows: {incremental['rows']:,} rows in "
                  f"{incremental['seconds']:.2f} s end to end (process start excluded); "
                  f"full scans: {seq_scans(postgres) - scans}; parity {parity(postgres, warehouse, 'wide_events')}")


if __name__ == "__main__":
    main()
