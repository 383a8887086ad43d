"""Every knob of the platform, in one typed object (`Settings`, on pydantic-settings).

Every setting is an environment variable so that the webserver, the daemon, the run workers and the
CLI (separate processes) agree without passing files around. The environment is read once per
process, by `current()`, when the code location loads (definitions.py asks first); what needs a
setting is given it from there: the schedules their crons, the resources their config, the sync its
tuning through WarehouseResource. A wrong value stops the load with one ConfigError naming every
wrong variable and what a right value looks like; no run reads the environment.

Secrets (database URLs, tokens, passwords, webhook URLs) are SecretStr here, so they never print;
the resources receive them as `dg.EnvVar` names (`secret_env`), so their values never reach run
config, logs or the UI either.
"""

from __future__ import annotations

import calendar
import functools
import json
import re
from pathlib import Path
from typing import Annotated, Any

import dagster as dg
from croniter import CroniterBadDateError, croniter
from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticUseDefault
from pydantic_settings import BaseSettings, SettingsConfigDict

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



def dagster_cron_problem(cron: str) -> str | None:
    """What Dagster's schedules refuse of a cron croniter accepts (e.g. '0 0 31 2 1'), asked through its API."""
    try:
        dg.ScheduleDefinition(name="cron_check", cron_schedule=cron, job_name="cron_check")
    except dg.DagsterInvalidDefinitionError:
        return ("is a cron Dagster's schedules refuse (e.g. any 30 or 31 February, even with a day of week): "
                "set a cron that has a next time")
    return None


# -- parsing one variable: each returns the value or raises ValueError naming the variable -------------

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _boolean(var: str, raw: str) -> bool:
    if raw.lower() not in _TRUE | _FALSE:
        raise ValueError(f"{var} must be true or false (also 1/0, yes/no, on/off), got {raw!r}")
    return raw.lower() in _TRUE


def _port(var: str, raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ValueError(f"{var} must be a port number from 1 to 65535, got {raw!r}")
    return int(raw)


def _whole(var: str, raw: str) -> int:
    if not raw.isdigit():
        raise ValueError(f"{var} must be a whole number, 0 or more, got {raw!r}")
    return int(raw)


def _positive(var: str, raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{var} must be a whole number above 0, got {raw!r}")
    return int(raw)


def _cluster_name(var: str, raw: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", raw):
        raise ValueError(f"{var} must be a cluster name from the servers' remote_servers (letters, digits, _ . -), "
                         f"got {raw!r}")
    return raw


def _listed(var: str, raw: str) -> list[str]:
    """A comma-separated list, blanks dropped."""
    return [item.strip() for item in raw.split(",") if item.strip()]


def _json(kind: type, example: str):
    def parse(var: str, raw: str):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as err:
            raise ValueError(f"{var} is not valid JSON ({err.msg} at position {err.pos}); e.g. {example}") from None
        if not isinstance(value, kind):
            raise ValueError(f"{var} must be a JSON {'object' if kind is dict else 'list'}, e.g. {example}")
        return value
    return parse


def _cron(var: str, raw: str) -> str:
    problem = cron_problem(raw, "*/15 * * * *") or dagster_cron_problem(raw)
    if problem:
        raise ValueError(f"{var}={raw!r} {problem}")
    return raw


def _http_url(var: str, raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError(f"{var} must be an http(s) URL such as https://n8n.example.com, got a value without a scheme")
    return raw


_DIVISORS_OF_HOUR = [m for m in range(1, 61) if 60 % m == 0]
_DIVISORS_OF_DAY = [h for h in range(1, 25) if 24 % h == 0]


def interval_cron(minutes: int) -> str:
    """Seed 003's `*_interval_minutes` as a cron: every N minutes from the top of the hour (N divides 60), or
    every H hours from midnight (N = 60·H, H divides 24); ValueError for one that would drift against the clock."""
    if minutes in _DIVISORS_OF_HOUR:
        return "0 * * * *" if minutes == 60 else f"*/{minutes} * * * *"
    if minutes % 60 == 0 and minutes // 60 in _DIVISORS_OF_DAY:
        hours = minutes // 60
        return "0 0 * * *" if hours == 24 else f"0 */{hours} * * *"
    raise ValueError(f"{minutes} minutes does not divide the hour or the day evenly; use one of "
                     f"{', '.join(map(str, _DIVISORS_OF_HOUR))} minutes or "
                     f"{', '.join(str(60 * h) for h in _DIVISORS_OF_DAY)}")


def daily_cron(time_of_day: str) -> str:
    """"M H * * *" from HH:MM (seed 003 `jobs.*.time`)."""
    hour, _, minute = time_of_day.partition(":")
    return f"{int(minute)} {int(hour)} * * *"


def _interval(var: str, raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{var} must be a whole number of minutes above 0, got {raw!r}")
    try:
        interval_cron(int(raw))
    except ValueError as err:
        raise ValueError(f"{var}={raw!r}: {err}") from None
    return int(raw)


def _seconds(var: str, raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{var} must be a whole number of seconds, at least 1, got {raw!r}")
    return int(raw)


def _time_of_day(var: str, raw: str) -> str:
    hour, _, minute = raw.partition(":")
    if not (hour.isdigit() and minute.isdigit() and len(minute) == 2 and int(hour) < 24 and int(minute) < 60):
        raise ValueError(f"{var} must be a time of day HH:MM (00:00 to 23:59), got {raw!r}")
    return raw


class Parse:
    """Field metadata: how the field's variable is parsed (`parse(var, stripped text)`)."""

    def __init__(self, parse):
        self.parse = parse


def _one_of(*allowed: str):
    def parse(var: str, raw: str) -> str:
        if raw not in allowed:
            raise ValueError(f"{var} must be {_either([repr(a) for a in allowed])}, got {raw!r}")
        return raw
    return parse


def var(name: str, default: Any = None) -> Any:
    """A setting read from the environment variable `name`; blank or unset keeps `default` (a type such
    as `list` stands for a fresh empty one)."""
    if isinstance(default, type):
        return Field(default_factory=default, validation_alias=name)
    return Field(default=default, validation_alias=name)


CHECKS_EXAMPLE = '[{"name": "dashboard", "url": "https://app.example.com/health", "max_latency_ms": 2000}]'


class Settings(BaseSettings):
    """The platform's settings, one field per environment variable (README "Configuration").

    Secret fields are SecretStr: they never print, and resources get them as `secret_env(name)`.
    """

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", enable_decoding=False)

    # Where the servers are (the URLs hold credentials: resources get them as EnvVars).
    database_url: SecretStr | None = var(DATABASE_URL_VAR)
    warehouse_url: SecretStr | None = var(WAREHOUSE_URL_VAR)
    warehouse_database: str = var(WAREHOUSE_DB_VAR, "ops")
    home: Path = var(HOME_VAR, PROJECT_ROOT / ".ops")
    warehouse_cluster: Annotated[str | None, Parse(_cluster_name)] = var(WAREHOUSE_CLUSTER_VAR)  # None: one node
    dagster_run_retention_days: Annotated[int, Parse(_positive)] = var("OPS_DAGSTER_RUN_RETENTION_DAYS", 30)

    # Where steps execute (executor.py) and how many may use the warehouse at once.
    executor: Annotated[str, Parse(_one_of("multiprocess", "celery", "k8s"))] = var("OPS_EXECUTOR", "multiprocess")
    celery_broker_url: SecretStr | None = var("OPS_CELERY_BROKER_URL")
    celery_backend_url: SecretStr | None = var("OPS_CELERY_BACKEND_URL")
    warehouse_pool_limit: Annotated[int | None, Parse(_positive)] = var("OPS_WAREHOUSE_POOL_LIMIT")

    # The sync (seed 004).
    sync_pull_url: SecretStr | None = var("OPS_SYNC_PULL_URL")
    sync_parallel_from_rows: Annotated[int, Parse(_positive)] = var("OPS_SYNC_PARALLEL_FROM_ROWS", 300_000)

    # Cron overrides of schedules (seed 004 names these variables); `cron()` reads them.
    analytics_sync_interval: Annotated[str | None, Parse(_cron)] = var("ANALYTICS_SYNC_INTERVAL")
    seat_usage_cron_interval: Annotated[str | None, Parse(_cron)] = var("SEAT_USAGE_CRON_INTERVAL")
    credit_usage_cron_interval: Annotated[str | None, Parse(_cron)] = var("CREDIT_USAGE_CRON_INTERVAL")
    vis_cron_schedule: Annotated[str | None, Parse(_cron)] = var("VIS_CRON_SCHEDULE")
    morning_call_cron: Annotated[str | None, Parse(_cron)] = var("MORNING_CALL_CRON")
    daily_digest_cron: Annotated[str | None, Parse(_cron)] = var("DAILY_DIGEST_CRON")
    synthetics_schedule: Annotated[str | None, Parse(_cron)] = var("SYNTHETICS_SCHEDULE")
    cache_warmer_cron: Annotated[str | None, Parse(_cron)] = var("CACHE_WARMER_CRON")
    guest_cleanup_cron: Annotated[str | None, Parse(_cron)] = var("GUEST_CLEANUP_CRON")
    insights_cron: Annotated[str | None, Parse(_cron)] = var("INSIGHTS_CRON")
    cost_aggregation_cron: Annotated[str | None, Parse(_cron)] = var("COST_AGGREGATION_CRON")
    dagster_history_cron: Annotated[str | None, Parse(_cron)] = var("OPS_DAGSTER_HISTORY_CRON")

    # Monitoring (seeds 003 and 004).
    health_endpoints: Annotated[list[str], Parse(_listed)] = var("OPS_HEALTH_ENDPOINTS", list)
    synthetic_checks: Annotated[list, Parse(_json(list, CHECKS_EXAMPLE))] = var("OPS_SYNTHETIC_CHECKS", list)
    # Seed 004's default monitors (monitoring/flows.py): off until the base URL is set.
    synthetics_base_url: str | None = var("OPS_SYNTHETICS_BASE_URL")
    synthetics_username: str | None = var("OPS_SYNTHETICS_USERNAME")
    synthetics_password: SecretStr | None = var("OPS_SYNTHETICS_PASSWORD")

    # The HTTP service, `ops api` (api/): where it listens, where Dagster answers, its tokens and the
    # providers' webhook secrets (an unset one turns its route off: 503).
    api_host: str = var("OPS_API_HOST", "127.0.0.1")
    api_port: Annotated[int, Parse(_port)] = var("OPS_API_PORT", 8090)
    api_public_url: str | None = var("OPS_API_PUBLIC_URL")  # as providers call us (signatures cover the URL)
    dagster_url: str | None = var("OPS_DAGSTER_URL")  # the Dagster webserver (its /graphql); unset: the local UI
    api_token: SecretStr | None = var("OPS_API_TOKEN")  # bearer token of seed 004's manual triggers
    cron_secret: SecretStr | None = var("CRON_SECRET")  # bearer token of seed 000's POST /api/cron/...
    resend_webhook_secret: SecretStr | None = var("RESEND_WEBHOOK_SECRET")
    benevity_webhook_secret: SecretStr | None = var("BENEVITY_WEBHOOK_SECRET")
    goodera_introspection_url: str | None = var("GOODERA_INTROSPECTION_URL")
    goodera_client_id: str | None = var("GOODERA_CLIENT_ID")
    goodera_client_secret: SecretStr | None = var("GOODERA_CLIENT_SECRET")
    goodera_scope: str | None = var("GOODERA_SCOPE")
    workday_webhook_username: str | None = var("WORKDAY_WEBHOOK_USERNAME")
    workday_webhook_password: SecretStr | None = var("WORKDAY_WEBHOOK_PASSWORD")
    kintell_webhook_secret: SecretStr | None = var("KINTELL_WEBHOOK_SECRET")

    # The notification policy (None: the policy's defaults).
    notify_routes: Annotated[dict | None, Parse(_json(dict, '{"SEV1": ["sms", "slack"]}'))] = var("OPS_NOTIFY_ROUTES")
    notify_rate_limits: Annotated[dict | None, Parse(_json(dict, '{"incident.*": "10/1h"}'))] = \
        var("OPS_NOTIFY_RATE_LIMITS")
    notify_aliases: Annotated[dict | None, Parse(_json(dict, '{"sms": "twilio_sms"}'))] = var("OPS_NOTIFY_ALIASES")
    notify_group_over: Annotated[int | None, Parse(_whole)] = var("OPS_NOTIFY_GROUP_OVER")
    notify_unconfigured: Annotated[str, Parse(_one_of("outbox", "error"))] = var("OPS_NOTIFY_UNCONFIGURED", "outbox")

    # Channels.
    webhook_url: SecretStr | None = var("OPS_WEBHOOK_URL")
    webhook_secret: SecretStr | None = var("OPS_WEBHOOK_SECRET")
    smtp_host: str | None = var("OPS_SMTP_HOST")
    smtp_port: Annotated[int, Parse(_port)] = var("OPS_SMTP_PORT", 587)
    smtp_username: str | None = var("OPS_SMTP_USERNAME")
    smtp_password: SecretStr | None = var("OPS_SMTP_PASSWORD")
    smtp_starttls: Annotated[bool, Parse(_boolean)] = var("OPS_SMTP_STARTTLS", True)
    email_from: str = var("OPS_EMAIL_FROM", "ops@localhost")
    email_to: Annotated[list[str], Parse(_listed)] = var("OPS_EMAIL_TO", list)
    email_api_url: str | None = var("OPS_EMAIL_API_URL")
    email_api_key: SecretStr | None = var("OPS_EMAIL_API_KEY")
    slack_webhook_url: SecretStr | None = var("OPS_SLACK_WEBHOOK_URL")
    teams_webhook_url: SecretStr | None = var("OPS_TEAMS_WEBHOOK_URL")
    telegram_bot_token: SecretStr | None = var("OPS_TELEGRAM_BOT_TOKEN")
    telegram_chat_id: str | None = var("OPS_TELEGRAM_CHAT_ID")
    telegram_api_url: str = var("OPS_TELEGRAM_API_URL", "https://api.telegram.org")
    twilio_account_sid: str | None = var("OPS_TWILIO_ACCOUNT_SID")
    twilio_auth_token: SecretStr | None = var("OPS_TWILIO_AUTH_TOKEN")
    twilio_from: str | None = var("OPS_TWILIO_FROM")
    twilio_to: str | None = var("OPS_TWILIO_TO")
    twilio_api_url: str = var("OPS_TWILIO_API_URL", "https://api.twilio.com")


    # Seed 003's data sources (sources/configured.py): tokens are secrets; URLs must be http(s).
    notion_token: SecretStr | None = var("OPS_NOTION_TOKEN")
    notion_url: Annotated[str, Parse(_http_url)] = var("OPS_NOTION_URL", "https://api.notion.com")
    n8n_url: Annotated[str | None, Parse(_http_url)] = var("OPS_N8N_URL")
    n8n_api_key: SecretStr | None = var("OPS_N8N_API_KEY")
    hubspot_token: SecretStr | None = var("OPS_HUBSPOT_TOKEN")
    hubspot_url: Annotated[str, Parse(_http_url)] = var("OPS_HUBSPOT_URL", "https://api.hubapi.com")
    # Seed 003's intervals and times, checked at load.
    periodic_scan_interval_minutes: Annotated[int, Parse(_interval)] = var("OPS_PERIODIC_SCAN_INTERVAL_MINUTES", 30)
    notion_scan_interval_minutes: Annotated[int, Parse(_interval)] = var("OPS_NOTION_SCAN_INTERVAL_MINUTES", 60)
    n8n_scan_interval_minutes: Annotated[int, Parse(_interval)] = var("OPS_N8N_SCAN_INTERVAL_MINUTES", 30)
    hubspot_poll_interval_minutes: Annotated[int, Parse(_interval)] = var("OPS_HUBSPOT_POLL_INTERVAL_MINUTES", 60)
    watchers_check_interval_minutes: Annotated[int, Parse(_positive)] = var("OPS_WATCHERS_CHECK_INTERVAL_MINUTES", 5)
    retry_queue_check_interval_seconds: Annotated[int, Parse(_seconds)] = \
        var("OPS_RETRY_QUEUE_CHECK_INTERVAL_SECONDS", 30)
    daily_digest_time: Annotated[str, Parse(_time_of_day)] = var("OPS_DAILY_DIGEST_TIME", "08:00")
    morning_call_time: Annotated[str, Parse(_time_of_day)] = var("OPS_MORNING_CALL_TIME", "06:00")
    # Seed 003 monitoring: per-job thresholds, and the channels that carry a health alert while Postgres is down.
    job_health_thresholds: Annotated[dict, Parse(_json(dict, '{"periodic_scan": {"max_duration_seconds": 120}}'))] \
        = var("OPS_JOB_HEALTH_THRESHOLDS", dict)
    health_fallback_channels: Annotated[list[str], Parse(_listed)] = var("OPS_HEALTH_FALLBACK_CHANNELS", list)

    @field_validator("*", mode="before")
    @classmethod
    def _parse(cls, value: Any, info: ValidationInfo) -> Any:
        """Blank is unset; a field with a `Parse` is parsed by it, with our sentence on a wrong value."""
        if not isinstance(value, str):
            return value
        value = value.strip()
        if not value:
            raise PydanticUseDefault()
        field = cls.model_fields[info.field_name]
        parse = next((m.parse for m in field.metadata if isinstance(m, Parse)), None)
        return parse(field.validation_alias, value) if parse else value

    @classmethod
    def load(cls) -> Settings:
        """Read and validate the environment. Raises ConfigError naming every wrong variable (never a
        secret's value: pydantic's own messages are given without the input)."""
        try:
            return cls()
        except ValidationError as err:
            raise ConfigError("; ".join(_message(e) for e in err.errors(include_input=False, include_url=False))) \
                from None

    def cron(self, name: str | None, default: str) -> str:
        """The cron of a schedule: the override in the variable `name` when set, else `default`.

        A `name` that is no field here is a KeyError (an override nobody reads would be ignored silently)."""
        if name is None:
            return default
        field = next((f for f, info in type(self).model_fields.items() if info.validation_alias == name), None)
        if field is None:
            raise KeyError(f"{name} is not a setting: declare it in ops_platform/settings.py Settings")
        return getattr(self, field) or default

    def secret_env(self, name: str) -> dg.EnvVar | None:
        """`dg.EnvVar(name)` when the secret variable `name` is set, else None: a resource gets the name of
        the variable, and Dagster reads its value in the process that needs it."""
        field = next(f for f, info in type(self).model_fields.items() if info.validation_alias == name)
        return dg.EnvVar(name) if getattr(self, field) is not None else None


def _message(error: dict) -> str:
    """Our own sentences as they are ("Value error, " dropped); pydantic's prefixed with the variable."""
    text = error["msg"]
    if text.startswith("Value error, "):
        return text.removeprefix("Value error, ")
    var = error["loc"][0] if error["loc"] else "settings"
    return f"{var}: {text}"


@functools.cache
def current() -> Settings:
    """This process's settings, read once (the first call is the code location's load)."""
    return Settings.load()


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


