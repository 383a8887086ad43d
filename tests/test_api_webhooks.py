"""`ops api` inbound webhooks over real HTTP (uvicorn on 127.0.0.1) into the real events outbox (Postgres).

Each provider: its documented test vector where one is published, an accepted event written once, a
retry written nothing more, a forged or stale request refused with its status and nothing written.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from standardwebhooks import Webhook

from api_server import serving
from endpoints import closed_port_url
from helpers import LocalServer, sql
from ops_platform.api import signatures as sig
from ops_platform.api.settings import ApiSettings
from ops_platform.notifications.channels import sign as body_signature

RESEND_SECRET = "whsec_" + base64.b64encode(b"resend-test-key-32-bytes-long!!!").decode()
KINTELL_SECRET = "kintell-shared-secret"
TWILIO_TOKEN, BENEVITY_SECRET = "twilio-auth-token", "benevity-secret"
WORKDAY_USER, WORKDAY_PASSWORD = "workday-isu", "workday-password"


class Introspection(LocalServer):
    """An OAuth 2.0 token introspection endpoint (RFC 7662): POST token=…, client credentials in Basic auth;
    {"active": true, "exp", "scope", "client_id"} for `active` tokens, {"active": false} otherwise."""

    def __init__(self, active: dict[str, dict]):
        self.active, self.calls = active, []

    def respond(self, handler, body):
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        self.calls.append(form)
        basic = "Basic " + base64.b64encode(b"ops-platform:client-secret").decode()
        if handler.headers.get("Authorization") != basic:
            status, answer = 401, {"error": "invalid_client"}
        else:
            status, answer = 200, {"active": True, **self.active[form["token"]]} if form.get("token") in self.active \
                else {"active": False}
        self.reply_json(handler, status, answer)


@pytest.fixture
def introspection():
    now = time.time()
    with Introspection({"good": {"exp": now + 600, "scope": "webhooks:write", "client_id": "goodera"},
                        "expired": {"exp": now - 1, "scope": "webhooks:write"},
                        "narrow": {"exp": now + 600, "scope": "profile:read"}}) as server:
        yield server


@pytest.fixture
def api(postgres, introspection):
    settings = ApiSettings(dagster_url=closed_port_url().rstrip("/"), public_url=None, api_token=None, cron_secret=None,
                           resend_secret=RESEND_SECRET, twilio_auth_token=TWILIO_TOKEN, benevity_secret=BENEVITY_SECRET,
                           goodera_introspection_url=f"{introspection.base_url}/introspect",
                           goodera_client_id="ops-platform", goodera_client_secret="client-secret",
                           goodera_scope="webhooks:write", workday_username=WORKDAY_USER,
                           workday_password=WORKDAY_PASSWORD, kintell_secret=KINTELL_SECRET)
    with serving(postgres, settings) as base, httpx.Client(base_url=base, timeout=10) as client:
        yield client


def outbox(postgres):
    return sql(postgres, "SELECT name, payload, provider_key FROM events_outbox ORDER BY id")


def standard_headers(secret, body: bytes, message_id=None, at=None, prefix="webhook"):
    message_id = message_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    key = secret if secret.startswith("whsec_") else secret.encode()
    return {f"{prefix}-id": message_id, f"{prefix}-timestamp": str(int(at.timestamp())),
            f"{prefix}-signature": Webhook(key).sign(message_id, at, body.decode()), "Content-Type": "application/json"}


# --- documented test vectors ---------------------------------------------------------------------------

def test_twilio_signature_matches_twilios_documented_vector():
    params = [("CallSid", "CA1234567890ABCDE"), ("Caller", "+14158675309"), ("Digits", "1234"),
              ("From", "+14158675309"), ("To", "+18005551212")]
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert sig.twilio_signature("12345", url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    sig.twilio("12345", url, reversed(params), "RSOYDt4T1cUTdK1PDd93/VVr8B8=")  # order of the form does not matter
    with pytest.raises(sig.Refused):
        sig.twilio("12345", url + "&x=1", params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


def test_ws_security_password_digest_matches_the_onvif_programmers_guide_example():
    nonce = base64.b64decode("LKqI6G/AikKCQrN0zqZFlg==")
    assert sig.password_digest(nonce, "2010-09-16T07:50:45Z", "userpassword") == "tuOSpGlFlIXsozq4HFNeeGeFLEI="


def test_the_standard_webhooks_spec_vector_is_refused_today_as_a_replay():
    """The specification's vector (2021) is a valid signature, now far outside the 5-minute window."""
    headers = {"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
               "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}
    with pytest.raises(sig.Refused, match="too old"):
        sig.standard_webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", b'{"test": 2432232314}', headers)


# --- over HTTP -----------------------------------------------------------------------------------------

def test_healthz_answers_when_postgres_does(api):
    assert api.get("/healthz").json() == {"status": "ok"}


def test_resend_event_is_written_once_however_often_it_is_delivered(api, postgres):
    body = json.dumps({"type": "email.delivered", "created_at": "2026-11-30T10:00:00Z",
                       "data": {"email_id": "4ef9a417"}}).encode()
    headers = standard_headers(RESEND_SECRET, body, "msg_resend_1", prefix="svix")  # Resend signs through Svix
    first = api.post("/v1/notifications/webhooks/sendgrid", content=body, headers=headers)
    again = api.post("/v1/notifications/webhooks/sendgrid", content=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert (first.json()["status"], again.json()["status"]) == ("accepted", "duplicate")
    assert first.json()["event_id"] == again.json()["event_id"]
    [row] = outbox(postgres)
    assert (row.name, row.provider_key) == ("resend.email.delivered", "resend:msg_resend_1")
    assert row.payload["data"]["data"]["email_id"] == "4ef9a417"


@pytest.mark.parametrize("tamper", ["body", "stale", "secret", "no-signature", "garbled"])
def test_resend_forged_or_stale_requests_are_refused_and_write_nothing(api, postgres, tamper):
    body = json.dumps({"type": "email.bounced", "data": {}}).encode()
    at = datetime.now(UTC) - timedelta(minutes=6) if tamper == "stale" else None
    headers = standard_headers("whsec_" + base64.b64encode(b"another-key").decode() if tamper == "secret"
                               else RESEND_SECRET, body, at=at, prefix="svix")
    if tamper == "no-signature":
        del headers["svix-signature"]
    if tamper == "garbled":
        headers["svix-signature"] = "not-a-signature"
    sent = body.replace(b"bounced", b"delivered") if tamper == "body" else body
    answer = api.post("/v1/notifications/webhooks/sendgrid", content=sent, headers=headers)
    assert answer.status_code == 401, answer.text
    assert "signature" in answer.json()["error"].lower()
    assert outbox(postgres) == []


def test_twilio_status_callback_is_verified_over_the_url_it_was_sent_to(api, postgres):
    url = f"{api.base_url}/v1/notifications/webhooks/twilio?account=main"
    form = {"MessageSid": "SM0123456789abcdef", "MessageStatus": "delivered", "To": "+15005550006",
            "AccountSid": "AC123"}
    signature = sig.twilio_signature(TWILIO_TOKEN, url, form.items())
    headers = {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}
    first = api.post(url, content=urlencode(form), headers=headers)
    again = api.post(url, content=urlencode(form), headers=headers)
    assert (first.json()["status"], again.json()["status"]) == ("accepted", "duplicate")
    failed = form | {"MessageStatus": "failed"}  # a later status of the same message is a new event
    assert api.post(url, content=urlencode(failed), headers={
        "X-Twilio-Signature": sig.twilio_signature(TWILIO_TOKEN, url, failed.items())}).json()["status"] == "accepted"
    forged = api.post(url, content=urlencode(form | {"MessageStatus": "read"}), headers=headers)
    assert forged.status_code == 401
    assert [r.provider_key for r in outbox(postgres)] == ["twilio:SM0123456789abcdef:delivered",
                                                           "twilio:SM0123456789abcdef:failed"]


def test_benevity_hmac_sha256_and_its_event_id(api, postgres):
    body = json.dumps({"id": "bnv-77", "type": "donation.created", "amount": 25}).encode()
    accepted = api.post("/webhooks/benevity", content=body, headers={"X-Benevity-Signature": body_signature(BENEVITY_SECRET, body)})
    assert accepted.json()["status"] == "accepted"
    bare_hex = body_signature(BENEVITY_SECRET, body).removeprefix("sha256=")
    assert api.post("/webhooks/benevity", content=body, headers={"X-Benevity-Signature": bare_hex}).json()["status"] == "duplicate"
    wrong = api.post("/webhooks/benevity", content=body, headers={"X-Benevity-Signature": body_signature("other", body)})
    assert wrong.status_code == 401
    no_id = json.dumps({"type": "donation.created"}).encode()
    missing = api.post("/webhooks/benevity", content=no_id, headers={"X-Benevity-Signature": body_signature(BENEVITY_SECRET, no_id)})
    assert missing.status_code == 400 and "'id'" in missing.json()["error"]
    assert [(r.name, r.provider_key) for r in outbox(postgres)] == [("benevity.donation.created", "benevity:bnv-77")]


def test_goodera_bearer_token_is_introspected(api, postgres, introspection):
    body = json.dumps({"id": "gd-1", "type": "volunteer.updated", "volunteer": {"email": "a@example.org"}}).encode()
    answers = {token: api.post("/webhooks/goodera", content=body, headers={"Authorization": f"Bearer {token}"})
               for token in ("good", "expired", "narrow", "unknown")}
    assert answers["good"].json()["status"] == "accepted"
    assert {t: (a.status_code, a.json().get("error")) for t, a in answers.items() if t != "good"} == {
        "expired": (401, "bearer token has expired"),
        "narrow": (401, "bearer token lacks the scope 'webhooks:write'"),
        "unknown": (401, "bearer token is not active")}
    assert api.post("/webhooks/goodera", content=body).status_code == 401  # no token: nothing asked
    assert [c["token"] for c in introspection.calls] == ["good", "expired", "narrow", "unknown"]
    assert [r.name for r in outbox(postgres)] == ["goodera.volunteer.updated"]


def test_goodera_is_refused_with_503_while_its_introspection_is_down(postgres):
    settings = ApiSettings(goodera_introspection_url=closed_port_url("/introspect"), goodera_client_id="x",
                           goodera_client_secret="y")
    with serving(postgres, settings) as base:
        answer = httpx.post(f"{base}/webhooks/goodera", content=b'{"id": "1"}', headers={"Authorization": "Bearer t"})
    assert answer.status_code == 503 and "introspection" in answer.json()["error"]
    assert outbox(postgres) == []


def soap(nonce: bytes, created: str, password=WORKDAY_PASSWORD, user=WORKDAY_USER) -> bytes:
    digest = sig.password_digest(nonce, created, password)
    return f"""<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
 xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">
 <soapenv:Header><wsse:Security><wsse:UsernameToken>
  <wsse:Username>{user}</wsse:Username>
  <wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">{digest}</wsse:Password>
  <wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce><wsu:Created>{created}</wsu:Created>
 </wsse:UsernameToken></wsse:Security></soapenv:Header>
 <soapenv:Body><wd:Worker_Changed xmlns:wd="urn:com.workday/bsvc"><wd:Worker_ID>21001</wd:Worker_ID></wd:Worker_Changed></soapenv:Body>
</soapenv:Envelope>""".encode()


def test_workday_ws_security_username_token(api, postgres):
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    envelope = soap(b"nonce-0123456789", now)
    first = api.post("/webhooks/workday", content=envelope, headers={"Content-Type": "text/xml"})
    again = api.post("/webhooks/workday", content=envelope, headers={"Content-Type": "text/xml"})
    assert (first.json()["status"], again.json()["status"]) == ("accepted", "duplicate")
    refused = {
        "stale": soap(b"nonce-stale", "2010-09-16T07:50:45Z"),
        "password": soap(b"nonce-password", now, password="guess"),
        "user": soap(b"nonce-user", now, user="someone"),
    }
    for why, body in refused.items():
        answer = api.post("/webhooks/workday", content=body)
        assert answer.status_code == 401, (why, answer.text)
    assert api.post("/webhooks/workday", content=b"<not xml").status_code == 400
    [row] = outbox(postgres)
    assert row.name == "workday.directory.updated"
    assert row.payload["data"]["operation"] == "Worker_Changed" and "21001" in row.payload["data"]["xml"]


def test_kintell_sessions_become_seed_004_events(api, postgres):
    for event in ("scheduled", "completed"):
        body = json.dumps({"session_id": "ks-9", "volunteer_id": 4, "hours": 1.5}).encode()
        answer = api.post(f"/v1/webhooks/session-{event}", content=body, headers=standard_headers(KINTELL_SECRET, body))
        assert answer.json()["status"] == "accepted"
    assert [r.name for r in outbox(postgres)] == ["kintell.session.scheduled", "kintell.session.completed"]


def test_unconfigured_provider_and_oversized_body_are_refused(postgres):
    with serving(postgres, ApiSettings()) as base:
        body = b'{"id": "1"}'
        unconfigured = httpx.post(f"{base}/webhooks/benevity", content=body,
                                  headers={"X-Benevity-Signature": body_signature("x", body)})
        huge = httpx.post(f"{base}/webhooks/benevity", content=b"x" * (1024 * 1024 + 1))
    assert unconfigured.status_code == 503 and "BENEVITY_WEBHOOK_SECRET" in unconfigured.json()["error"]
    assert huge.status_code == 413
    assert outbox(postgres) == []


# --- property: verification accepts exactly what was signed with the secret ------------------------------

@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=200), header=st.text(max_size=60), tamper=st.booleans())
def test_verifiers_accept_exactly_the_signed_request_and_refuse_anything_else_cleanly(body, header, tamper):
    """Any body and any header text: the three shared-secret schemes either accept the genuine signature or
    raise Refused, never another exception; a garbled header never passes."""
    sent = body + b"!" if tamper else body
    for check in (lambda h: sig.body_hmac_sha256(BENEVITY_SECRET, sent, h),
                  lambda h: sig.twilio(TWILIO_TOKEN, "https://x.test/hook", [("Body", sent.hex())], h)):
        with pytest.raises(sig.Refused):
            check(header)
    genuine = body_signature(BENEVITY_SECRET, body)
    if tamper:
        with pytest.raises(sig.Refused):
            sig.body_hmac_sha256(BENEVITY_SECRET, sent, genuine)
    else:
        sig.body_hmac_sha256(BENEVITY_SECRET, sent, genuine)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time())), "webhook-signature": header}
    with pytest.raises(sig.Refused):
        sig.standard_webhook(KINTELL_SECRET, body, headers)


def test_the_service_takes_its_urls_and_secrets_from_the_settings(settings_env):
    from ops_platform.settings import ConfigError, Settings, current

    for name, value in {"OPS_DAGSTER_URL": "http://dagster:3000", "OPS_API_TOKEN": "api-token-1",
                        "CRON_SECRET": "cron-secret-1", "RESEND_WEBHOOK_SECRET": RESEND_SECRET,
                        "OPS_TWILIO_AUTH_TOKEN": TWILIO_TOKEN, "GOODERA_CLIENT_ID": "ops-platform",
                        "WORKDAY_WEBHOOK_PASSWORD": WORKDAY_PASSWORD, "KINTELL_WEBHOOK_SECRET": KINTELL_SECRET}.items():
        settings_env(name, value)
    api = ApiSettings.of(current())
    assert (api.dagster_url, api.api_token, api.cron_secret, api.resend_secret, api.twilio_auth_token) == \
        ("http://dagster:3000", "api-token-1", "cron-secret-1", RESEND_SECRET, TWILIO_TOKEN)
    assert (api.goodera_client_id, api.workday_password, api.kintell_secret, api.benevity_secret) == \
        ("ops-platform", WORKDAY_PASSWORD, KINTELL_SECRET, None)
    for secret in ("api-token-1", "cron-secret-1", RESEND_SECRET, WORKDAY_PASSWORD, KINTELL_SECRET):
        assert secret not in repr(api) and secret not in repr(current())
    assert ApiSettings.of(Settings.load()).dagster_url == "http://dagster:3000"
    settings_env("OPS_API_PORT", "80a")
    with pytest.raises(ConfigError, match="OPS_API_PORT must be a port number from 1 to 65535, got '80a'"):
        Settings.load()
