"""Seed 004 event subscriptions: each event's handler, once per event, on real Postgres (and a real email API)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import httpx
from api_server import serving
from helpers import sql
from test_api_webhooks import standard_headers
from test_events_outbox import EmailApi, add_event, evaluate, run

from ops_platform.api.settings import ApiSettings
from ops_platform.assets.campaigns import campaign_metrics_hourly

from ops_platform.campaigns.snapshots import changed_hours
from ops_platform.events.outbox import consume
from ops_platform.events.subscriptions import extract_evidence, subscriptions
from ops_platform.notifications.transports import ChannelsResource
from ops_platform.sensors.campaigns import campaign_snapshot_sensor

FEEDBACK = ("We practised interview answers together. I feel more confident now! "
            "The weather was nice. She got a job offer the week after.")


def volunteer(postgres, name="ada"):
    return sql(postgres, "INSERT INTO volunteers (name) VALUES (:n) RETURNING id", n=name)[0][0]


def handle(postgres, ids, api=None, run_id="run-1"):
    channels = ChannelsResource(email_api_url=api.url, email_api_key="k", delivery_backoff_seconds=0.01) \
        if api else ChannelsResource()
    return consume(postgres, ids, subscriptions(postgres, channels), run_id)


def test_evidence_is_the_sentences_that_name_an_outcome():
    assert extract_evidence(FEEDBACK) == [
        ("skills", "We practised interview answers together."),
        ("confidence", "I feel more confident now!"),
        ("employment", "She got a job offer the week after.")]


def test_a_completed_session_updates_metrics_and_evidence_once_even_when_handled_again(postgres):
    v = volunteer(postgres)
    inbound = {"provider": "kintell", "provider_event_id": "msg_1",
               "data": {"session_id": "ks-1", "volunteer_id": v, "hours": 1.5,
                        "completed_at": "2026-06-01T10:00:00Z", "feedback": FEEDBACK}}
    event = add_event(postgres, "kintell.session.completed", inbound)
    counts = handle(postgres, [event])
    assert counts["delivered"] == 1 and counts["evidence_extracted"] == 3
    sql(postgres, "DELETE FROM events_handled")  # as if the run died before recording it: handled again
    handle(postgres, [event], run_id="run-2")
    assert sql(postgres, "SELECT volunteer_id, activity_type, hours FROM volunteer_activities") == [(v, "mentoring", 1.5)]
    assert sql(postgres, "SELECT count(*) FROM impact_evidence WHERE session_id = 'ks-1'")[0][0] == 3
    assert sql(postgres, "SELECT activity_id IS NOT NULL FROM kintell_sessions")[0][0]


def test_buddy_match_profile_and_malformed_events(postgres):
    v = volunteer(postgres)
    match = add_event(postgres, "buddy.match.created", {"match_id": "m-1", "buddy_id": v, "newcomer": "Omar",
                                                        "matched_at": "2026-06-01T09:00:00+00:00"})
    profile = add_event(postgres, "user.profile.updated", {"volunteer_id": v, "profile": {
        "name": "Ada", "email": "ada@example.org", "skills": ["python"], "bio": "", "languages": []}})
    more = add_event(postgres, "user.profile.updated", {"volunteer_id": v, "profile": {"phone": "+44 1"}})
    broken = add_event(postgres, "buddy.match.created", {"match_id": "m-2", "newcomer": "Lea"})
    unknown = add_event(postgres, "user.profile.updated", {"volunteer_id": 999, "profile": {}})
    counts = handle(postgres, [match, profile, more, broken, unknown])
    assert (counts["delivered"], counts["invalid"], counts["failed"]) == (3, 1, 1)
    assert sql(postgres, "SELECT match_id, newcomer FROM buddy_matches") == [("m-1", "Omar")]
    # name, email, skills, phone of 8 fields (an empty bio or language list is not filled)
    assert float(sql(postgres, "SELECT profile_completeness FROM volunteers WHERE id = :v", v=v)[0][0]) == 50.0
    errors = dict(sql(postgres, "SELECT event_id, error FROM events_handled WHERE outcome <> 'delivered'"))
    assert "'buddy_id'" in errors[broken] and "volunteer 999 does not exist" in errors[unknown]


def test_report_generated_sends_its_email_once(postgres):
    with EmailApi() as api:
        event = add_event(postgres, "report.generated", {"report_id": 4, "title": "Q2 impact",
                                                         "recipients": ["cfo@example.org"], "url": "https://r/4"})
        handle(postgres, [event], api)
        handle(postgres, [event], api, run_id="run-2")
        sql(postgres, "DELETE FROM events_handled")
        handle(postgres, [event], api, run_id="run-3")
    assert len(api.delivered) == 1
    assert api.delivered[0]["subject"] == "Report ready: Q2 impact" and api.delivered[0]["to"] == ["cfo@example.org"]


def test_status_changes_are_read_by_hour_once_their_hour_has_ended(postgres):
    now = datetime.now(UTC)
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    earlier = this_hour - timedelta(hours=3)
    ids = [sql(postgres, "INSERT INTO events_outbox (name, payload, created_at) VALUES ('campaign.status.changed', "
                         "CAST(:p AS jsonb), :at) RETURNING id", p=json.dumps({"campaign_id": 1}), at=at)[0][0]
           for at in (earlier + timedelta(minutes=5), earlier + timedelta(minutes=50),
                      earlier + timedelta(hours=1, minutes=1), now)]
    hours, cursor = changed_hours(postgres, ("0", 0))
    assert [(h.hour, h.last_event_id) for h in hours] == [(earlier, ids[1]), (earlier + timedelta(hours=1), ids[2])]
    assert cursor[1] == ids[2]  # the change of the running hour is read on a later tick
    again, cursor_again = changed_hours(postgres, cursor)
    assert again == [] and cursor_again is None


def test_a_kintell_webhook_reaches_its_subscribers_through_the_outbox_sensor_and_job(postgres, instance):
    """End to end: the HTTP service writes the event, the events outbox sensor hands it to events_job, the
    subscriber records the session; a second delivery of the webhook changes nothing."""
    v = volunteer(postgres)
    body = json.dumps({"session_id": "ks-7", "volunteer_id": v, "hours": 2,
                       "completed_at": "2026-06-01T10:00:00Z", "feedback": "I learned a lot."}).encode()
    with serving(postgres, ApiSettings(kintell_secret="kintell-secret")) as base:
        for _ in range(2):
            answer = httpx.post(f"{base}/v1/webhooks/session-completed", content=body,
                                headers=standard_headers("kintell-secret", body, "msg_ks_7"))
            assert answer.status_code == 200
    [request] = evaluate(postgres, instance).run_requests
    assert run(postgres, instance, request).success
    assert sql(postgres, "SELECT session_id, hours FROM kintell_sessions") == [("ks-7", 2)]
    assert sql(postgres, "SELECT kind FROM impact_evidence") == [("skills",)]
    assert sql(postgres, "SELECT name, outcome FROM events_handled") == [("kintell.session.completed", "delivered")]


def test_a_status_change_rematerializes_only_its_hour_and_only_when_needed(postgres, warehouse, instance):
    sql(postgres, "INSERT INTO campaigns (name, status, starts_on, ends_on, seat_capacity, credit_budget, created_at) "
                  "VALUES ('c', 'at_capacity', '2026-01-01', '2026-12-31', 10, 100, now() - interval '1 day')")
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    partition = hour.strftime("%Y-%m-%d-%H:%M")
    change = sql(postgres, "INSERT INTO events_outbox (name, payload, created_at) VALUES ('campaign.status.changed', "
                           "CAST(:p AS jsonb), :at) RETURNING id", p=json.dumps({"campaign_id": 1, "from": "active",
                                                                                  "to": "at_capacity"}),
                 at=hour + timedelta(minutes=20))[0][0]

    def tick(cursor=None):
        with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"postgres": postgres}) as ctx:
            return campaign_snapshot_sensor(ctx)

    first = tick()
    [request] = first.run_requests
    assert (request.partition_key, request.run_key) == (partition, f"campaign.status.changed:{partition}:{change}")
    assert tick(first.cursor).run_requests == []  # read once

    dg.materialize([campaign_metrics_hourly], partition_key=partition, instance=instance,
                   resources={"postgres": postgres, "warehouse": warehouse})
    with warehouse.client() as ch:
        assert ch.query("SELECT status FROM campaign_metrics_hourly").result_rows == [("at_capacity",)]
    fresh = tick()  # from the start again: the hour's snapshot now postdates the change, nothing to redo
    assert fresh.run_requests == [] and "already snapshotted" in fresh.skip_reason.skip_message
