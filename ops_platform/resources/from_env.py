"""Resources, built from the environment. Anything that may hold a secret is an EnvVar."""

from __future__ import annotations

import json
import os

import dagster as dg

from ops_platform.notifications import NotifierResource
from ops_platform.notifications.policy import DEFAULT_GROUP_OVER, DEFAULT_RATE_LIMITS, DEFAULT_ROUTES, parse_rate_limits
from ops_platform.notifications.transports import DEFAULT_ALIASES, ChannelsResource
from ops_platform.resources.postgres import PostgresResource
from ops_platform.resources.warehouse import WarehouseResource
from ops_platform.settings import (
    DATABASE_URL_VAR,
    WAREHOUSE_URL_VAR,
    ConfigError,
    bool_env,
    json_from_env,
    list_env,
    port_env,
    text_env,
    warehouse_database,
    whole_number_from_env,
)
from ops_platform.sources.configured import build_sources


def _optional_env(name: str) -> dg.EnvVar | None:
    return dg.EnvVar(name) if os.environ.get(name) else None


def _json_object(name: str, default: dict) -> dict:
    return json_from_env(name, dict, json.dumps(default), default)


def build_resources() -> dict[str, dg.ConfigurableResource]:
    postgres = PostgresResource(url=dg.EnvVar(DATABASE_URL_VAR))
    rate_limits = _json_object("OPS_NOTIFY_RATE_LIMITS", DEFAULT_RATE_LIMITS)
    parse_rate_limits(rate_limits)  # a bad limit stops the code location loading, with the reason
    return {
        "postgres": postgres,
        "warehouse": WarehouseResource(url=dg.EnvVar(WAREHOUSE_URL_VAR), database=warehouse_database(),
                                       pull_postgres_url=_optional_env("OPS_SYNC_PULL_URL")),
        "notifier": NotifierResource(
            postgres=postgres,
            channels=build_channels(),
            routes=_json_object("OPS_NOTIFY_ROUTES", DEFAULT_ROUTES),
            rate_limits=rate_limits,
            group_over=whole_number_from_env("OPS_NOTIFY_GROUP_OVER", DEFAULT_GROUP_OVER),
        ),
        **build_sources(),  # seed 003's data sources: notion_source, n8n_source, hubspot_source, chat_logs_source
    }


def build_channels() -> ChannelsResource:
    """Every transport's settings; a secret is passed as an EnvVar name, never as its value."""
    unconfigured = os.environ.get("OPS_NOTIFY_UNCONFIGURED", "outbox")
    if unconfigured not in ("outbox", "error"):
        raise ConfigError(f"OPS_NOTIFY_UNCONFIGURED must be 'outbox' or 'error', got {unconfigured!r}")
    return ChannelsResource(
        aliases=_json_object("OPS_NOTIFY_ALIASES", DEFAULT_ALIASES),
        unconfigured=unconfigured,
        webhook_url=_optional_env("OPS_WEBHOOK_URL"),
        webhook_secret=_optional_env("OPS_WEBHOOK_SECRET"),
        smtp_host=text_env("OPS_SMTP_HOST"),
        smtp_port=port_env("OPS_SMTP_PORT", 587),
        smtp_username=text_env("OPS_SMTP_USERNAME"),
        smtp_password=_optional_env("OPS_SMTP_PASSWORD"),
        smtp_starttls=bool_env("OPS_SMTP_STARTTLS", True),
        email_from=text_env("OPS_EMAIL_FROM", "ops@localhost"),
        email_to=list_env("OPS_EMAIL_TO"),
        email_api_url=text_env("OPS_EMAIL_API_URL"),
        email_api_key=_optional_env("OPS_EMAIL_API_KEY"),
        slack_webhook_url=_optional_env("OPS_SLACK_WEBHOOK_URL"),
        teams_webhook_url=_optional_env("OPS_TEAMS_WEBHOOK_URL"),
        telegram_bot_token=_optional_env("OPS_TELEGRAM_BOT_TOKEN"),
        telegram_chat_id=text_env("OPS_TELEGRAM_CHAT_ID"),
        telegram_api_url=text_env("OPS_TELEGRAM_API_URL", "https://api.telegram.org"),
        twilio_account_sid=text_env("OPS_TWILIO_ACCOUNT_SID"),
        twilio_auth_token=_optional_env("OPS_TWILIO_AUTH_TOKEN"),
        twilio_from=text_env("OPS_TWILIO_FROM"),
        twilio_to=text_env("OPS_TWILIO_TO"),
        twilio_api_url=text_env("OPS_TWILIO_API_URL", "https://api.twilio.com"),
    )
