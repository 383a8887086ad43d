"""Digests (seed 000) and seed 003's daily digest and morning call: content, once per due time, fallbacks."""

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
from helpers import LocalServer, in_one_window, sql

from ops_platform.briefings import daily_digest as daily
from ops_platform.briefings.morning_call import MAX_WORDS, spoken_seconds
from ops_platform.framework.controls import NOTIFY_JOB, set_controls
from ops_platform.framework.cron import next_after
from ops_platform.notifications.cron_rows import DIGESTS, Due, deliver_due, due_sensor_result
from ops_platform.jobs.briefings import daily_digest_job, place_morning_call, send_daily_digest
from ops_platform.jobs.digests import digest_message, digests_job
from ops_platform.notifications import Notification, NotifierResource, Severity
from ops_platform.notifications.transports import ChannelsResource
from ops_platform.sensors.digests import digests_sensor

CHICAGO = ZoneInfo("America/Chicago")
DIGEST_AT = datetime(2026, 3, 9, 13, 0, tzinfo=UTC)  # Monday 08:00 CDT
CALL_AT = datetime(2026, 3, 9, 11, 0, tzinfo=UTC)  # Monday 06:00 CDT


class Provider(LocalServer):
    """A real HTTP server standing in for a provider API (Twilio, Telegram): records requests, answers `status`."""

    def __init__(self, status: int = 200):
        self.status, self.requests = status, []

    @property
    def url(self) -> str:
        return self.base_url

    def respond(self, handler, body):
        self.requests.append((handler.path, body.decode()))
        handler.send_response(self.status)
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()
        handler.wfile.write(b'{"message": "provider says no"}' if self.status >= 300 else b'{"ok": true}')


def evaluate(postgres, instance):
    with dg.build_sensor_context(instance=instance, resources={"postgres": postgres}) as ctx:
        return digests_sensor(ctx)


def run(postgres, request, instance):
    return digests_job.execute_in_process(run_config=request.run_config, instance=instance,
                                          resources={"postgres": postgres, "notifier": NotifierResource(postgres=postgres)})


def outcome(result) -> dict:
    [event] = [e for e in result.all_node_events if e.is_successful_output]
    return {k: v.value for k, v in event.step_output_data.metadata.items()}


def add_digest(postgres, include='{"incidents": true}', next_send="now() - interval '1 minute'", cron="0 8 * * *",
               tz="America/Chicago", name="Ops", last_sent="NULL"):
    return sql(postgres, "INSERT INTO digests (workspace_id, name, cron, timezone, include, channels, recipients,"
                         f" next_send_at, last_sent_at) VALUES (7, :name, :cron, :tz, CAST(:include AS jsonb),"
                         f" '{{email,slack}}', '{{ops@example.com}}', {next_send}, {last_sent}) RETURNING id",
               name=name, cron=cron, tz=tz, include=include)[0][0]


def items(result):
    return [(i["id"]) for r in result.run_requests for i in r.run_config["ops"]["send_digests"]["config"]["items"]]


def test_a_due_digest_launches_one_run_however_often_the_sensor_looks(postgres, instance):
    due = add_digest(postgres)
    add_digest(postgres, next_send="now() + interval '1 hour'", name="later")
    first, second = in_one_window(lambda: evaluate(postgres, instance), times=2)
    assert items(first) == [due]
    assert [r.run_key for r in first.run_requests] == [r.run_key for r in second.run_requests]


def test_a_due_digest_whose_run_was_refused_is_asked_for_again_in_the_next_window(postgres, instance):
    add_digest(postgres)
    at = (datetime.now(UTC) + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)  # a window start

    def tick(now):
        with dg.build_sensor_context(instance=instance, resources={"postgres": postgres}) as ctx:
            return [r.run_key for r in due_sensor_result(ctx, postgres, "digests_sensor", DIGESTS, "send_digests",
                                                         NOTIFY_JOB, now=now).run_requests]

    request = evaluate(postgres, instance).run_requests[0]
    with postgres.begin() as conn:
        set_controls(conn, "test", kill_switch=True)
    refused = digests_job.execute_in_process(run_config=request.run_config,
                                             instance=instance, raise_on_error=False, resources={
                                                 "postgres": postgres, "notifier": NotifierResource(postgres=postgres)})
    assert not refused.success
    with postgres.begin() as conn:
        set_controls(conn, "test", kill_switch=False)
    assert tick(at) and tick(at) == tick(at + timedelta(minutes=9))  # one run per window, however often it looks
    assert tick(at + timedelta(minutes=10)) != tick(at)  # the refused run does not block the digest forever


def test_digest_content_from_include_sent_once_per_due_time(postgres, instance):
    sql(postgres, """
        INSERT INTO alert_rules (workspace_id, name, metric, aggregation, window_minutes, operator, threshold,
                                 last_value, last_triggered_at)
        VALUES (7, 'Revenue drop', 'revenue', 'sum', 60, '<', 100, 42, now() - interval '2 hours'),
               (7, 'Old alert', 'revenue', 'sum', 60, '<', 100, 1, now() - interval '3 days'),
               (8, 'Other workspace', 'revenue', 'sum', 60, '<', 100, 1, now() - interval '1 hour');
        INSERT INTO metric_points (metric, workspace_id, ts, value)
        VALUES ('signups', 7, now() - interval '3 hours', 10), ('signups', 7, now() - interval '1 hour', 30),
               ('signups', 8, now() - interval '1 hour', 999);
        INSERT INTO incidents (type, severity, title, dedup_key) VALUES ('db', 'SEV1', 'Database slow', 'i1');
        INSERT INTO audit_log (action, action_type, run_id, success, error, ts)
        VALUES ('sync_job', 'run', 'r1', false, 'boom', now() - interval '1 hour'),
               ('sync_job', 'run', 'r2', true, NULL, now() - interval '1 hour')""")
    digest = add_digest(postgres, include=json.dumps(
        {"alerts": True, "metrics": ["signups", "visits"], "incidents": True, "failed_runs": True}),
        last_sent="now() - interval '1 day'")
    due_at = sql(postgres, "SELECT next_send_at FROM digests")[0][0]
    request = evaluate(postgres, instance).run_requests[0]

    assert outcome(run(postgres, request, instance)) == {"sent": 1}
    assert outcome(run(postgres, request, instance)) == {"already_sent": 1}  # rerun: nothing new
    assert evaluate(postgres, instance).run_requests == []

    sent = sql(postgres, "SELECT channel, payload FROM outbox_messages ORDER BY channel")
    assert [channel for channel, _ in sent] == ["email", "slack"]  # explicit channels, embedded outbox
    payload = sent[0][1]
    assert payload["dedup_key"] == f"digest:{digest}:{due_at.isoformat()}"
    assert payload["recipients"] == ["ops@example.com"]
    body = payload["body"]
    assert "Alerts triggered (1)\n- Revenue drop: revenue = 42 (< 100)" in body
    assert "Old alert" not in body and "Other workspace" not in body
    assert "- signups: last 30, avg 20, min 10, max 30 (2 points)" in body
    assert "- visits: no data in the period" in body
    assert "Open incidents (1)\n- [SEV1] Database slow" in body
    assert "Failed runs (1)\n- sync_job: 1 failed" in body
    assert sql(postgres, "SELECT digest_id, due_at, status FROM digest_sends") == [(digest, due_at, "sent")]
    last_sent, next_send, error = sql(postgres, "SELECT last_sent_at, next_send_at, last_error FROM digests")[0]
    assert last_sent == due_at and error is None
    local = next_send.astimezone(CHICAGO)
    assert (local.hour, local.minute) == (8, 0) and next_send > datetime.now(UTC)


def test_a_digest_missed_for_days_is_sent_once(postgres, instance):
    add_digest(postgres, next_send="now() - interval '4 days'")
    assert outcome(run(postgres, evaluate(postgres, instance).run_requests[0], instance)) == {"sent": 1}
    assert sql(postgres, "SELECT count(*) FROM notifications WHERE type = 'digest'")[0][0] == 1
    next_send = sql(postgres, "SELECT next_send_at FROM digests")[0][0]
    assert datetime.now(UTC) < next_send <= datetime.now(UTC) + timedelta(days=1)
    assert evaluate(postgres, instance).run_requests == []


def test_digest_advances_across_the_dst_change_in_its_zone(postgres):
    due_at = datetime(2026, 3, 7, 14, 0, tzinfo=UTC)  # Saturday 08:00 CST
    digest = add_digest(postgres, next_send=f"'{due_at.isoformat()}'")
    status = deliver_due(postgres, NotifierResource(postgres=postgres), DIGESTS, Due(digest, due_at), digest_message,
                         "r1", due_at + timedelta(seconds=5))
    assert status == "sent"
    assert sql(postgres, "SELECT next_send_at FROM digests")[0][0] == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)


def test_invalid_digests_are_reported_on_the_row_and_do_not_stop_the_others(postgres, instance):
    good = add_digest(postgres)
    unknown_key = add_digest(postgres, include='{"incidents": true, "weather": true}')
    nothing = add_digest(postgres, include='{}')
    bad_zone = add_digest(postgres, tz="Chicago")
    bad_cron = add_digest(postgres, cron="every morning")
    result = evaluate(postgres, instance)
    assert items(result) == [good]
    errors = dict(sql(postgres, "SELECT id, last_error FROM digests WHERE last_error IS NOT NULL"))
    assert errors[unknown_key] == ("include is invalid: unknown key 'weather' (supported keys: alerts, metrics,"
                                   " incidents, failed_runs, period_hours)")
    assert errors[nothing].startswith("include selects nothing")
    assert errors[bad_zone].startswith("time zone 'Chicago' is not an IANA time zone")
    assert errors[bad_cron].startswith("cron 'every morning' is not a valid cron expression")
    assert set(errors) == {unknown_key, nothing, bad_zone, bad_cron}


NEVER = "cron '0 0 31 2 *' never fires (no 31 February): set a cron that has a next time"


def test_a_never_firing_cron_or_unknown_zone_fails_its_own_row_and_the_tick_serves_the_others(postgres, instance):
    good = add_digest(postgres)
    never_new = add_digest(postgres, cron="0 0 31 2 *", next_send="NULL", name="never, new")
    never_due = add_digest(postgres, cron="0 2 31 4,6,9,11 *", name="never, edited after its last time")
    no_zone = add_digest(postgres, tz="Atlantis/Capital", next_send="NULL", name="unknown zone")
    leap_day = add_digest(postgres, cron="0 0 29 2 *", next_send="NULL", name="rare but fires")
    result = evaluate(postgres, instance)
    assert items(result) == [good]
    errors = dict(sql(postgres, "SELECT id, last_error FROM digests WHERE last_error IS NOT NULL"))
    assert errors == {
        never_new: NEVER,
        never_due: "cron '0 2 31 4,6,9,11 *' never fires (no 31 April, June, September or November):"
                   " set a cron that has a next time",
        no_zone: "time zone 'Atlantis/Capital' is not an IANA time zone (e.g. 'America/Chicago' or 'UTC')",
    }
    leap = sql(postgres, "SELECT next_send_at FROM digests WHERE id = :id", id=leap_day)[0][0].astimezone(CHICAGO)
    assert (leap.month, leap.day, leap.hour) == (2, 29, 0) and leap > datetime.now(UTC)
    assert run(postgres, result.run_requests[0], instance).success


def test_a_digest_edited_to_a_never_firing_cron_after_its_tick_is_not_sent(postgres, instance):
    row = add_digest(postgres)
    request = evaluate(postgres, instance).run_requests[0]
    sql(postgres, "UPDATE digests SET cron = '0 0 31 2 *' WHERE id = :id", id=row)
    assert outcome(run(postgres, request, instance)) == {"invalid": 1}
    assert sql(postgres, "SELECT last_error FROM digests WHERE id = :id", id=row) == [(NEVER,)]
    assert sql(postgres, "SELECT count(*) FROM notifications")[0][0] == 0


def test_a_digest_channel_outside_email_and_slack_is_refused_by_the_database(postgres):
    try:
        sql(postgres, "INSERT INTO digests (name, cron, channels) VALUES ('x', '0 8 * * *', '{sms}')")
    except Exception as err:  # noqa: BLE001 - the message is what matters
        assert "digests_channels_check" in str(err)
    else:
        raise AssertionError("a digest to sms was accepted")


# -- seed 003: the daily digest ---------------------------------------------------------------------


def warn(key, type_="build_stalled", severity=Severity.WARN, title="Build stalled"):
    return Notification(type=type_, severity=severity, title=title, body="details", dedup_key=key)


def seed_day(postgres):
    notifier = NotifierResource(postgres=postgres)
    waiting = [warn(f"b{i}", title=f"Build stalled: prd-{i}") for i in range(3)]
    waiting += [warn("s1", "sync_slow", Severity.INFO, "Sync slow"), warn("q1", "quota", Severity.INFO, "Quota 81%"),
                warn("c1", "cost", Severity.INFO, "Cost up")]
    assert set(notifier.send_batch(waiting, at=DIGEST_AT - timedelta(hours=3))) == {"digest"}  # the policy's routing
    at = DIGEST_AT
    sql(postgres, "INSERT INTO incidents (type, severity, title, dedup_key, created_at) VALUES"
                  " ('db_latency', 'SEV1', 'Database slow', 'i1', :two_h), ('noise', 'INFO', 'Info only', 'i2', :two_h),"
                  " ('old', 'SEV0', 'Two days ago', 'i3', :two_d)", two_h=at - timedelta(hours=2), two_d=at - timedelta(days=2))
    sql(postgres, "INSERT INTO audit_log (action, action_type, run_id, success, ts) VALUES ('sync_job', 'run', 'r1', false, :t),"
                  " ('sync_job', 'run', 'r2', true, :t), ('vis_job', 'run', 'r3', true, :t)", t=at - timedelta(hours=1))
    sql(postgres, "INSERT INTO dead_letters (source, dedup_key, error, attempts, created_at)"
                  " VALUES ('sync_job', 'run:r1', 'boom', 4, :t)", t=at - timedelta(hours=1))


def test_daily_digest_five_bullets_by_severity_marks_messages_digested_once_a_day(postgres):
    seed_day(postgres)
    notifier = NotifierResource(postgres=postgres)
    result = send_daily_digest(postgres, notifier, DIGEST_AT)
    assert result["status"] == "sent" and result["day"] == "2026-03-09"
    assert result["bullets"] == 5
    digest_id, key, body, channels = sql(
        postgres, "SELECT id, dedup_key, body, channels FROM notifications WHERE type = 'daily_digest'")[0]
    assert key == "daily_digest:2026-03-09" and channels == ["email"]
    bullets = [line for line in body.splitlines() if line.startswith("• ")]
    assert bullets == [
        "• SEV1 incident ×1 (db_latency): Database slow",
        "• 1 of 3 workflow runs failed (sync_job ×1)",
        "• 1 new dead letters: work that ran out of retries",
        "• build_stalled ×3: Build stalled: prd-2",
        "• … and 3 more items (3 events), see the notification log",
    ]
    assert "1 new incidents · 3 workflow runs, 1 failed · 1 new dead letters · 6 messages in this digest" in body
    assert sql(postgres, "SELECT DISTINCT status, delivered_in FROM notifications WHERE dedup_key <> :k",
               k=key) == [("digested", digest_id)]
    assert sql(postgres, "SELECT channel FROM outbox_messages WHERE notification_id = :id", id=digest_id) == [("email",)]

    notifier.send(warn("late", title="After the digest"), at=DIGEST_AT + timedelta(hours=1))
    again = send_daily_digest(postgres, notifier, DIGEST_AT + timedelta(hours=2))  # the same local day
    assert again == {"day": "2026-03-09", "status": "already_sent"}
    assert sql(postgres, "SELECT day, notification_id, status FROM daily_digests") == [
        (DIGEST_AT.date(), digest_id, "sent")]
    assert sql(postgres, "SELECT count(*) FROM outbox_messages")[0][0] == 1
    assert sql(postgres, "SELECT status FROM notifications WHERE dedup_key = 'late'") == [("digest",)]
    tomorrow = send_daily_digest(postgres, notifier, DIGEST_AT + timedelta(days=1))
    assert tomorrow["status"] == "sent" and tomorrow["digested"] == 1


def test_a_recorded_digest_left_unsent_by_a_crash_is_delivered_by_the_next_run(postgres):
    seed_day(postgres)
    with postgres.begin() as conn:  # the first run recorded and marked, then stopped before sending
        digest = daily.gather(conn, DIGEST_AT, DIGEST_AT.astimezone(CHICAGO).date())
        assert daily.record(conn, digest, digest.message(("email",), ()))
    assert sql(postgres, "SELECT DISTINCT status, delivered_in FROM notifications") == [("digested", None)]
    sql(postgres, "INSERT INTO notifications (dedup_key, type, severity, title, status) "
                  "VALUES ('new', 'x', 'WARN', 'arrived after the crash', 'digest')")
    result = send_daily_digest(postgres, NotifierResource(postgres=postgres), DIGEST_AT + timedelta(minutes=5))
    assert result["status"] == "sent" and result["digested"] == 6  # the recorded content, not a new gathering
    [(digest_id, body)] = sql(postgres, "SELECT id, body FROM notifications WHERE type = 'daily_digest'")
    assert body == digest.body and "arrived after the crash" not in body
    assert sql(postgres, "SELECT notification_id FROM outbox_messages") == [(digest_id,)]
    assert sql(postgres, "SELECT status, count(*) FROM notifications WHERE delivered_in = :id GROUP BY status",
               id=digest_id) == [("digested", 6)]
    assert sql(postgres, "SELECT status FROM notifications WHERE dedup_key = 'new'") == [("digest",)]


def test_daily_digest_job_uses_configured_channels_and_its_gate(postgres, instance):
    seed_day(postgres)
    config = {"ops": {"daily_digest": {"config": {"at": DIGEST_AT.isoformat(), "channels": ["slack"]}}}}
    resources = {"postgres": postgres, "notifier": NotifierResource(postgres=postgres)}
    assert daily_digest_job.execute_in_process(run_config=config, instance=instance, resources=resources).success
    assert sql(postgres, "SELECT channel, payload->>'title' FROM outbox_messages") == [("slack", "Daily Digest 2026-03-09")]
    sql(postgres, "UPDATE controls SET comms_enabled = false")
    refused = daily_digest_job.execute_in_process(run_config=config, instance=instance, resources=resources,
                                                  raise_on_error=False)
    assert not refused.success
    assert "communications are disabled" in refused.failure_data_for_node("daily_digest").user_failure_data.description


# -- seed 003: the morning call ---------------------------------------------------------------------


def twilio_and_telegram(twilio, telegram):
    return ChannelsResource(twilio_api_url=twilio.url, twilio_account_sid="ACtest", twilio_auth_token="tw-token",
                            twilio_from="+15550000001", twilio_to="+15550000002", telegram_api_url=telegram.url,
                            telegram_bot_token="tg-token", telegram_chat_id="42", delivery_attempts=2,
                            delivery_backoff_seconds=0.01)


def test_morning_call_script_fits_in_a_minute_and_reads_only(postgres):
    long_title = "Primary database replica lag above threshold in region us-east-1 for the analytics cluster"
    sql(postgres, "INSERT INTO incidents (type, severity, title, dedup_key) SELECT 'db', 'SEV0', :t || g, 'i' || g"
                  " FROM generate_series(1, 40) g", t=long_title)
    sql(postgres, "INSERT INTO dead_letters (source, dedup_key, error, attempts) VALUES ('x', 'd1', 'e', 3)")
    before = sql(postgres, "SELECT count(*) FROM incidents WHERE status = 'open'")
    result = place_morning_call(postgres, NotifierResource(postgres=postgres), CALL_AT)
    assert result["call"] == "sent" and result["day"] == "2026-03-09"
    script = sql(postgres, "SELECT body FROM notifications WHERE dedup_key = 'morning_call:2026-03-09'")[0][0]
    assert len(script.split()) <= MAX_WORDS and spoken_seconds(script) <= 60
    assert script.startswith("Good morning. Here is your ops status for Monday, March 9.")
    assert "40 critical incidents open: SEV0, Primary database replica lag above threshold in region …" in script
    assert "and 37 more." in script and "Pending: 1 dead letter to resolve." in script
    assert sql(postgres, "SELECT count(*) FROM incidents WHERE status = 'open'") == before


def test_morning_call_falls_back_to_a_text_when_the_call_fails(postgres):
    notifier_for = lambda channels: NotifierResource(postgres=postgres, channels=channels)  # noqa: E731
    with Provider(status=500) as twilio, Provider() as telegram:
        notifier = notifier_for(twilio_and_telegram(twilio, telegram))
        result = place_morning_call(postgres, notifier, CALL_AT)
        rerun = place_morning_call(postgres, notifier, CALL_AT + timedelta(minutes=3))  # a retried run
    assert (result["call"], result["text"]) == ("failed", "sent")
    assert (rerun["call"], rerun["text"]) == ("failed", "duplicate")
    assert [path for path, _ in twilio.requests] == ["/2010-04-01/Accounts/ACtest/Calls.json"] * 2  # 2 attempts
    [(path, body)] = telegram.requests
    assert path.endswith("/sendMessage") and "Good morning." in json.loads(body)["text"]
    reason = sql(postgres, "SELECT reason FROM notifications WHERE dedup_key = 'morning_call:2026-03-09'")[0][0]
    assert "HTTP 500" in reason and "tw-token" not in reason


def test_morning_call_that_goes_through_sends_no_text(postgres):
    with Provider() as twilio, Provider() as telegram:
        notifier = NotifierResource(postgres=postgres, channels=twilio_and_telegram(twilio, telegram))
        assert place_morning_call(postgres, notifier, CALL_AT)["call"] == "sent"
    assert len(twilio.requests) == 1 and telegram.requests == []
    assert twilio.requests[0][0].endswith("/Calls.json") and "Good+morning." in twilio.requests[0][1]


def test_daily_schedules_pass_their_tick_and_key_the_run_by_local_date(postgres, instance):
    from ops_platform.schedules.briefings import daily_digest_schedule, morning_call_schedule

    schedules = {s.name: s for s in (daily_digest_schedule, morning_call_schedule)}
    assert (schedules["daily_digest_schedule"].cron_schedule, schedules["daily_digest_schedule"].execution_timezone) \
        == ("0 8 * * *", "America/Chicago")
    assert schedules["morning_call_schedule"].cron_schedule == "0 6 * * *"
    tick = DIGEST_AT.astimezone(CHICAGO)
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=tick,
                                   resources={"postgres": postgres}) as ctx:
        request = schedules["daily_digest_schedule"].evaluate_tick(ctx).run_requests[0]
    assert request.run_key == "daily_digest:2026-03-09"
    assert datetime.fromisoformat(request.run_config["ops"]["daily_digest"]["config"]["at"]) == DIGEST_AT


def test_a_daily_time_in_the_repeated_fall_back_hour_fires_once():
    first = next_after("30 1 * * *", "America/Chicago", datetime(2026, 11, 1, 5, 0, tzinfo=UTC))
    assert first == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 CDT
    assert next_after("30 1 * * *", "America/Chicago", first) == datetime(2026, 11, 2, 7, 30, tzinfo=UTC)
    # an every-15-minutes cron keeps going through both occurrences of the hour
    quarter = next_after("*/15 * * * *", "America/Chicago", datetime(2026, 11, 1, 6, 50, tzinfo=UTC))
    assert quarter == datetime(2026, 11, 1, 7, 0, tzinfo=UTC)  # 01:00 CST, the repeated hour
