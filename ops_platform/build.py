"""The code location's resources, built from the settings when it loads.

Anything that may hold a secret reaches a resource as a `dg.EnvVar` name (`Settings.secret_env`), so
its value is read by Dagster in the process that uses it and never appears in run config or the UI.
"""

from __future__ import annotations

import dagster as dg

from ops_platform.api.inbound import TWILIO_STATUS_PATH
from ops_platform.notifications import NotifierResource
from ops_platform.notifications.policy import DEFAULT_GROUP_OVER, DEFAULT_RATE_LIMITS, DEFAULT_ROUTES, parse_rate_limits
from ops_platform.notifications.transports import DEFAULT_ALIASES, ChannelsResource
from ops_platform.resources.postgres import PostgresResource
from ops_platform.resources.warehouse import WarehouseResource
from ops_platform.settings import DATABASE_URL_VAR, WAREHOUSE_URL_VAR, Settings, current
from ops_platform.sources.configured import build_sources


def build_resources(settings: Settings | None = None) -> dict[str, dg.ConfigurableResource]:
    """postgres, warehouse, notifier and the data sources; ConfigError on a bad rate limit (the load stops with the reason)."""
    settings = settings or current()
    postgres = PostgresResource(url=dg.EnvVar(DATABASE_URL_VAR))
    rate_limits = settings.notify_rate_limits or DEFAULT_RATE_LIMITS
    parse_rate_limits(rate_limits)
    return {
        "postgres": postgres,
        "warehouse": WarehouseResource(url=dg.EnvVar(WAREHOUSE_URL_VAR), database=settings.warehouse_database,
                                       pull_postgres_url=settings.secret_env("OPS_SYNC_PULL_URL"),
                                       parallel_from_rows=settings.sync_parallel_from_rows),
        "notifier": NotifierResource(
            postgres=postgres,
            channels=build_channels(settings),
            routes=settings.notify_routes or DEFAULT_ROUTES,
            rate_limits=rate_limits,
            group_over=DEFAULT_GROUP_OVER if settings.notify_group_over is None else settings.notify_group_over,
        ),
        **build_sources(settings),  # seed 003's data sources: notion_source, n8n_source, hubspot_source, chat_logs_source
    }


def build_channels(settings: Settings | None = None) -> ChannelsResource:
    """Every transport's settings; a secret is passed as an EnvVar name, never as its value."""
    s = settings or current()
    return ChannelsResource(
        aliases=s.notify_aliases or DEFAULT_ALIASES,
        unconfigured=s.notify_unconfigured,
        webhook_url=s.secret_env("OPS_WEBHOOK_URL"),
        webhook_secret=s.secret_env("OPS_WEBHOOK_SECRET"),
        smtp_host=s.smtp_host,
        smtp_port=s.smtp_port,
        smtp_username=s.smtp_username,
        smtp_password=s.secret_env("OPS_SMTP_PASSWORD"),
        smtp_starttls=s.smtp_starttls,
        email_from=s.email_from,
        email_to=s.email_to,
        email_api_url=s.email_api_url,
        email_api_key=s.secret_env("OPS_EMAIL_API_KEY"),
        slack_webhook_url=s.secret_env("OPS_SLACK_WEBHOOK_URL"),
        teams_webhook_url=s.secret_env("OPS_TEAMS_WEBHOOK_URL"),
        telegram_bot_token=s.secret_env("OPS_TELEGRAM_BOT_TOKEN"),
        telegram_chat_id=s.telegram_chat_id,
        telegram_api_url=s.telegram_api_url,
        twilio_account_sid=s.twilio_account_sid,
        twilio_auth_token=s.secret_env("OPS_TWILIO_AUTH_TOKEN"),
        twilio_from=s.twilio_from,
        twilio_to=s.twilio_to,
        twilio_api_url=s.twilio_api_url,
        twilio_status_callback=f"{s.api_public_url.rstrip('/')}{TWILIO_STATUS_PATH}" if s.api_public_url else None,
    )
