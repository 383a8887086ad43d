"""The notification channels against real stand-ins on 127.0.0.1: an HTTP server playing Slack, Teams,
Telegram, Twilio and a Resend-shaped email API, and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import base64
import json
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import parse_qs

import dagster as dg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from helpers import LocalServer, free_port, sql

from ops_platform.notifications import Notification, NotifierResource, Severity
from ops_platform.outbound.retry import DeliveryError
from ops_platform.notifications.email import Email, OutboxEmailSender
from ops_platform.outbound.retry import WAIT_HINT_CAP_SECONDS
from ops_platform.notifications.transports import ChannelsResource
from ops_platform.notifications.twilio import CALL_WORDS
from ops_platform.build import build_channels
from ops_platform.settings import ConfigError

DAYTIME = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
SLACK_SECRET_PATH = "/services/T000/B000/slack-secret-part"
TEAMS_SECRET_PATH = "/workflows/teams-secret-sig"
BOT_TOKEN = "123456:telegram-secret-token"
TWILIO_SID, TWILIO_TOKEN = "AC0123456789", "twilio-secret-token"
API_KEY = "re_secret_api_key"
SMTP_PASSWORD = "smtp-secret-password"
SECRETS = [SLACK_SECRET_PATH, TEAMS_SECRET_PATH, BOT_TOKEN, TWILIO_TOKEN, API_KEY, SMTP_PASSWORD]
FAST = {"delivery_backoff_seconds": 0.01, "delivery_timeout_seconds": 5.0}


# -- stand-ins -----------------------------------------------------------------------------------


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)  # when the server got it

    @property
    def json(self):
        return json.loads(self.body)

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    @property
    def basic_auth(self) -> tuple[str, str]:
        user, _, password = base64.b64decode(self.headers["authorization"].split()[1]).decode().partition(":")
        return user, password


def provider_ok(hit: Hit) -> tuple[int, dict]:
    """What the real providers answer on success (the batch endpoint: one id per email)."""
    if hit.path.endswith("/emails/batch"):
        return 200, {"data": [{"id": f"re_{i}"} for i in range(len(hit.json))]}
    return 200, {"id": "re_single", "sid": "SM1", "ok": True}


@dataclass
class Provider(LocalServer):
    """An HTTP provider on 127.0.0.1 that records every POST and answers the scripted replies
    (status, JSON body[, headers]), then success. A header value may be a function, called when replying."""

    replies: list[tuple] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.base_url

    def respond(self, handler, body):
        hit = Hit(handler.path, {k.lower(): v for k, v in handler.headers.items()}, body)
        self.hits.append(hit)
        status, reply, *headers = self.replies.pop(0) if self.replies else provider_ok(hit)
        data = json.dumps(reply).encode()
        handler.send_response(status)
        for name, value in (headers[0] if headers else {}).items():
            handler.send_header(name, value() if callable(value) else value)  # a callable: made at reply time
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


class Mailbox:
    """aiosmtpd handler: answers the scripted DATA replies first, then accepts and keeps each message."""

    def __init__(self, *replies: str):
        self.replies = list(replies)
        self.received: list[tuple[tuple, list[str], EmailMessage]] = []  # (peer, rcpt, message)

    async def handle_DATA(self, server, session, envelope):
        if self.replies:
            return self.replies.pop(0)
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.received.append((session.peer, list(envelope.rcpt_tos), message))
        return "250 OK"


@pytest.fixture
def smtp_server():
    """Start a real SMTP server; login works as ops / SMTP_PASSWORD only."""
    servers = []

    def start(*replies: str) -> tuple[Controller, Mailbox]:
        def authenticate(server, session, envelope, mechanism, data):
            ok = isinstance(data, LoginPassword) and data.login == b"ops" and data.password == SMTP_PASSWORD.encode()
            return AuthResult(success=ok, handled=False)  # False: the server answers 535 itself

        mailbox = Mailbox(*replies)
        controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), authenticator=authenticate,
                                auth_require_tls=False)
        controller.start()
        servers.append(controller)
        return controller, mailbox

    yield start
    for controller in servers:
        controller.stop()


def payload(title="Disk almost full", body="92% used on /data", severity="SEV1", recipients=()):
    return {"id": 7, "dedup_key": "k", "type": "health_alert", "severity": severity, "title": title, "body": body,
            "meta": {}, "recipients": list(recipients)}


def deliver(channels: ChannelsResource, name: str, data: dict, conn=None) -> None:
    channel = channels.channel(name)
    try:
        channel.deliver(7, data, conn)
    finally:
        channel.close()


# -- chat channels -------------------------------------------------------------------------------


def test_slack_teams_and_telegram_request_shapes():
    with Provider() as p:
        channels = ChannelsResource(slack_webhook_url=p.url + SLACK_SECRET_PATH,
                                    teams_webhook_url=p.url + TEAMS_SECRET_PATH,
                                    telegram_bot_token=BOT_TOKEN, telegram_chat_id="-100200", telegram_api_url=p.url)
        for name in ("slack", "teams", "telegram"):
            deliver(channels, name, payload())
    slack, teams, telegram = p.hits
    assert slack.path == SLACK_SECRET_PATH and slack.json == {"text": "*[SEV1] Disk almost full*\n92% used on /data"}
    assert teams.path == TEAMS_SECRET_PATH
    card = teams.json["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert [b["text"] for b in card["content"]["body"]] == ["[SEV1] Disk almost full", "92% used on /data"]
    assert telegram.path == f"/bot{BOT_TOKEN}/sendMessage"
    assert telegram.json["chat_id"] == "-100200"
    assert telegram.json["text"] == "[SEV1] Disk almost full\n92% used on /data"


def test_telegram_text_is_cut_to_its_limit():
    with Provider() as p:
        channels = ChannelsResource(telegram_bot_token=BOT_TOKEN, telegram_chat_id="1", telegram_api_url=p.url)
        deliver(channels, "telegram", payload(body="x" * 10_000))
    text = p.hits[0].json["text"]
    assert len(text) == 4096 and text.endswith("…")


# -- Twilio ----------------------------------------------------------------------------------------


def twilio(p: Provider, **extra) -> ChannelsResource:
    settings = {"twilio_account_sid": TWILIO_SID, "twilio_auth_token": TWILIO_TOKEN, "twilio_from": "+15550001111",
                "twilio_to": "+15550002222, +15550003333", "twilio_api_url": p.url}
    return ChannelsResource(**settings | FAST | extra)


def test_sms_is_a_form_post_with_basic_auth_to_each_default_number():
    with Provider() as p:
        deliver(twilio(p), "sms", payload())
    assert [h.path for h in p.hits] == [f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"] * 2
    assert [h.form["To"] for h in p.hits] == ["+15550002222", "+15550003333"]
    assert p.hits[0].form == {"To": "+15550002222", "From": "+15550001111",
                              "Body": "[SEV1] Disk almost full\n92% used on /data"}
    assert p.hits[0].basic_auth == (TWILIO_SID, TWILIO_TOKEN)


def test_the_message_recipients_replace_the_default_and_email_addresses_are_not_texted():
    with Provider() as p:
        deliver(twilio(p), "sms", payload(recipients=["oncall@example.com", "+15559990000"]))
    assert [h.form["To"] for h in p.hits] == ["+15559990000"]


def test_a_call_speaks_escaped_text_cut_to_one_minute():
    long_body = "disk <full> & growing " * 200
    with Provider() as p:
        deliver(twilio(p, twilio_to="+15550002222"), "call", payload(severity="SEV0", title="DB down", body=long_body))
    hit = p.hits[0]
    assert hit.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Calls.json"
    assert hit.form["To"] == "+15550002222" and hit.basic_auth == (TWILIO_SID, TWILIO_TOKEN)
    twiml = hit.form["Twiml"]
    assert "&lt;full&gt; &amp; growing" in twiml  # escaped, so the XML stays well-formed
    said = ET.fromstring(twiml).find("Say").text
    assert said.startswith("Severity zero. DB down. disk <full> & growing")
    assert len(said.split()) <= CALL_WORDS and said.endswith("and more.")


# -- retries ---------------------------------------------------------------------------------------


def test_server_errors_and_429_are_retried_then_succeed():
    with Provider(replies=[(503, {}), (429, {"message": "slow down"})]) as p:
        deliver(twilio(p, twilio_to="+15550002222"), "sms", payload())
    assert len(p.hits) == 3 and len({h.body for h in p.hits}) == 1


def test_server_errors_until_the_last_attempt_raise_delivery_error():
    with Provider(replies=[(500, {})] * 3) as p:
        with pytest.raises(DeliveryError) as err:
            deliver(ChannelsResource(slack_webhook_url=p.url + SLACK_SECRET_PATH, **FAST), "slack", payload())
    assert len(p.hits) == 3 and err.value.attempts == 3 and err.value.retryable
    assert str(err.value) == "slack: HTTP 500 after 3 attempts"


def test_a_4xx_is_not_retried_and_its_reason_is_kept_without_the_secret():
    refusal = (401, {"ok": False, "description": f"Unauthorized: token {BOT_TOKEN} revoked"})
    with Provider(replies=[refusal]) as p:
        channels = ChannelsResource(telegram_bot_token=BOT_TOKEN, telegram_chat_id="1", telegram_api_url=p.url, **FAST)
        with pytest.raises(DeliveryError) as err:
            deliver(channels, "telegram", payload())
    assert len(p.hits) == 1 and err.value.attempts == 1 and not err.value.retryable
    assert str(err.value) == "telegram: HTTP 401: Unauthorized: token *** revoked (not retried)"


def test_network_errors_are_retried():
    channels = ChannelsResource(teams_webhook_url=f"http://127.0.0.1:{free_port()}/x", **FAST)  # nothing listens
    with pytest.raises(DeliveryError) as err:
        deliver(channels, "teams", payload())
    assert err.value.attempts == 3 and err.value.retryable
    assert str(err.value) == "teams: ConnectError after 3 attempts"


# -- wait hints: the one retry rule (outbound/retry.py) ------------------------------------------


def every_provider(p: Provider) -> ChannelsResource:
    return ChannelsResource(slack_webhook_url=p.url + SLACK_SECRET_PATH, teams_webhook_url=p.url + TEAMS_SECRET_PATH,
                            telegram_bot_token=BOT_TOKEN, telegram_chat_id="1", telegram_api_url=p.url,
                            twilio_account_sid=TWILIO_SID, twilio_auth_token=TWILIO_TOKEN, twilio_from="+15550001111",
                            twilio_to="+15550002222", twilio_api_url=p.url, **FAST)


def telegram_flood(seconds: int) -> tuple[int, dict]:
    """Telegram's real 429: the wait is in the JSON body only, no Retry-After header."""
    return 429, {"ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {seconds}",
                 "parameters": {"retry_after": seconds}}


def test_telegram_429_waits_the_retry_after_of_its_body():
    with Provider(replies=[telegram_flood(1)]) as p:
        deliver(every_provider(p), "telegram", payload())
    assert len(p.hits) == 2 and p.hits[1].at - p.hits[0].at >= 1.0  # the backoff alone would be ~0.01 s


@pytest.mark.parametrize("name, retry_after, least", [
    ("slack", lambda: "1", 1.0),
    # an HTTP date has whole seconds: now + 2 s, floored, is more than 1 s away when the reply is sent
    ("teams", lambda: formatdate(time.time() + 2, usegmt=True), 0.95),
    ("sms", lambda: "1", 1.0),
])
def test_a_retry_after_header_in_seconds_or_as_a_date_is_waited(name, retry_after, least):
    with Provider(replies=[(429, {}, {"Retry-After": retry_after}), (503, {}, {"Retry-After": retry_after})]) as p:
        deliver(every_provider(p), name, payload())
    assert len(p.hits) == 3
    assert p.hits[1].at - p.hits[0].at >= least and p.hits[2].at - p.hits[1].at >= least


@pytest.mark.parametrize("name, reply", [
    ("slack", (429, {}, {"Retry-After": "120"})),
    ("telegram", telegram_flood(120)),
    ("sms", (429, {"code": 20429, "message": "Too Many Requests"},
             {"X-RateLimit-Reset": lambda: str(int(time.time()) + 120)})),  # a Unix time
])
def test_a_wait_hint_over_the_cap_is_not_slept_but_handed_to_the_retry_queue(postgres, name, reply):
    message = Notification(type="health_alert", severity=Severity.SEV1, title="Disk", body="full", dedup_key=f"hint:{name}")
    with Provider(replies=[reply]) as p:
        notifier = NotifierResource(postgres=postgres, channels=every_provider(p), routes={"SEV1": [name]})
        started = time.monotonic()
        assert notifier.send(message, at=DAYTIME) == "failed"
        took = time.monotonic() - started
    assert len(p.hits) == 1 and took < WAIT_HINT_CAP_SECONDS / 3  # one attempt, no sleep
    [(nid, reason)] = sql(postgres, "SELECT id, reason FROM notifications")
    assert re.search(rf"asked to wait 1(19|20) s \(over the {WAIT_HINT_CAP_SECONDS:.0f} s cap\)", reason), reason
    assert not any(s in reason for s in SECRETS)
    [(job, payload_, run_at, due_in)] = sql(
        postgres, "SELECT job_name, payload, run_at, extract(epoch FROM run_at - now()) FROM retry_jobs")
    assert (job, payload_) == ("notification.redeliver",
                               {"notification_id": nid, "channel": name, "type": "health_alert"})
    assert 110 <= due_in <= 121


def test_a_refusal_is_final_even_with_a_wait_hint():
    with Provider(replies=[(400, {"message": "bad request"}, {"Retry-After": "1"})]) as p:
        with pytest.raises(DeliveryError) as err:
            deliver(every_provider(p), "slack", payload())
    assert len(p.hits) == 1 and str(err.value) == "slack: HTTP 400: bad request (not retried)"
    assert err.value.retry_at is None


# -- unconfigured --------------------------------------------------------------------------------


def test_unconfigured_channels_keep_the_message_in_the_outbox_with_a_note(postgres):
    notifier = NotifierResource(postgres=postgres, channels=ChannelsResource(),
                                routes={"SEV1": ["slack", "email"], "SEV0": ["call"]})
    assert notifier.send(Notification(type="health_alert", severity=Severity.SEV1, title="Disk", body="full", dedup_key="u1"), at=DAYTIME) == "sent"
    rows = sql(postgres, "SELECT channel, payload->>'outbox_note' FROM outbox_messages ORDER BY channel")
    assert rows == [
        ("email", "email is not configured (set OPS_SMTP_HOST, or OPS_EMAIL_API_URL and OPS_EMAIL_API_KEY);"
                  " kept in the local outbox"),
        ("slack", "slack is not configured (set OPS_SLACK_WEBHOOK_URL); kept in the local outbox"),
    ]
    assert "OPS_SLACK_WEBHOOK_URL" in sql(postgres, "SELECT reason FROM notifications")[0][0]


def test_error_mode_names_the_missing_environment_variables(postgres):
    channels = ChannelsResource(unconfigured="error", twilio_account_sid=TWILIO_SID)
    with pytest.raises(ConfigError, match="channel 'sms' is not configured: set OPS_TWILIO_AUTH_TOKEN and "
                                          "OPS_TWILIO_FROM"):
        channels.channel("sms")
    with postgres.begin() as conn, pytest.raises(ConfigError, match="OPS_SMTP_HOST, or OPS_EMAIL_API_URL"):
        channels.email_sender(conn)
    with pytest.raises(ConfigError, match="set OPS_EMAIL_API_KEY"):
        ChannelsResource(unconfigured="error", email_api_url="http://127.0.0.1:1").channel("email")


def test_status_reports_each_channel_without_secret_values():
    configured = ChannelsResource(
        slack_webhook_url="https://hooks.example" + SLACK_SECRET_PATH, telegram_bot_token=BOT_TOKEN,
        twilio_account_sid=TWILIO_SID, twilio_auth_token=TWILIO_TOKEN, twilio_from="+1555",
        email_api_url="https://api.example", email_api_key=API_KEY, smtp_password=SMTP_PASSWORD)
    status = configured.status()
    assert status == {
        "outbox": "configured",
        "webhook": "set OPS_WEBHOOK_URL and OPS_WEBHOOK_SECRET",
        "email": "configured; no default recipients (set OPS_EMAIL_TO or give each message recipients)",
        "slack": "configured",
        "teams": "set OPS_TEAMS_WEBHOOK_URL",
        "telegram": "set OPS_TELEGRAM_CHAT_ID",
        "sms": "configured; no default recipients (set OPS_TWILIO_TO or give each message recipients)",
        "call": "configured; no default recipients (set OPS_TWILIO_TO or give each message recipients)",
    }
    assert not any(secret in json.dumps(status) for secret in SECRETS)


# -- email: SMTP -----------------------------------------------------------------------------------


def smtp_channels(controller, **extra) -> ChannelsResource:
    settings = {"smtp_host": controller.hostname, "smtp_port": controller.port, "smtp_starttls": False,
                "smtp_username": "ops", "smtp_password": SMTP_PASSWORD, "email_from": "Ops <ops@example.com>",
                "email_to": ["oncall@example.com"]}
    return ChannelsResource(**settings | FAST | extra)


def test_an_smtp_batch_uses_one_connection_and_stable_message_ids(smtp_server, postgres):
    controller, mailbox = smtp_server()
    emails = [Email(to=(f"user{i}@example.com",), subject=f"Report {i}", text="plain", html="<b>rich</b>",
                    key=f"report:{i}") for i in range(3)]
    with postgres.begin() as conn:
        sender = smtp_channels(controller).email_sender(conn)
        ids = sender.send_batch(emails)
        sender.close()
    assert len(mailbox.received) == 3 and len({peer for peer, _, _ in mailbox.received}) == 1  # one connection
    assert [rcpt for _, rcpt, _ in mailbox.received] == [["user0@example.com"], ["user1@example.com"],
                                                         ["user2@example.com"]]
    first = mailbox.received[0][2]
    assert first["Subject"] == "Report 0" and first["From"] == "Ops <ops@example.com>"
    assert [part.get_content_type() for part in first.walk()][1:] == ["text/plain", "text/html"]
    assert ids == [m["Message-ID"] for _, _, m in mailbox.received] and ids[0].endswith("@example.com>")
    with postgres.begin() as conn:  # the same key makes the same Message-ID on a later send
        assert smtp_channels(controller).email_sender(conn).send_batch(emails[:1]) == ids[:1]


def test_smtp_retries_a_4xx_from_the_first_unsent_email_and_refuses_5xx_at_once(smtp_server, postgres):
    controller, mailbox = smtp_server("451 4.3.0 try again later")
    emails = [Email(to=("a@example.com",), subject="one", key="one"), Email(to=("b@example.com",), subject="two")]
    with postgres.begin() as conn:
        smtp_channels(controller).email_sender(conn).send_batch(emails)
    assert [m["Subject"] for _, _, m in mailbox.received] == ["one", "two"]

    controller, mailbox = smtp_server("550 5.1.1 mailbox unavailable", "250 OK")
    with postgres.begin() as conn, pytest.raises(DeliveryError) as err:
        smtp_channels(controller).email_sender(conn).send_batch(emails[:1])
    assert str(err.value) == "email (SMTP): 550 5.1.1 mailbox unavailable (not retried)" and err.value.attempts == 1
    assert mailbox.received == [] and mailbox.replies == ["250 OK"]  # no second try reached the server


def test_smtp_refused_login_and_missing_starttls_are_clear_errors(smtp_server, postgres):
    controller, mailbox = smtp_server()
    one = [Email(to=("a@example.com",), subject="one")]
    with postgres.begin() as conn, pytest.raises(DeliveryError, match=r"^email \(SMTP\): 535 .*\(not retried\)$"):
        smtp_channels(controller, smtp_password="wrong").email_sender(conn).send_batch(one)
    with postgres.begin() as conn, pytest.raises(
            DeliveryError, match=r"SMTPNotSupportedError: STARTTLS extension not supported by server. \(not retried\)"):
        smtp_channels(controller, smtp_starttls=True).email_sender(conn).send_batch(one)
    assert mailbox.received == []


def test_the_email_channel_sends_one_email_with_a_one_line_subject(smtp_server, postgres):
    controller, mailbox = smtp_server()
    notifier = NotifierResource(postgres=postgres, channels=smtp_channels(controller), routes={"SEV1": ["email"]})
    message = Notification(type="health_alert", severity=Severity.SEV1, title="Disk\nalmost full", body="92% used", dedup_key="e1")
    assert notifier.send(message, at=DAYTIME) == "sent"
    (_, rcpt, sent), = mailbox.received
    assert rcpt == ["oncall@example.com"] and sent["Subject"] == "[SEV1] Disk almost full"
    assert sent.get_content().strip() == "92% used"


def test_an_email_without_any_recipient_is_refused_before_sending(postgres):
    with postgres.begin() as conn, pytest.raises(DeliveryError, match="no recipients .*OPS_EMAIL_TO"):
        OutboxEmailSender(conn).send_batch([Email(to=(), subject="x")])
    with postgres.begin() as conn, pytest.raises(DeliveryError, match="not an email address: 'a@b.c\\\\nBcc: x@y'"):
        OutboxEmailSender(conn).send_batch([Email(to=("a@b.c\nBcc: x@y",), subject="x")])
    assert sql(postgres, "SELECT count(*) FROM outbox_messages") == [(0,)]


# -- email: API ------------------------------------------------------------------------------------


def api_channels(p: Provider) -> ChannelsResource:
    return ChannelsResource(email_api_url=p.url, email_api_key=API_KEY, email_from="ops@example.com", **FAST)


def test_the_email_api_sends_batches_of_at_most_100_with_idempotency_keys(postgres):
    emails = [Email(to=(f"u{i}@example.com",), subject=f"s{i}", text="t", key=f"k{i}") for i in range(250)]
    with Provider() as p, postgres.begin() as conn:
        sender = api_channels(p).email_sender(conn)
        ids = sender.send_batch(emails)
        sender.close()
    assert [h.path for h in p.hits] == ["/emails/batch"] * 3
    assert [len(h.json) for h in p.hits] == [100, 100, 50] and len(ids) == 250
    assert all(h.headers["authorization"] == f"Bearer {API_KEY}" for h in p.hits)
    assert p.hits[0].json[0] == {"from": "ops@example.com", "to": ["u0@example.com"], "subject": "s0", "text": "t"}
    keys = [h.headers["idempotency-key"] for h in p.hits]
    assert len(set(keys)) == 3


def test_a_single_api_email_is_retried_under_the_same_idempotency_key(postgres):
    with Provider(replies=[(502, {})]) as p, postgres.begin() as conn:
        ids = api_channels(p).email_sender(conn).send_batch([Email(to=("a@example.com",), subject="s", html="<p>h</p>",
                                                                   key="digest:2026-11-22")])
    assert ids == ["re_single"] and [h.path for h in p.hits] == ["/emails", "/emails"]
    assert [h.headers["idempotency-key"] for h in p.hits] == ["digest:2026-11-22"] * 2
    assert p.hits[1].json["html"] == "<p>h</p>"


def test_an_api_refusal_is_not_retried():
    with Provider(replies=[(422, {"name": "validation_error", "message": "Invalid `to` field"})]) as p:
        channels = api_channels(p).model_copy(update={"email_to": ["a@example.com"]})
        with pytest.raises(DeliveryError, match=r"^email \(API\): HTTP 422: Invalid `to` field \(not retried\)$"):
            deliver(channels, "email", payload())
    assert len(p.hits) == 1


# -- email: outbox ---------------------------------------------------------------------------------


def test_the_outbox_email_sender_keeps_each_key_once(postgres):
    emails = [Email(to=("a@example.com",), subject="A", key="welcome:1"),
              Email(to=("b@example.com",), subject="B"),
              Email(to=("c@example.com",), subject="C", key="welcome:3")]
    with postgres.begin() as conn:
        first = ChannelsResource().email_sender(conn).send_batch(emails)
    with postgres.begin() as conn:
        second = ChannelsResource().email_sender(conn).send_batch(emails)
    assert first[0] == second[0] and first[2] == second[2] and first[1] != second[1]
    rows = sql(postgres, "SELECT 'outbox:' || id, ref, payload->>'subject', notification_id, payload->>'outbox_note'"
                         " FROM outbox_messages WHERE channel = 'email' ORDER BY id")
    assert [r[:4] for r in rows] == [(first[0], "welcome:1", "A", None), (first[1], None, "B", None),
                                     (first[2], "welcome:3", "C", None), (second[1], None, "B", None)]
    assert all("OPS_SMTP_HOST" in r[4] for r in rows)


# -- through the notifier --------------------------------------------------------------------------


def test_sev1_goes_out_as_sms_and_sev0_as_a_call(postgres):
    with Provider() as p:
        notifier = NotifierResource(postgres=postgres, channels=twilio(p, twilio_to="+15550002222"))  # default routes
        sev1 = Notification(type="incident.db", severity=Severity.SEV1, title="Replica lag", body="12 s", dedup_key="i1")
        sev0 = Notification(type="incident.api", severity=Severity.SEV0, title="API down", body="5xx", dedup_key="i0")
        assert notifier.send(sev1, at=DAYTIME) == "sent" and notifier.send(sev0, at=DAYTIME) == "sent"
    assert [h.path.rsplit("/", 1)[1] for h in p.hits] == ["Messages.json", "Calls.json"]
    assert p.hits[0].form["Body"] == "[SEV1] Replica lag\n12 s"
    assert "API down" in p.hits[1].form["Twiml"]
    assert sql(postgres, "SELECT dedup_key, status, channels FROM notifications ORDER BY id") == [
        ("i1", "sent", ["sms"]), ("i0", "sent", ["call"])]


def test_no_secret_reaches_the_notification_rows(postgres):
    echo = {"message": f"bad credentials {TWILIO_TOKEN} {API_KEY}"}  # a provider echoing any secret
    with Provider(replies=[(401, echo)] * 10) as p:
        channels = ChannelsResource(
            slack_webhook_url=p.url + SLACK_SECRET_PATH, teams_webhook_url=p.url + TEAMS_SECRET_PATH,
            telegram_bot_token=BOT_TOKEN, telegram_chat_id="1", telegram_api_url=p.url,
            twilio_account_sid=TWILIO_SID, twilio_auth_token=TWILIO_TOKEN, twilio_from="+1555", twilio_to="+1666",
            twilio_api_url=p.url, email_api_url=p.url, email_api_key=API_KEY, email_to=["a@example.com"], **FAST)
        routes = {"SEV1": ["slack", "teams", "telegram", "sms", "call", "email"]}
        notifier = NotifierResource(postgres=postgres, channels=channels, routes=routes)
        assert notifier.send(Notification(type="t", severity=Severity.SEV1, title="x", body="y", dedup_key="s1"), at=DAYTIME) == "failed"
    assert len(p.hits) == 6  # each channel tried once: a 401 is final
    reason = sql(postgres, "SELECT reason FROM notifications")[0][0]
    assert [part.split(":")[0] for part in reason.split("; ")] == ["slack", "teams", "telegram", "sms", "call",
                                                                   "email (API)"]
    assert reason.count("HTTP 401: bad credentials *** *** (not retried)") == 6
    tables = ("notifications", "dead_letters", "retry_jobs", "suppression_log", "outbox_messages")
    stored = " ".join(str(sql(postgres, f"SELECT t::text FROM {table} t")) for table in tables)  # wherever kept
    assert not any(secret in stored for secret in SECRETS)
    assert not any(secret in stored for secret in SECRETS)


# -- configuration from the environment ----------------------------------------------------------


def test_build_channels_reads_the_environment_and_keeps_secrets_as_env_vars(settings_env):
    settings_env("OPS_SMTP_HOST", "mail.example.com")
    settings_env("OPS_SMTP_PORT", "2525")
    settings_env("OPS_SMTP_STARTTLS", "off")
    settings_env("OPS_SMTP_PASSWORD", SMTP_PASSWORD)
    settings_env("OPS_EMAIL_TO", "a@example.com, b@example.com,")
    settings_env("OPS_SLACK_WEBHOOK_URL", "https://hooks.example" + SLACK_SECRET_PATH)
    channels = build_channels()
    assert (channels.smtp_host, channels.smtp_port, channels.smtp_starttls) == ("mail.example.com", 2525, False)
    assert channels.email_to == ["a@example.com", "b@example.com"]
    assert isinstance(channels.smtp_password, dg.EnvVar) and channels.smtp_password == "OPS_SMTP_PASSWORD"
    assert isinstance(channels.slack_webhook_url, dg.EnvVar)
    assert channels.status()["email"] == "configured" and channels.status()["slack"] == "configured"


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("OPS_SMTP_PORT", "smtp", "OPS_SMTP_PORT must be a port number from 1 to 65535, got 'smtp'"),
    ("OPS_SMTP_PORT", "70000", "OPS_SMTP_PORT must be a port number"),
    ("OPS_SMTP_STARTTLS", "maybe", "OPS_SMTP_STARTTLS must be true or false"),
])
def test_build_channels_refuses_bad_values_naming_the_variable(settings_env, name, value, expected):
    settings_env(name, value)
    with pytest.raises(ConfigError, match=expected):
        build_channels()
