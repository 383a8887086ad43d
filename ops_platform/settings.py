"""Where the platform finds its servers, and how the environment may override schedules.

Every setting is an environment variable so that the webserver, the daemon, the run workers
and the CLI (separate processes) agree without passing files around.
"""

from __future__ import annotations

import calendar
import json
import os
import re
from pathlib import Path

import dagster as dg
from croniter import CroniterBadDateError, croniter

# The production knobs.
DATABASE_URL_VAR = "OPS_DATABASE_URL"  # postgresql://user:pass@host:5432/ops
WAREHOUSE_URL_VAR = "OPS_WAREHOUSE_URL"  # http(s)://user:pass@host:8123/ or chdb:///abs/dir
WAREHOUSE_DB_VAR = "OPS_WAREHOUSE_DATABASE"  # ClickHouse database, default "ops"
WAREHOUSE_CLUSTER_VAR = "OPS_WAREHOUSE_CLUSTER"  # ClickHouse cluster (remote_servers) the tables span; unset: one node
DAGSTER_PG_URL_VAR = "DAGSTER_PG_URL"  # Dagster's own storage (dagster.yaml reads it)
HOME_VAR = "OPS_HOME"  # data directory of the embedded defaults

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A setting is wrong. The message says which one and what a right value looks like."""


def ops_home() -> Path:
    return Path(os.environ.get(HOME_VAR) or PROJECT_ROOT / ".ops").resolve()


def database_url() -> str:
    url = os.environ.get(DATABASE_URL_VAR)
    if not url:
        raise ConfigError(
            f"{DATABASE_URL_VAR} is not set. `make run` (ops up) sets it for the embedded Postgres; "
            "for a server, export it, e.g. postgresql://user:password@host:5432/ops"
        )
    return url


def warehouse_database() -> str:
    return os.environ.get(WAREHOUSE_DB_VAR, "ops")


def warehouse_cluster() -> str | None:
    """The ClickHouse cluster the warehouse's tables span (schema/cluster.py), or None for one node."""
    name = os.environ.get(WAREHOUSE_CLUSTER_VAR, "").strip()
    if name and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", name):
        raise ConfigError(f"{WAREHOUSE_CLUSTER_VAR} must be a cluster name from the servers' remote_servers "
                          f"(letters, digits, _ . -), got {name!r}")
    return name or None


def cron_problem(cron: object, example: str) -> str | None:
    """What is wrong with a five-field cron string, as the end of a sentence, or None when it fires.

    "is not a valid cron expression; ..." for a malformed one; "never fires (no 31 February): ..."
    when croniter finds no next time (CroniterBadDateError: no match within its search window), so a
    rare cron that does fire ("0 0 29 2 *") passes.
    """
    if not isinstance(cron, str) or len(cron.split()) != 5 or not croniter.is_valid(cron):
        return ("is not a valid cron expression; expected five fields "
                f"(minute hour day-of-month month day-of-week), e.g. {example!r}")
    try:
        croniter(cron).get_next()
    except CroniterBadDateError:
        return f"never fires{_missing_days(cron)}: set a cron that has a next time"
    return None


def _missing_days(cron: str) -> str:
    """" (no 31 April, June, September or November)" for the days of month no listed month has."""
    _, _, days, months, _ = croniter(cron).expanded
    if days == ["*"] or months == ["*"] or not all(isinstance(day, int) for day in days):
        return ""
    return f" (no {_either(days)} {_either([calendar.month_name[m] for m in months])})"


def _either(items: list) -> str:
    words = [str(item) for item in items]
    return " or ".join(words) if len(words) < 3 else f"{', '.join(words[:-1])} or {words[-1]}"


def cron_from_env(var: str | None, default: str) -> str:
    """The cron string for a schedule: `var` from the environment when set, else `default`.

    Validated when the code location loads, so a typo or a cron that never fires stops the load with
    one sentence naming the variable and the value, instead of a schedule that silently never fires
    or a tick that raises. Also refused: what Dagster's schedules refuse (e.g. '0 0 31 2 1').
    """
    value = os.environ.get(var, "").strip() if var else ""
    if not value:
        return default
    problem = cron_problem(value, default)
    if problem:
        raise ConfigError(f"{var}={value!r} {problem}")
    try:  # Dagster's own rules, asked through its public API
        dg.ScheduleDefinition(name="cron_check", cron_schedule=value, job_name="cron_check")
    except dg.DagsterInvalidDefinitionError:
        raise ConfigError(f"{var}={value!r} is a cron Dagster's schedules refuse (e.g. any 30 or 31 February,"
                          " even with a day of week): set a cron that has a next time") from None
    return value


def redact_url(url: str) -> str:
    """host:port/db of a URL, without user or password, for messages and metadata."""
    from sqlalchemy.engine import make_url

    try:
        u = make_url(url)
    except Exception:  # not a URL at all: say nothing about its content
        return "<unparseable URL>"
    where = u.host or (u.query.get("host") if u.query else None) or "localhost"
    port = f":{u.port}" if u.port else ""
    return f"{where}{port}/{u.database or ''}"


def positive_int_from_env(var: str, default: int) -> int:
    """A whole number above 0 from `var`, or `default` when unset; a clear ConfigError otherwise."""
    raw = os.environ.get(var, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{var} must be a whole number above 0, got {raw!r}")
    return int(raw)


# Reading settings from the environment: a wrong value stops the code location loading, naming the variable.

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def text_env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, "").strip() or default


def bool_env(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in _TRUE | _FALSE:
        raise ConfigError(f"{name} must be true or false (also 1/0, yes/no, on/off), got {raw!r}")
    return raw in _TRUE


def port_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ConfigError(f"{name} must be a port number from 1 to 65535, got {raw!r}")
    return int(raw)


def list_env(name: str) -> list[str]:
    """A comma-separated list, blanks dropped."""
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def json_from_env(name: str, kind: type, example: str, default=None):
    """A JSON value of type `kind` (dict or list) from `name`, or `default` when unset."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{name} is not valid JSON ({err.msg} at position {err.pos}); e.g. {example}") from None
    if not isinstance(value, kind):
        raise ConfigError(f"{name} must be a JSON {'object' if kind is dict else 'list'}, e.g. {example}")
    return value


def whole_number_from_env(name: str, default: int) -> int:
    """A whole number, 0 or more, from `name`, or `default` when unset."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ConfigError(f"{name} must be a whole number, 0 or more, got {raw!r}")
    return int(raw)
