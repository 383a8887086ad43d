"""Providers' delivery-status webhooks applied to what we sent: Resend email events → email_deliveries,
Twilio status callbacks → sms_deliveries. The webhooks come through the real HTTP service (signed as the
providers sign them), the sends through local provider APIs; each event is applied once, out-of-order
events do not undo later ones, and ids we never sent are 'ignored'."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import httpx
from api_server import serving
from helpers import sql
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_api_webhooks import RESEND_SECRET, TWILIO_TOKEN, standard_headers
from test_channels import Provider, twilio
from test_event_subscriptions import handle
from test_events_outbox import EmailApi, add_event

from ops_platform.api import signatures as sig
from ops_platform.api.settings import ApiSettings
from ops_platform.events.delivery_status import TWILIO_STAGES, TWILIO_STATUS, twilio_status
from ops_platform.events.outbox import Event

SETTINGS = ApiSettings(public_url=None, resend_secret=RESEND_SECRET, twilio_auth_token=TWILIO_TOKEN)


def resend_event(kind: str, email_id: str, at: str, **extra) -> dict:
    """Resend's webhook body (resend.com/docs/dashboard/webhooks/event-types)."""
    return {"type": kind, "created_at": at, "data": {
        "created_at": "2026-06-01T10:00:00.000Z", "email_id": email_id, "from": "Ops <ops@example.org>",
        "to": ["cfo@example.org"], "subject": "Report ready: Q2 impact", **extra}}


def post_resend(base: str, body: dict, message_id: str) -> httpx.Response:
    raw = json.dumps(body).encode()
    return httpx.post(f"{base}/v1/notifications/webhooks/resend", content=raw,
                      headers=standard_headers(RESEND_SECRET, raw, message_id, prefix="svix"))


def post_twilio(base: str, form: dict) -> httpx.Response:
    url = f"{base}/v1/notifications/webhooks/twilio"
    return httpx.post(url, content=urlencode(form), headers={
        "X-Twilio-Signature": sig.twilio_signature(TWILIO_TOKEN, url, form.items()),
        "Content-Type": "application/x-www-form-urlencoded"})


def outbox_ids(postgres, prefix: str) -> list[int]:
    return [r[0] for r in sql(postgres, "SELECT id FROM events_outbox WHERE name LIKE :p ORDER BY id", p=prefix + "%")]


def test_resend_events_update_the_email_deliveries_of_their_email_id_once(postgres):
    with EmailApi() as api:
        reports = [add_event(postgres, "report.generated", {"report_id": 4, "title": "Q2", "recipients": [to]})
                   for to in ("cfo@example.org", "gone@example.org")]
        handle(postgres, reports, api)
    assert sql(postgres, "SELECT provider_id FROM email_deliveries ORDER BY id") == [("em_0",), ("em_1",)]
    bounce = {"message": "The recipient's mailbox does not exist.", "subType": "General", "type": "Permanent"}
    with serving(postgres, SETTINGS) as base:
        answers = [
            post_resend(base, resend_event("email.delivered", "em_0", "2026-06-01T10:00:05.000Z"), "msg_1"),
            post_resend(base, resend_event("email.bounced", "em_1", "2026-06-01T10:00:06.000Z", bounce=bounce), "msg_2"),
            # late: Resend's delay notice of before the delivery must not undo it
            post_resend(base, resend_event("email.delivery_delayed", "em_0", "2026-06-01T10:00:01.000Z"), "msg_3"),
            post_resend(base, resend_event("email.delivered", "em_not_ours", "2026-06-01T10:00:07.000Z"), "msg_4"),
        ]
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    events = outbox_ids(postgres, "resend.")
    counts = handle(postgres, events)
    assert (counts["delivered"], counts["ignored"]) == (3, 1)
    assert handle(postgres, events, run_id="run-2")["already_handled"] == 4  # exactly once
    assert sql(postgres, "SELECT provider_id, status, delivery_status, delivery_detail FROM email_deliveries "
                         "ORDER BY id") == [("em_0", "sent", "delivered", None),
                                             ("em_1", "sent", "bounced", bounce["message"])]
    assert sql(postgres, "SELECT name, outcome, error FROM events_handled WHERE outcome = 'ignored'") == [
        ("resend.email.delivered", "ignored", "no email delivery with Resend id 'em_not_ours'")]


def test_twilio_status_callbacks_update_the_sms_of_their_message_sid_once(postgres):
    replies = [(201, {"sid": "SMaaa", "status": "queued"}), (201, {"sid": "SMbbb", "status": "queued"})]
    with Provider(replies=list(replies)) as p:
        channel = twilio(p).channel("sms")
        try:
            with postgres.begin() as conn:
                channel.deliver(7, {"severity": "SEV1", "title": "Disk almost full", "body": "92%",
                                    "recipients": ["+15550002222", "+15550003333"]}, conn)
        finally:
            channel.close()
    assert sql(postgres, "SELECT message_sid, notification_id, to_number, status FROM sms_deliveries "
                         "ORDER BY message_sid") == [("SMaaa", 7, "+15550002222", "queued"),
                                                     ("SMbbb", 7, "+15550003333", "queued")]
    common = {"AccountSid": "AC123", "From": "+15550001111", "ApiVersion": "2010-04-01"}
    with serving(postgres, SETTINGS) as base:
        answers = [post_twilio(base, common | form) for form in (
            {"MessageSid": "SMaaa", "SmsSid": "SMaaa", "MessageStatus": "delivered", "SmsStatus": "delivered",
             "To": "+15550002222"},
            {"MessageSid": "SMbbb", "SmsSid": "SMbbb", "MessageStatus": "undelivered", "SmsStatus": "undelivered",
             "ErrorCode": "30003", "To": "+15550003333"},
            {"MessageSid": "SMaaa", "SmsSid": "SMaaa", "MessageStatus": "sent", "SmsStatus": "sent",
             "To": "+15550002222"},  # arrives after 'delivered': must not undo it
            {"MessageSid": "SMzzz", "SmsSid": "SMzzz", "MessageStatus": "failed", "SmsStatus": "failed",
             "ErrorCode": "30008", "To": "+15550009999"})]
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    events = outbox_ids(postgres, "twilio.")
    counts = handle(postgres, events)
    assert (counts["delivered"], counts["ignored"], counts["sms_statuses_applied"]) == (3, 1, 2)
    assert handle(postgres, events, run_id="run-2")["already_handled"] == 4  # exactly once
    assert sql(postgres, "SELECT message_sid, status, error_code FROM sms_deliveries ORDER BY message_sid") == [
        ("SMaaa", "delivered", None), ("SMbbb", "undelivered", "30003")]
    assert sql(postgres, "SELECT error FROM events_handled WHERE outcome = 'ignored'") == [
        ("no SMS with Twilio Message SID 'SMzzz'",)]


def test_a_status_event_without_its_id_is_invalid_and_changes_nothing(postgres):
    sql(postgres, "INSERT INTO sms_deliveries (message_sid, notification_id, to_number, status) "
                  "VALUES ('SMaaa', 7, '+15550002222', 'sent')")
    broken = [add_event(postgres, "resend.email.delivered", {"provider": "resend", "data": {
                  "type": "email.delivered", "created_at": "2026-06-01T10:00:00Z", "data": {}}}),
              add_event(postgres, "twilio.message.status", {"provider": "twilio", "data": {"MessageStatus": "sent"}}),
              add_event(postgres, "twilio.message.status", {"provider": "twilio", "data": {
                  "MessageSid": "SMaaa", "MessageStatus": "lost-in-space"}})]
    assert handle(postgres, broken)["invalid"] == 3
    errors = [r[0].split(": ", 1)[1] for r in sql(postgres, "SELECT error FROM events_handled ORDER BY event_id")]
    assert sql(postgres, "SELECT status FROM sms_deliveries") == [("sent",)]
    assert errors == [
        "missing 'email_id' (Resend's id of the email)",
        "a Twilio status callback needs 'MessageSid' and 'MessageStatus'",
        ("'MessageStatus' 'lost-in-space' is not one of Twilio's: accepted, scheduled, queued, sending, sent, "
         "canceled, failed, undelivered, delivered, partially_delivered, read")]


def test_each_sms_asks_twilio_for_status_callbacks_at_the_public_url_of_ops_api(settings_env):
    from ops_platform.build import build_channels

    settings_env("OPS_API_PUBLIC_URL", "https://ops.example.org/")
    assert build_channels().twilio_status_callback == "https://ops.example.org/v1/notifications/webhooks/twilio"
    with Provider() as p:
        channel = twilio(p, twilio_status_callback=build_channels().twilio_status_callback).channel("sms")
        try:
            channel.deliver(7, {"severity": "SEV1", "title": "Disk", "recipients": ["+15550002222"]}, None)
        finally:
            channel.close()
    assert p.hits[0].form["StatusCallback"] == "https://ops.example.org/v1/notifications/webhooks/twilio"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(statuses=st.lists(st.sampled_from(sorted(TWILIO_STAGES)), min_size=1, max_size=6))
def test_out_of_order_callbacks_end_on_the_last_status_of_the_furthest_stage(postgres, statuses):
    sql(postgres, "DELETE FROM sms_deliveries")
    sql(postgres, "INSERT INTO sms_deliveries (message_sid, notification_id, to_number, status) "
                  "VALUES ('SMp', 1, '+15550002222', 'queued')")
    for i, status in enumerate(statuses):
        twilio_status(postgres, Event(i, TWILIO_STATUS, {"provider": "twilio", "data": {
            "MessageSid": "SMp", "MessageStatus": status}}))
    furthest = max(TWILIO_STAGES[s] for s in ["queued", *statuses])
    expected = [s for s in ["queued", *statuses] if TWILIO_STAGES[s] == furthest][-1]
    assert sql(postgres, "SELECT status FROM sms_deliveries") == [(expected,)]
