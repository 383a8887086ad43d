"""What the HTTP service needs of the platform's settings (ops_platform/settings.py), as plain values.

Built from a `Settings` instance (`ApiSettings.of`); the service reads no environment itself. Secrets are
kept out of repr (and so of logs). A field left at its default is unset: its route answers 503.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import SecretStr

from ops_platform.settings import Settings

DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000"


def _secret() -> str | None:
    return field(default=None, repr=False)


@dataclass(frozen=True)
class ApiSettings:
    dagster_url: str = DEFAULT_DAGSTER_URL  # where the Dagster webserver (its /graphql) answers
    public_url: str | None = None  # as providers call us
    api_token: str | None = _secret()  # bearer token of seed 004's manual triggers
    cron_secret: str | None = _secret()  # bearer token of seed 000's POST /api/cron/cleanup-expired-orgs
    resend_secret: str | None = _secret()
    twilio_auth_token: str | None = _secret()  # the account token Twilio signs with
    benevity_secret: str | None = _secret()
    goodera_introspection_url: str | None = None
    goodera_client_id: str | None = None
    goodera_client_secret: str | None = _secret()
    goodera_scope: str | None = None
    workday_username: str | None = None
    workday_password: str | None = _secret()
    kintell_secret: str | None = _secret()

    @classmethod
    def of(cls, s: Settings) -> ApiSettings:
        """The service's view of the platform's settings (OPS_API_*, OPS_DAGSTER_URL, the providers' secrets)."""
        return cls(dagster_url=s.dagster_url or DEFAULT_DAGSTER_URL, public_url=s.api_public_url,
                   api_token=_value(s.api_token), cron_secret=_value(s.cron_secret),
                   resend_secret=_value(s.resend_webhook_secret), twilio_auth_token=_value(s.twilio_auth_token),
                   benevity_secret=_value(s.benevity_webhook_secret),
                   goodera_introspection_url=s.goodera_introspection_url, goodera_client_id=s.goodera_client_id,
                   goodera_client_secret=_value(s.goodera_client_secret), goodera_scope=s.goodera_scope,
                   workday_username=s.workday_webhook_username, workday_password=_value(s.workday_webhook_password),
                   kintell_secret=_value(s.kintell_webhook_secret))


def _value(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None
