"""The HTTP service's settings, all from the environment. Secrets are kept out of repr (and so of logs)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ops_platform.settings import port_env, text_env

HOST_VAR, PORT_VAR = "OPS_API_HOST", "OPS_API_PORT"
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8090
DAGSTER_URL_VAR = "OPS_DAGSTER_URL"  # where the Dagster webserver (its /graphql) answers


def _secret(name: str) -> str | None:
    return field(default_factory=lambda: text_env(name), repr=False)


@dataclass(frozen=True)
class ApiSettings:
    dagster_url: str = field(default_factory=lambda: text_env(DAGSTER_URL_VAR, "http://127.0.0.1:3000"))
    public_url: str | None = field(default_factory=lambda: text_env("OPS_API_PUBLIC_URL"))  # as providers call us
    api_token: str | None = _secret("OPS_API_TOKEN")  # bearer token of seed 004's manual triggers
    cron_secret: str | None = _secret("CRON_SECRET")  # bearer token of seed 001's POST /api/cron/cleanup
    resend_secret: str | None = _secret("RESEND_WEBHOOK_SECRET")
    twilio_auth_token: str | None = _secret("OPS_TWILIO_AUTH_TOKEN")  # the account token Twilio signs with
    benevity_secret: str | None = _secret("BENEVITY_WEBHOOK_SECRET")
    goodera_introspection_url: str | None = field(default_factory=lambda: text_env("GOODERA_INTROSPECTION_URL"))
    goodera_client_id: str | None = field(default_factory=lambda: text_env("GOODERA_CLIENT_ID"))
    goodera_client_secret: str | None = _secret("GOODERA_CLIENT_SECRET")
    goodera_scope: str | None = field(default_factory=lambda: text_env("GOODERA_SCOPE"))
    workday_username: str | None = field(default_factory=lambda: text_env("WORKDAY_WEBHOOK_USERNAME"))
    workday_password: str | None = _secret("WORKDAY_WEBHOOK_PASSWORD")
    kintell_secret: str | None = _secret("KINTELL_WEBHOOK_SECRET")


def listen_address(host: str | None = None, port: int | None = None) -> tuple[str, int]:
    """The address `ops api` listens on: the arguments, else OPS_API_HOST / OPS_API_PORT, else 127.0.0.1:8090."""
    return host or text_env(HOST_VAR, DEFAULT_HOST), port or port_env(PORT_VAR, DEFAULT_PORT)
