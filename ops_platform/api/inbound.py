"""Inbound webhooks (seed 004 "Webhooks received"): verify, name the event, write it into the events outbox once.

Each provider is one function from the request (raw body, headers, the URL it was sent to) to an
`Inbound`: the provider's own id of the event (the dedup key), the outbox event name and its data. The
events outbox sensor hands the event to its subscribers (events/), exactly once per outbox row; the
unique `provider_key` makes it one row per provider event, however often the provider retries.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
from sqlalchemy import text

from ops_platform.api import signatures as sig
from ops_platform.api.settings import ApiSettings
from ops_platform.resources.postgres import PostgresResource

_ACCEPT_SQL = text(
    "INSERT INTO events_outbox (name, payload, provider_key) VALUES (:name, CAST(:payload AS jsonb), :key)"
    " ON CONFLICT (provider_key) WHERE provider_key IS NOT NULL DO NOTHING RETURNING id"
)
_EXISTING_SQL = text("SELECT id FROM events_outbox WHERE provider_key = :key")
TWILIO_STATUS_PATH = "/v1/notifications/webhooks/twilio"  # also the StatusCallback of our SMS (build.py)


@dataclass(frozen=True)
class Request:
    body: bytes
    headers: Mapping[str, str]  # as received; look-ups are case-insensitive where it matters
    url: str  # the URL the provider called, as it signed it (OPS_API_PUBLIC_URL behind a proxy)
    http: httpx.Client  # for checks that ask a server (Goodera's token introspection)


@dataclass(frozen=True)
class Inbound:
    provider: str
    event_id: str  # the provider's own id of this event or delivery
    name: str  # the outbox event name, e.g. kintell.session.completed
    data: Any

    @property
    def key(self) -> str:
        return f"{self.provider}:{self.event_id}"


@dataclass(frozen=True)
class Written:
    outbox_id: int
    duplicate: bool  # the provider had sent it before: nothing new was written


def write_once(postgres: PostgresResource, inbound: Inbound) -> Written:
    """Insert the event into events_outbox unless its provider_key is there; either way return its row id."""
    payload = json.dumps({"provider": inbound.provider, "provider_event_id": inbound.event_id,
                          "received_at": datetime.now(UTC).isoformat(), "data": inbound.data}, default=str)
    with postgres.begin() as conn:
        row = conn.execute(_ACCEPT_SQL, {"name": inbound.name, "payload": payload, "key": inbound.key}).first()
        if row:
            return Written(row.id, duplicate=False)
        return Written(conn.execute(_EXISTING_SQL, {"key": inbound.key}).scalar_one(), duplicate=True)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise sig.Refused(f"the body is not JSON: {err}", 400) from None


def _field(data: Any, key: str, what: str) -> str:
    """A non-empty string or number at data[key], as a string; Refused (400) naming the key otherwise."""
    value = data.get(key) if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise sig.Refused(f"the body needs {key!r} ({what})", 400)
    return str(value)


def _need(value: str | None, setting: str) -> str:
    if not value:
        raise sig.ProviderUnavailable(f"{setting} is not set: this provider's webhooks are refused until it is")
    return value


def resend(settings: ApiSettings, req: Request) -> Inbound:
    """Resend (Svix): {"type": "email.delivered", "created_at", "data": {"email_id", …}} → resend.<type>."""
    message_id = sig.standard_webhook(_need(settings.resend_secret, "RESEND_WEBHOOK_SECRET"), req.body, req.headers)
    data = _json(req.body)
    return Inbound("resend", message_id, f"resend.{_field(data, 'type', 'the event type, e.g. email.delivered')}", data)


def twilio(settings: ApiSettings, req: Request) -> Inbound:
    """Twilio status callback (form POST: MessageSid, MessageStatus, …) → twilio.message.status, one per
    message and status (Twilio's scheme has no timestamp: a replay is a duplicate of that pair)."""
    try:
        params = parse_qsl(req.body.decode(), keep_blank_values=True, strict_parsing=bool(req.body))
    except (UnicodeDecodeError, ValueError):
        raise sig.Refused("the body is not a form (application/x-www-form-urlencoded)", 400) from None
    sig.twilio(_need(settings.twilio_auth_token, "OPS_TWILIO_AUTH_TOKEN"), req.url, params,
               _header(req.headers, "X-Twilio-Signature"))
    data = dict(params)
    sid = _field(data, "MessageSid", "the message id") if "MessageSid" in data else _field(data, "SmsSid", "the message id")
    status = _field(data, "MessageStatus", "the delivery status") if "MessageStatus" in data else _field(
        data, "SmsStatus", "the delivery status")
    return Inbound("twilio", f"{sid}:{status}", "twilio.message.status", data)


def benevity(settings: ApiSettings, req: Request) -> Inbound:
    """Benevity volunteer/donation update, HMAC-SHA256 of the body → benevity.<type> (or benevity.update)."""
    sig.body_hmac_sha256(_need(settings.benevity_secret, "BENEVITY_WEBHOOK_SECRET"), req.body,
                         _header(req.headers, "X-Benevity-Signature"))
    data = _json(req.body)
    kind = data.get("type") if isinstance(data, dict) and isinstance(data.get("type"), str) else "update"
    return Inbound("benevity", _field(data, "id", "the event id"), f"benevity.{kind}", data)


def goodera(settings: ApiSettings, req: Request) -> Inbound:
    """Goodera volunteer update with an OAuth bearer token (introspected) → goodera.<type> (or goodera.update)."""
    sig.oauth_bearer(req.http, _need(settings.goodera_introspection_url, "GOODERA_INTROSPECTION_URL"),
                     _need(settings.goodera_client_id, "GOODERA_CLIENT_ID"),
                     _need(settings.goodera_client_secret, "GOODERA_CLIENT_SECRET"),
                     _header(req.headers, "Authorization"), settings.goodera_scope, datetime.now(UTC))
    data = _json(req.body)
    kind = data.get("type") if isinstance(data, dict) and isinstance(data.get("type"), str) else "update"
    return Inbound("goodera", _field(data, "id", "the event id"), f"goodera.{kind}", data)


def workday(settings: ApiSettings, req: Request) -> Inbound:
    """Workday directory update: a SOAP envelope with a WS-Security UsernameToken → workday.directory.updated,
    data = the SOAP Body's first element ({"operation": its local name, "xml": it as text})."""
    try:
        envelope = ET.fromstring(req.body)  # expat ≥ 2.4.1 refuses entity-expansion bombs; no external entities
    except ET.ParseError as err:
        raise sig.Refused(f"the body is not XML: {err}", 400) from None
    nonce = sig.ws_security(_need(settings.workday_username, "WORKDAY_WEBHOOK_USERNAME"),
                            _need(settings.workday_password, "WORKDAY_WEBHOOK_PASSWORD"), envelope, datetime.now(UTC))
    body = envelope.find("{*}Body")
    if body is None or len(body) == 0:
        raise sig.Refused("the SOAP envelope has no Body element with content", 400)
    operation = body[0]
    return Inbound("workday", nonce, "workday.directory.updated",
                   {"operation": operation.tag.rsplit("}", 1)[-1], "xml": ET.tostring(operation, encoding="unicode")})


def kintell(event: str) -> Callable[[ApiSettings, Request], Inbound]:
    """Kintell session scheduled/completed, Standard Webhooks → kintell.session.<event> (seed 004's name)."""
    def parse(settings: ApiSettings, req: Request) -> Inbound:
        message_id = sig.standard_webhook(_need(settings.kintell_secret, "KINTELL_WEBHOOK_SECRET"), req.body, req.headers)
        data = _json(req.body)
        _field(data, "session_id", "the Kintell session id")
        return Inbound("kintell", message_id, f"kintell.session.{event}", data)
    return parse


# Seed 004's endpoints, as it lists them (Resend's path still says sendgrid there).
PROVIDERS: dict[str, Callable[[ApiSettings, Request], Inbound]] = {
    "/v1/notifications/webhooks/sendgrid": resend,
    "/v1/notifications/webhooks/resend": resend,
    TWILIO_STATUS_PATH: twilio,
    "/webhooks/benevity": benevity,
    "/webhooks/goodera": goodera,
    "/webhooks/workday": workday,
    "/v1/webhooks/session-scheduled": kintell("scheduled"),
    "/v1/webhooks/session-completed": kintell("completed"),
}
