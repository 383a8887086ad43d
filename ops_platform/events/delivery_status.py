"""Providers' delivery-status webhooks (seed 004 "Webhooks received": Resend delivery status, Twilio status),
applied to what we sent. The inbound service (api/inbound.py) writes each into the events outbox once;
the events outbox job hands it here once.

- Resend `resend.email.<status>` {"type", "created_at", "data": {"email_id", …, "bounce": {"message"}?}}:
  the `email_deliveries` rows whose `provider_id` is that email id (events/email.py stores it at the send)
  get `delivery_status` = <status>, unless the row already holds a later event (Resend does not promise
  order: the event's `created_at` decides).
- Twilio `twilio.message.status` (form fields MessageSid, MessageStatus, ErrorCode?): the `sms_deliveries`
  row of that SID (notifications/twilio.py stores it at the send) gets the status, unless it already holds
  one further along Twilio's lifecycle (callbacks can arrive out of order; TWILIO_STAGES).

An id we never sent (another system's email, a test message from the provider's dashboard) is recorded
as 'ignored' with the id, not as an error.
"""

from __future__ import annotations

from sqlalchemy import text

from ops_platform.events.outbox import Event, InvalidEvent, Result, event_data, event_time, require
from ops_platform.resources.postgres import PostgresResource

# Resend's email events (resend.com/docs/dashboard/webhooks/event-types), as the inbound service names them.
RESEND_STATUSES = ("sent", "delivered", "delivery_delayed", "bounced", "complained", "failed", "suppressed",
                   "opened", "clicked")
RESEND_EVENTS = tuple(f"resend.email.{s}" for s in RESEND_STATUSES)
TWILIO_STATUS = "twilio.message.status"
DELIVERY_STATUS_EVENTS = (*RESEND_EVENTS, TWILIO_STATUS)
# Twilio's outbound message lifecycle; a status never replaces one of a later stage.
TWILIO_STAGES = {"accepted": 0, "scheduled": 0, "queued": 0, "sending": 1, "sent": 2, "canceled": 3, "failed": 3,
                 "undelivered": 3, "delivered": 3, "partially_delivered": 3, "read": 4}

_EMAIL_STATUS_SQL = text("""
UPDATE email_deliveries SET delivery_status = :status, delivery_status_at = :at, delivery_detail = :detail
WHERE provider_id = :provider_id AND (delivery_status_at IS NULL OR delivery_status_at <= :at)
RETURNING id
""")
_EMAIL_KNOWN_SQL = text("SELECT count(*) FROM email_deliveries WHERE provider_id = :provider_id")
_SMS_SQL = text("SELECT status FROM sms_deliveries WHERE message_sid = :sid FOR UPDATE")
_SMS_STATUS_SQL = text("UPDATE sms_deliveries SET status = :status, error_code = :error WHERE message_sid = :sid")


def resend_status(postgres: PostgresResource, event: Event) -> Result:
    """Apply one Resend email event to the deliveries of its `data.email_id`."""
    body = event_data(event)
    status = event.name.removeprefix("resend.email.")
    data = require(body, "data", dict, "the email the event is about")
    provider_id = str(require(data, "email_id", str, "Resend's id of the email"))
    at = event_time(body, "created_at")
    bounce = data.get("bounce") if isinstance(data.get("bounce"), dict) else {}
    detail = bounce.get("message") if isinstance(bounce.get("message"), str) else None
    with postgres.begin() as conn:
        updated = conn.execute(_EMAIL_STATUS_SQL, {"status": status, "at": at, "detail": detail,
                                                   "provider_id": provider_id}).all()
        known = updated or conn.execute(_EMAIL_KNOWN_SQL, {"provider_id": provider_id}).scalar_one()
    if not known:
        return Result("ignored", f"no email delivery with Resend id {provider_id!r}")
    return Result("delivered", counts={"email_statuses_applied": len(updated)})


def twilio_status(postgres: PostgresResource, event: Event) -> Result:
    """Apply one Twilio status callback to the SMS of its MessageSid (SmsSid/SmsStatus: the older names)."""
    form = event_data(event)
    sid = form.get("MessageSid") or form.get("SmsSid")
    status = form.get("MessageStatus") or form.get("SmsStatus")
    if not isinstance(sid, str) or not sid or not isinstance(status, str) or not status:
        raise InvalidEvent("a Twilio status callback needs 'MessageSid' and 'MessageStatus'")
    if status not in TWILIO_STAGES:
        raise InvalidEvent(f"'MessageStatus' {status!r} is not one of Twilio's: {', '.join(TWILIO_STAGES)}")
    with postgres.begin() as conn:
        current = conn.execute(_SMS_SQL, {"sid": sid}).scalar()
        if current is None:
            return Result("ignored", f"no SMS with Twilio Message SID {sid!r}")
        if TWILIO_STAGES.get(current, -1) > TWILIO_STAGES[status]:
            return Result("delivered", counts={"sms_statuses_stale": 1})
        conn.execute(_SMS_STATUS_SQL, {"sid": sid, "status": status, "error": form.get("ErrorCode") or None})
    return Result("delivered", counts={"sms_statuses_applied": 1})


def delivery_status_subscriptions(postgres: PostgresResource) -> dict:
    """Event name → handler, merged into the subscriptions' table (events/subscriptions.py)."""
    return {name: (lambda event: resend_status(postgres, event)) for name in RESEND_EVENTS} | {
        TWILIO_STATUS: lambda event: twilio_status(postgres, event)}
