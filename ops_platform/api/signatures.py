"""How each provider proves a webhook is its own (seed 004 "Webhooks received"), one function per scheme.

Every comparison of a secret-derived value is constant-time (`hmac.compare_digest`); every scheme that
carries a time is held to `TOLERANCE` (older or newer: refused as a replay). A failed check raises
`Refused` with the HTTP status to answer (401: not proven; 400: not readable) and a sentence saying what
was wrong, never the secret or the expected value.

| scheme | providers | proof | replay guard |
|---|---|---|---|
| Standard Webhooks (Svix) | Resend, Kintell | `webhook-`/`svix-` id, timestamp, `v1,` base64 HMAC-SHA256 of `id.timestamp.body` | timestamp ± 5 min, then the id (dedup) |
| Twilio | Twilio | `X-Twilio-Signature`: base64 HMAC-SHA1 of URL + sorted params (name + value) | none in the scheme: the MessageSid and status (dedup) |
| HMAC-SHA256 of the body | Benevity | `X-Benevity-Signature: sha256=<hex>` (bare hex too) | none in the scheme: the event id (dedup) |
| OAuth 2.0 bearer | Goodera | the token is active at our introspection endpoint (RFC 7662), not expired, holds the scope | token expiry, then the event id (dedup) |
| WS-Security UsernameToken | Workday | PasswordDigest = base64 SHA-1(nonce + Created + password), username | Created ± 5 min, then the nonce (dedup) |
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

import httpx
from standardwebhooks import Webhook, WebhookVerificationError

from ops_platform.notifications.channels import sign as sign_body
from ops_platform.notifications.webhook import webhook_key

TOLERANCE = timedelta(minutes=5)  # Standard Webhooks' own window; also the Created window of WS-Security
PASSWORD_DIGEST = "#PasswordDigest"  # the end of the UsernameToken profile's Password/@Type URI


class Refused(Exception):
    """The request does not prove it comes from the provider. `status`: 401 (not proven) or 400 (unreadable)."""

    def __init__(self, message: str, status: int = 401):
        super().__init__(message)
        self.status = status


class ProviderUnavailable(Exception):
    """A check needs a server that did not answer (Goodera's token introspection): answer 503, the provider retries."""


def standard_webhook(secret: str, body: bytes, headers: Mapping[str, str]) -> str:
    """Check a Standard Webhooks signature (Resend sends Svix's `svix-*` header names, read the same way).
    `secret`: `whsec_<base64>` as the provider shows it, or any other string used raw. Returns the message id."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for part in ("id", "timestamp", "signature"):
        lowered.setdefault(f"webhook-{part}", lowered.get(f"svix-{part}", ""))
    try:
        Webhook(webhook_key(secret)).verify(body, lowered, json_parse=False)
    except WebhookVerificationError as err:
        raise Refused(f"Standard Webhooks signature refused: {err}") from None
    except ValueError:  # a signature entry without its "v1," or not base64; a body that is not UTF-8
        raise Refused("Standard Webhooks signature refused: malformed webhook-signature header or body") from None
    return lowered["webhook-id"]


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Twilio's X-Twilio-Signature for a form POST: base64 HMAC-SHA1 (key: the auth token) of the full URL
    followed by each parameter name and value, names sorted, a repeated name's distinct values sorted
    (Twilio's request validation, as its libraries compute it)."""
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    data = url + "".join(name + value for name in sorted(values) for value in sorted(values[name]))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def twilio(auth_token: str, url: str, params: Iterable[tuple[str, str]], signature: str | None) -> None:
    if not signature:
        raise Refused("X-Twilio-Signature header missing")
    if not hmac.compare_digest(twilio_signature(auth_token, url, params).encode(), signature.encode("utf-8", "replace")):
        raise Refused("X-Twilio-Signature does not match the URL and parameters")


def body_hmac_sha256(secret: str, body: bytes, signature: str | None) -> None:
    """Benevity: `sha256=<hex HMAC-SHA256 of the raw body>` (the same check as our own X-Ops-Signature)."""
    if not signature:
        raise Refused("signature header missing")
    signature = signature.strip()
    given = (signature if signature.startswith("sha256=") else f"sha256={signature}").encode("utf-8", "replace")
    if not hmac.compare_digest(sign_body(secret, body).encode(), given):  # bytes: any header text compares
        raise Refused("HMAC-SHA256 signature does not match the body")


def oauth_bearer(http: httpx.Client, introspection_url: str, client_id: str, client_secret: str,
                 authorization: str | None, scope: str | None, now: datetime) -> dict:
    """Goodera: the bearer token is asked to our OAuth server's introspection endpoint (RFC 7662: POST
    token=…, client credentials in Basic auth; answer {"active": bool, "exp"?, "scope"?}). Returns the
    introspection answer. Raises Refused (401) for a missing, inactive, expired or under-scoped token and
    ProviderUnavailable when the endpoint does not answer 200 with JSON."""
    if not authorization or not authorization.lower().startswith("bearer ") or not authorization[7:].strip():
        raise Refused("Authorization: Bearer <token> missing")
    try:
        answer = http.post(introspection_url, data={"token": authorization[7:].strip(), "token_type_hint": "access_token"},
                           auth=(client_id, client_secret), timeout=10.0)
        claims = answer.json() if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as err:
        raise ProviderUnavailable(f"token introspection failed: {type(err).__name__}") from None
    if not isinstance(claims, dict):
        raise ProviderUnavailable(f"token introspection answered HTTP {answer.status_code}, not 200 with a JSON object")
    if claims.get("active") is not True:
        raise Refused("bearer token is not active")
    if isinstance(claims.get("exp"), int | float) and claims["exp"] <= now.timestamp():
        raise Refused("bearer token has expired")
    if scope and scope not in str(claims.get("scope", "")).split():
        raise Refused(f"bearer token lacks the scope {scope!r}")
    return claims


def password_digest(nonce: bytes, created: str, password: str) -> str:
    """WS-Security UsernameToken Profile 1.1: Base64(SHA-1(nonce + Created + password)), nonce decoded."""
    return base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()


def ws_security(username: str, password: str, envelope: ET.Element, now: datetime) -> str:
    """Workday: the SOAP header's UsernameToken must carry `username` and a PasswordDigest of `password`,
    with a Created within TOLERANCE of `now`. Returns the nonce (base64), the message's replay key."""
    token = envelope.find(".//{*}Header/{*}Security/{*}UsernameToken")
    if token is None:
        raise Refused("no wsse:Security/UsernameToken in the SOAP header")
    fields = {child.tag.rsplit("}", 1)[-1]: child for child in token}
    if "Password" not in fields or not fields["Password"].get("Type", "").endswith(PASSWORD_DIGEST):
        raise Refused("UsernameToken must carry a Password of Type …#PasswordDigest")
    try:
        nonce = base64.b64decode((fields["Nonce"].text or "").strip(), validate=True)
        created_text = (fields["Created"].text or "").strip()
        created = datetime.fromisoformat(created_text.replace("Z", "+00:00"))
    except (KeyError, binascii.Error, ValueError):
        raise Refused("UsernameToken needs a base64 Nonce and an ISO 8601 Created") from None
    if created.tzinfo is None or abs(now - created.astimezone(UTC)) > TOLERANCE:
        raise Refused(f"UsernameToken Created {created_text} is not within {TOLERANCE} of now (a replay?)")
    given_user = (fields["Username"].text or "").strip() if "Username" in fields else ""
    user_ok = hmac.compare_digest(given_user.encode(), username.encode())
    digest_ok = hmac.compare_digest((fields["Password"].text or "").strip().encode(),
                                    password_digest(nonce, created_text, password).encode())
    if not (user_ok and digest_ok):
        raise Refused("UsernameToken username or password digest does not match")
    return base64.b64encode(nonce).decode()
