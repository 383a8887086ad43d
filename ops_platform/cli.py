"""`ops`: start the platform, migrate, load demo data, flip the controls.

    ops up [--host 127.0.0.1] [--port 3000] [--api-port 8090] [--demo-scale 100000] [--demo]
    ops api [--host 127.0.0.1] [--port 8090]
    ops migrate
    ops check
    ops demo [--scale N]
    ops controls show | kill-switch on|off | jobs on|off | comms on|off | writes on|off
    ops controls quiet-hours 22:00 07:00 [America/Chicago] | quiet-hours off
    ops dead-letters [list | resolve [ID ...]]
    ops dagster -- asset materialize -m ops_platform.definitions --select warehouse/builds --partition-range A...B
"""

from __future__ import annotations

import argparse
import getpass
import os
import signal
import subprocess
import sys
from datetime import time
from pathlib import Path

import dagster as dg
from sqlalchemy import text

from ops_platform import runtime as rt
from ops_platform.framework.audit import record
from ops_platform.framework.controls import read_controls, set_controls
from ops_platform.resources.postgres import DatabaseUnavailable
from ops_platform.resources.warehouse import WarehouseBusy, apply_pool_limit
from ops_platform.schema.migrate import MigrationError, migrate_postgres, migrate_warehouse
from ops_platform.settings import PROJECT_ROOT, ConfigError, Settings

SWITCHES = {"kill-switch": "kill_switch", "jobs": "jobs_enabled", "comms": "comms_enabled", "writes": "write_enabled"}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ConfigError, DatabaseUnavailable, MigrationError, WarehouseBusy, ValueError) as err:
        print(f"ops: error: {err}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ops", description="ops_platform command line")
    sub = parser.add_subparsers(required=True)

    up = sub.add_parser("up", help="start Postgres, chDB, the Dagster UI and daemon (Ctrl-C stops all)")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=3000)
    up.add_argument("--api-port", type=int, default=None, help="port of the HTTP service (OPS_API_PORT, else 8090)")
    up.add_argument("--demo-scale", type=int, default=100_000, help="tasks in the demo data (first start only)")
    up.add_argument("--demo", action="store_true",
                    help="point every unconfigured data source (Notion, n8n, HubSpot) at built-in local stand-ins")
    up.set_defaults(handler=_up)

    api = sub.add_parser("api", help="serve the HTTP service: provider webhooks, manual triggers, GET /healthz")
    api.add_argument("--host", default=None, help="address to listen on (OPS_API_HOST, else 127.0.0.1)")
    api.add_argument("--port", type=int, default=None, help="port (OPS_API_PORT, else 8090)")
    api.set_defaults(handler=_api)

    sub.add_parser("migrate", help="apply pending schema migrations").set_defaults(handler=_migrate)
    sub.add_parser("check", help="load the code location and validate its settings").set_defaults(handler=_check)

    demo = sub.add_parser("demo", help="replace the demo data")
    demo.add_argument("--scale", type=int, default=100_000)
    demo.set_defaults(handler=_demo)

    letters = sub.add_parser("dead-letters", help="list dead letters, or resolve them once handled")
    letters.add_argument("action", choices=["list", "resolve"], nargs="?", default="list")
    letters.add_argument("ids", nargs="*", type=int, help="ids to resolve (all unresolved when none given)")
    letters.set_defaults(handler=_dead_letters)

    dagster = sub.add_parser("dagster", help="run Dagster's CLI against this platform's instance and databases")
    dagster.add_argument("args", nargs=argparse.REMAINDER)
    dagster.set_defaults(handler=_dagster)

    controls = sub.add_parser("controls", help="show or change the controls")
    controls.add_argument("what", choices=["show", *SWITCHES, "quiet-hours"])
    controls.add_argument("values", nargs="*")
    controls.set_defaults(handler=_controls)
    return parser


def _up(args) -> int:
    url = f"http://{args.host}:{args.port}"
    try:
        lock = rt.lock_platform(Settings.load().home.resolve(), url)  # before anything starts: a second `ops up` starts nothing
    except rt.PlatformRunning as running:
        print(f"ops up: {running}", file=sys.stderr)
        return 1
    with lock:
        return _serve(args, url)


def _serve(args, url: str) -> int:
    signal.signal(signal.SIGTERM, _interrupt)  # a process manager's stop means Ctrl-C
    runtime = rt.start()
    standins = None
    try:
        _prepare(runtime, args.demo_scale)
        if args.demo:
            from ops_platform.demo.sources import start_demo_sources

            standins, env = start_demo_sources(runtime.postgres, os.environ)
            os.environ.update(env)  # the Dagster processes started below inherit them
            demo = sorted({var.removeprefix("OPS_").split("_")[0].lower() for var in env})
            print(f"ops: demo sources on {standins.base_url}: {', '.join(demo) or 'none (all configured)'}")
        for note in runtime.notes:
            print(f"ops: {note}")
        print(f"ops: Dagster UI on {url} (Ctrl-C stops everything)", flush=True)
        # `dg dev` with a workspace file is `dagster dev` (the same webserver and daemon), without the
        # warning `dagster dev` prints that `dg dev` supersedes it.
        command = [str(Path(sys.executable).with_name("dg")), "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"),
                   "-h", args.host, "-p", str(args.port)]
        api = _start_api(args, url)
        child = subprocess.Popen(command, cwd=runtime.env["DAGSTER_HOME"])
        try:
            return child.wait()
        except KeyboardInterrupt:
            return _stop_child(child)
        finally:
            _stop_child(api)
    finally:
        if standins:
            standins.stop()
        runtime.stop()


def _start_api(args, ui_url: str) -> subprocess.Popen:
    """`ops api` next to the UI, on the UI's host, launching runs through the UI's GraphQL (unless
    OPS_DAGSTER_URL names another webserver)."""
    settings = Settings.load()
    port = args.api_port or settings.api_port
    local_ui = ui_url.replace("://0.0.0.0:", "://127.0.0.1:")
    print(f"ops: HTTP service (webhooks, triggers) on http://{args.host}:{port}", flush=True)
    return subprocess.Popen([sys.executable, "-m", "ops_platform.cli", "api", "--host", args.host, "--port", str(port)],
                            env=os.environ | {"OPS_DAGSTER_URL": settings.dagster_url or local_ui})


def _api(args) -> int:
    from ops_platform.api.app import serve
    from ops_platform.api.settings import ApiSettings

    settings = Settings.load()
    with rt.running() as runtime:
        migrate_postgres(runtime.postgres)
        serve(runtime.postgres, ApiSettings.of(settings), args.host or settings.api_host,
              args.port or settings.api_port)
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _stop_child(child: subprocess.Popen) -> int:
    """Ctrl-C in a terminal reaches `dg dev` too; a signal sent to `ops` alone is passed on."""
    for sig, grace in ((None, 5), (signal.SIGINT, 30), (signal.SIGTERM, 10)):
        if sig is not None:
            child.send_signal(sig)
        try:
            return child.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
    child.kill()
    return child.wait()


def _migrate_all(runtime: rt.Runtime) -> str:
    """Pending migrations applied, and the `warehouse` pool's limit set from the warehouse kind: what was done."""
    applied = migrate_postgres(runtime.postgres) + migrate_warehouse(runtime.warehouse)
    with dg.DagsterInstance.get() as instance:  # DAGSTER_HOME, as runtime.start() set it
        limit = apply_pool_limit(instance, runtime.warehouse.url)
    return f"migrations applied: {', '.join(applied) or 'none pending'}; warehouse pool limit: {limit}"


def _prepare(runtime: rt.Runtime, demo_scale: int) -> None:
    print(f"ops: {_migrate_all(runtime)}")
    with runtime.postgres.begin() as conn:
        empty = conn.execute(text("SELECT NOT EXISTS (SELECT 1 FROM agents)")).scalar_one()
    if empty:
        from ops_platform.demo.generate import generate

        counts = generate(runtime.postgres, scale=demo_scale)
        print(f"ops: demo data loaded: {counts}")
    else:
        print("ops: existing data kept")


def _check(args) -> int:
    from ops_platform.definitions import defs

    jobs = [j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__")]
    schedules = [s.name for s in defs.schedules or []]
    sensors = [s.name for s in defs.sensors or []]
    print(f"ok: {len(jobs)} jobs, {len(schedules)} schedules, {len(sensors)} sensors")
    for schedule in defs.schedules or []:
        print(f"  {schedule.name:28} {schedule.cron_schedule} ({schedule.execution_timezone or 'UTC'})")
    _print_channels()
    _print_sources()
    return 0


def _print_sources() -> None:
    """Each seed 003 data source: configured, or the environment variables it still needs (never a value)."""
    from ops_platform.sources.configured import needs

    print("data sources (unconfigured ones skip their syncs; `ops up --demo` points them at local stand-ins):")
    for name, missing in needs().items():
        print(f"  {name:10} {'configured' if not missing else 'set ' + ', '.join(missing)}")


def _print_channels() -> None:
    """Each notification channel: configured, or which environment variables it still needs (never a value)."""
    from ops_platform.build import build_channels

    print("notification channels (unconfigured ones keep messages in the local outbox"
          " unless OPS_NOTIFY_UNCONFIGURED=error):")
    for name, state in build_channels().status().items():
        print(f"  {name:10} {state}")


def _migrate(args) -> int:
    with rt.running() as runtime:
        print(_migrate_all(runtime))
        return 0


def _demo(args) -> int:
    from ops_platform.demo.generate import generate

    with rt.running() as runtime:
        migrate_postgres(runtime.postgres)
        print(generate(runtime.postgres, scale=args.scale))
        return 0


def _dead_letters(args) -> int:
    with rt.running() as runtime:
        with runtime.postgres.begin() as conn:
            if args.action == "resolve":
                resolved = conn.execute(text(
                    "UPDATE dead_letters SET resolved_at = now() WHERE resolved_at IS NULL "
                    "AND (cardinality(CAST(:ids AS bigint[])) = 0 OR id = ANY(:ids)) RETURNING id"), {"ids": args.ids}).all()
                record(conn, action="dead_letters", action_type="control", success=True,
                       output={"resolved": [r.id for r in resolved], "by": f"cli:{getpass.getuser()}"})
                print(f"resolved {len(resolved)}")
                return 0
            rows = conn.execute(text("SELECT id, created_at, source, attempts, error FROM dead_letters "
                                     "WHERE resolved_at IS NULL ORDER BY id")).all()
        for r in rows:
            print(f"{r.id:6} {r.created_at:%Y-%m-%d %H:%M} {r.source:28} attempts={r.attempts} {r.error[:100]}")
        print(f"{len(rows)} unresolved")
        return 0


def _dagster(args) -> int:
    with rt.running() as runtime:
        migrate_postgres(runtime.postgres)
        migrate_warehouse(runtime.warehouse)
        return subprocess.call([sys.executable, "-m", "dagster", *args.args], cwd=PROJECT_ROOT)


def _controls(args) -> int:
    changes = _control_changes(args.what, args.values)
    with rt.running() as runtime:
        migrate_postgres(runtime.postgres)
        with runtime.postgres.begin() as conn:
            controls = set_controls(conn, f"cli:{getpass.getuser()}", **changes) if changes else read_controls(conn)
        for name, value in vars(controls).items():
            print(f"{name:18} {value}")
        return 0


def _control_changes(what: str, values: list[str]) -> dict:
    if what == "show":
        return {}
    if what == "quiet-hours":
        if values == ["off"]:
            return {"quiet_hours_start": None, "quiet_hours_end": None}
        if len(values) not in (2, 3):
            raise ValueError("usage: ops controls quiet-hours START END [TIME_ZONE] | off  (e.g. 22:00 07:00 America/Chicago)")
        changes = {"quiet_hours_start": _clock(values[0]), "quiet_hours_end": _clock(values[1])}
        return changes | ({"quiet_hours_tz": values[2]} if len(values) == 3 else {})
    if values not in (["on"], ["off"]):
        raise ValueError(f"usage: ops controls {what} on|off")
    return {SWITCHES[what]: values[0] == "on"}


def _clock(value: str) -> time:
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"quiet-hours: {value!r} is not a time of day (HH:MM, 00:00 to 23:59)") from None


if __name__ == "__main__":
    sys.exit(main())
