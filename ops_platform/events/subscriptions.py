"""Seed 004 event subscriptions ("NATS Event Subscriptions"), one handler per event name, run by the events
outbox job exactly once per event (events/outbox.py). Each writes under the provider's own key, so a
handler that dies half way and runs again completes without doubling anything.

| event | subscriber (seed 004) | handler |
|---|---|---|
| kintell.session.completed | Analytics: update metrics; Q2Q AI: extract evidence | a `kintell_sessions` row and the volunteer activity it counts as (mentoring hours), then the evidence sentences of its feedback (`impact_evidence`) |
| buddy.match.created | Analytics: update metrics | a `buddy_matches` row |
| user.profile.updated | Unified Profile: update completeness | the volunteer's profile merged, `profile_completeness` recomputed |
| report.generated | Notifications: send email | an email to the report's recipients (events/email.py, idempotent per event) |
| resend.email.* (delivered, bounced, complained, …) | Notifications: delivery status | the email_deliveries row of that Resend id (events/delivery_status.py) |
| twilio.message.status | Notifications: delivery status | the sms_deliveries row of that Message SID (events/delivery_status.py) |
| campaign.status.changed | Analytics: update snapshots | not here: the events outbox sensor asks for the affected hour of `warehouse/campaign_metrics_hourly` (sensors/events.py) |

Evidence extraction is deterministic (no AI service is reachable): the feedback's sentences that name an
outcome (EVIDENCE_TERMS), at most MAX_EVIDENCE, in order; a model can replace `extract_evidence` later.
"""

from __future__ import annotations

import json
import re
from html import escape

from sqlalchemy import text

from ops_platform.events.delivery_status import DELIVERY_STATUS_EVENTS, delivery_status_subscriptions
from ops_platform.events.email import EMAIL_SEND, send_emails
from ops_platform.events.outbox import Event, InvalidEvent, Result, event_data, event_time, require
from ops_platform.notifications.transports import ChannelsResource
from ops_platform.resources.postgres import PostgresResource

SESSION_COMPLETED, BUDDY_MATCHED = "kintell.session.completed", "buddy.match.created"
PROFILE_UPDATED, REPORT_GENERATED = "user.profile.updated", "report.generated"
PROFILE_FIELDS = ("name", "email", "phone", "location", "skills", "languages", "availability", "bio")
EVIDENCE_TERMS = {
    "skills": ("learn", "skill", "practis", "practic", "improv"),
    "confidence": ("confident", "confidence", "less nervous"),
    "employment": ("job", "interview", "cv", "career", "hired"),
    "wellbeing": ("happy", "lonely", "less alone", "welcome", "belong"),
}
MAX_EVIDENCE = 5

_SESSION_SQL = text(
    "INSERT INTO kintell_sessions (session_id, volunteer_id, campaign_id, hours, completed_at, event_id)"
    " VALUES (:session_id, :volunteer_id, :campaign_id, :hours, :completed_at, :event_id)"
    " ON CONFLICT (session_id) DO NOTHING"
)
_ACTIVITY_SQL = text("""
WITH activity AS (
    INSERT INTO volunteer_activities (volunteer_id, campaign_id, activity_type, hours, occurred_at)
    SELECT volunteer_id, campaign_id, 'mentoring', hours, completed_at FROM kintell_sessions
    WHERE session_id = :session_id AND activity_id IS NULL
    RETURNING id
)
UPDATE kintell_sessions SET activity_id = (SELECT id FROM activity)
WHERE session_id = :session_id AND activity_id IS NULL AND EXISTS (SELECT 1 FROM activity)
""")
_EVIDENCE_SQL = text(
    "INSERT INTO impact_evidence (session_id, idx, kind, excerpt) VALUES (:session_id, :idx, :kind, :excerpt)"
    " ON CONFLICT (session_id, idx) DO NOTHING"
)
_MATCH_SQL = text(
    "INSERT INTO buddy_matches (match_id, buddy_id, newcomer, campaign_id, matched_at, event_id)"
    " VALUES (:match_id, :buddy_id, :newcomer, :campaign_id, :matched_at, :event_id) ON CONFLICT (match_id) DO NOTHING"
)
_PROFILE_SQL = text("""
UPDATE volunteers SET profile = profile || CAST(:profile AS jsonb), profile_updated_at = now(),
       profile_completeness = round(100.0 * (
           SELECT count(*) FROM unnest(CAST(:fields AS text[])) f
           WHERE coalesce(btrim((profile || CAST(:profile AS jsonb)) ->> f, ' "[]{}'), '') <> '') / :n, 2)
WHERE id = :volunteer_id RETURNING profile_completeness
""")


def extract_evidence(feedback: str) -> list[tuple[str, str]]:
    """(kind, sentence) for each sentence of `feedback` naming an outcome, in order, at most MAX_EVIDENCE."""
    found = []
    for sentence in re.split(r"(?<=[.!?])\s+", feedback.strip()):
        lowered = sentence.lower()
        kind = next((k for k, terms in EVIDENCE_TERMS.items() if any(t in lowered for t in terms)), None)
        if kind and sentence:
            found.append((kind, sentence[:500]))
    return found[:MAX_EVIDENCE]


def session_completed(postgres: PostgresResource, event: Event) -> Result:
    """kintell.session.completed {session_id, volunteer_id, campaign_id?, hours, completed_at, feedback?}."""
    data = event_data(event)
    session = {"session_id": str(require(data, "session_id", (str, int), "the Kintell session id")),
               "volunteer_id": require(data, "volunteer_id", int, "a volunteers id"),
               "campaign_id": data.get("campaign_id") if isinstance(data.get("campaign_id"), int) else None,
               "hours": require(data, "hours", (int, float), "the session's length in hours"),
               "completed_at": event_time(data, "completed_at"), "event_id": event.id}
    if session["hours"] < 0:
        raise InvalidEvent(f"'hours' must be 0 or more, got {session['hours']}")
    evidence = extract_evidence(data["feedback"]) if isinstance(data.get("feedback"), str) else []
    with postgres.begin() as conn:
        conn.execute(_SESSION_SQL, session)
        conn.execute(_ACTIVITY_SQL, {"session_id": session["session_id"]})
        for idx, (kind, excerpt) in enumerate(evidence):
            conn.execute(_EVIDENCE_SQL, {"session_id": session["session_id"], "idx": idx, "kind": kind, "excerpt": excerpt})
    return Result("delivered", counts={"sessions_recorded": 1, "evidence_extracted": len(evidence)})


def buddy_matched(postgres: PostgresResource, event: Event) -> Result:
    """buddy.match.created {match_id, buddy_id, newcomer, campaign_id?, matched_at}."""
    data = event_data(event)
    with postgres.begin() as conn:
        conn.execute(_MATCH_SQL, {
            "match_id": str(require(data, "match_id", (str, int), "the match id")),
            "buddy_id": require(data, "buddy_id", int, "the buddy's volunteers id"),
            "newcomer": require(data, "newcomer", str, "who was matched"),
            "campaign_id": data.get("campaign_id") if isinstance(data.get("campaign_id"), int) else None,
            "matched_at": event_time(data, "matched_at"), "event_id": event.id})
    return Result("delivered", counts={"buddy_matches_recorded": 1})


def profile_updated(postgres: PostgresResource, event: Event) -> Result:
    """user.profile.updated {volunteer_id, profile: {field: value}}: merged, completeness = filled
    PROFILE_FIELDS / all × 100."""
    data = event_data(event)
    volunteer_id = require(data, "volunteer_id", int, "a volunteers id")
    profile = require(data, "profile", dict, "the changed profile fields")
    with postgres.begin() as conn:
        row = conn.execute(_PROFILE_SQL, {"profile": json.dumps(profile), "fields": list(PROFILE_FIELDS),
                                          "n": len(PROFILE_FIELDS), "volunteer_id": volunteer_id}).first()
    if row is None:
        return Result("failed", f"volunteer {volunteer_id} does not exist; profile not updated")
    return Result("delivered", counts={"profiles_updated": 1})


def report_generated(postgres: PostgresResource, channels: ChannelsResource, event: Event) -> Result:
    """report.generated {report_id, title, recipients: [..], url?}: one email to the recipients, sent
    through the email queue's path (idempotent per event, see events/email.py)."""
    data = event_data(event)
    title = require(data, "title", str, "the report's title")
    recipients = require(data, "recipients", list, "the e-mail addresses to send it to")
    url = data.get("url") if isinstance(data.get("url"), str) else None
    link = f'<p><a href="{escape(url)}">Open the report</a></p>' if url else ""
    email = {"to": recipients, "subject": f"Report ready: {title}",
             "html": f"<p>Your report <b>{escape(title)}</b> is ready.</p>{link}",
             "text": f"Your report {title} is ready." + (f"\n{url}" if url else "")}
    return send_emails(postgres, channels, Event(event.id, EMAIL_SEND, email))


def subscriptions(postgres: PostgresResource, channels: ChannelsResource) -> dict:
    """Event name → handler, for the events outbox job's dispatch table."""
    return {
        SESSION_COMPLETED: lambda event: session_completed(postgres, event),
        BUDDY_MATCHED: lambda event: buddy_matched(postgres, event),
        PROFILE_UPDATED: lambda event: profile_updated(postgres, event),
        REPORT_GENERATED: lambda event: report_generated(postgres, channels, event),
    } | delivery_status_subscriptions(postgres)


SUBSCRIBED = (SESSION_COMPLETED, BUDDY_MATCHED, PROFILE_UPDATED, REPORT_GENERATED, *DELIVERY_STATUS_EVENTS)
