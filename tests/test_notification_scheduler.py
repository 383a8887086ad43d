"""The notification scheduler (seed 004): cron per row in its time zone, once per due time, bad rows isolated."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from helpers import Receiver, in_one_window, sql

from ops_platform.framework.controls import set_controls
from ops_platform.framework.cron import ScheduleError, next_after
from ops_platform.notifications.cron_rows import SCHEDULED, Due, deliver_due, scan
from ops_platform.jobs.notifications import scheduled_message, scheduled_notifications_job
from ops_platform.notifications import NotifierResource
from ops_platform.notifications.transports import ChannelsResource
from ops_platform.sensors.notifications import scheduled_notifications_sensor

SECRET = "scheduler-secret"
CHICAGO = ZoneInfo("America/Chicago")


def evaluate(postgres, instance):
    with dg.build_sensor_context(instance=instance, resources={"postgres": postgres}) as ctx:
        return scheduled_notifications_sensor(ctx)


def notifier(postgres, receiver=None):
    channels = ChannelsResource(webhook_url=receiver.url, webhook_secret=SECRET) if receiver else ChannelsResource()
    return NotifierResource(postgres=postgres, channels=channels)


def run(postgres, request, instance, receiver):
    return scheduled_notifications_job.execute_in_process(
        run_config=request.run_config, instance=instance,
        resources={"postgres": postgres, "notifier": notifier(postgres, receiver)})


def outcome(result) -> dict:
    """The step's summary: how many due times ended how."""
    [event] = [e for e in result.all_node_events if e.is_successful_output]
    return {k: v.value for k, v in event.step_output_data.metadata.items()}


def add(postgres, cron="*/5 * * * *", tz="UTC", next_fire="now() - interval '1 minute'", title="Weekly report"):
    return sql(postgres, f"INSERT INTO scheduled_notifications (name, cron, timezone, title, body, channels, next_fire_at)"
                         f" VALUES (:title, :cron, :tz, :title, 'body', '{{webhook}}', {next_fire}) RETURNING id",
               cron=cron, tz=tz, title=title)[0][0]


def test_next_time_is_wall_clock_in_the_rows_zone_across_dst_changes():
    # 08:00 Chicago is 14:00 UTC in winter (CST) and 13:00 UTC in summer (CDT).
    assert next_after("0 8 * * *", "America/Chicago", datetime(2026, 3, 7, 14, 0, tzinfo=UTC)) \
        == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)  # spring forward on 8 March
    assert next_after("0 8 * * *", "America/Chicago", datetime(2026, 10, 31, 13, 0, tzinfo=UTC)) \
        == datetime(2026, 11, 1, 14, 0, tzinfo=UTC)  # fall back on 1 November
    # 02:30 does not exist on 8 March: the job fires once, at the first valid time after it.
    assert next_after("30 2 * * *", "America/Chicago", datetime(2026, 3, 8, 6, 0, tzinfo=UTC)) \
        == datetime(2026, 3, 8, 8, 0, tzinfo=UTC)  # 03:00 CDT
    # The repeated hour of 1 November: strictly later every time, never backwards.
    at, seen = datetime(2026, 11, 1, 5, 50, tzinfo=UTC), []
    for _ in range(4):
        at = next_after("*/30 * * * *", "America/Chicago", at)
        seen.append(at)
    assert seen == sorted(set(seen)) and seen[0] == datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
    with pytest.raises(ScheduleError, match="not a valid cron expression; expected five fields"):
        next_after("0 8 * * * *", "UTC", datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(ScheduleError, match="'Mars/Olympus' is not an IANA time zone"):
        next_after("0 8 * * *", "Mars/Olympus", datetime(2026, 1, 1, tzinfo=UTC))


def test_a_row_advances_by_its_cron_in_its_zone_across_the_dst_change(postgres):
    due_at = datetime(2026, 3, 7, 14, 0, tzinfo=UTC)  # Saturday 08:00 CST
    row = add(postgres, cron="0 8 * * *", tz="America/Chicago", next_fire=f"'{due_at.isoformat()}'")
    at = due_at + timedelta(seconds=30)
    with postgres.begin() as conn:
        assert scan(conn, SCHEDULED, at) == ([Due(row, due_at)], {})
    assert deliver_due(postgres, notifier(postgres), SCHEDULED, Due(row, due_at), scheduled_message, "r1", at) == "sent"
    next_fire, last_fired = sql(postgres, "SELECT next_fire_at, last_fired_at FROM scheduled_notifications")[0]
    assert (next_fire, last_fired) == (datetime(2026, 3, 8, 13, 0, tzinfo=UTC), due_at)  # Sunday 08:00 CDT
    assert next_fire.astimezone(CHICAGO).hour == 8
    with postgres.begin() as conn:  # not due one minute before its time
        assert scan(conn, SCHEDULED, next_fire - timedelta(minutes=1)) == ([], {})


def test_null_next_fire_is_computed_and_invalid_rows_are_reported_on_the_row(postgres, instance):
    fresh = add(postgres, cron="0 9 * * 1-5", tz="Europe/Berlin", next_fire="NULL")
    due = add(postgres, title="due")
    bad_cron = add(postgres, cron="61 * * * *", title="bad cron")
    bad_zone = add(postgres, tz="Mars/Olympus", title="bad zone")
    six_fields = add(postgres, cron="0 0 8 * * *", title="six fields", next_fire="NULL")

    result = evaluate(postgres, instance)
    assert [i["id"] for i in result.run_requests[0].run_config["ops"]["fire_scheduled_notifications"]["config"]["items"]] \
        == [due]
    errors = dict(sql(postgres, "SELECT id, last_error FROM scheduled_notifications WHERE last_error IS NOT NULL"))
    assert errors == {
        bad_cron: "cron '61 * * * *' is not a valid cron expression; expected five fields "
                  "(minute hour day-of-month month day-of-week), e.g. '0 8 * * 1-5'",
        bad_zone: "time zone 'Mars/Olympus' is not an IANA time zone (e.g. 'America/Chicago' or 'UTC')",
        six_fields: "cron '0 0 8 * * *' is not a valid cron expression; expected five fields "
                    "(minute hour day-of-month month day-of-week), e.g. '0 8 * * 1-5'",
    }
    next_fire = sql(postgres, "SELECT next_fire_at FROM scheduled_notifications WHERE id = :id", id=fresh)[0][0]
    local = next_fire.astimezone(ZoneInfo("Europe/Berlin"))
    assert (local.hour, local.minute) == (9, 0) and local.weekday() < 5 and next_fire > datetime.now(UTC)

    sql(postgres, "UPDATE scheduled_notifications SET cron = '*/5 * * * *' WHERE id = :id", id=bad_cron)
    sql(postgres, "UPDATE scheduled_notifications SET next_fire_at = now() + interval '1 hour' WHERE id = :id", id=due)
    sql(postgres, "UPDATE scheduled_notifications SET enabled = false WHERE id IN (:a, :b)", a=bad_zone, b=six_fields)
    fixed = evaluate(postgres, instance)  # the repaired row is due again and fires
    assert [i["id"] for i in fixed.run_requests[0].run_config["ops"]["fire_scheduled_notifications"]["config"]["items"]] \
        == [bad_cron]


def test_a_never_firing_cron_or_unknown_zone_fails_its_own_row_and_the_tick_serves_the_others(postgres, instance):
    good = add(postgres, title="good")
    never_new = add(postgres, cron="0 0 31 2 *", next_fire="NULL", title="never, new")
    never_due = add(postgres, cron="0 0 30,31 2 *", title="never, edited after its last time")
    no_zone = add(postgres, tz="Atlantis/Capital", next_fire="NULL", title="unknown zone")
    leap_day = add(postgres, cron="0 0 29 2 *", tz="Europe/Berlin", next_fire="NULL", title="rare but fires")
    result = evaluate(postgres, instance)
    assert [i["id"] for r in result.run_requests
            for i in r.run_config["ops"]["fire_scheduled_notifications"]["config"]["items"]] == [good]
    errors = dict(sql(postgres, "SELECT id, last_error FROM scheduled_notifications WHERE last_error IS NOT NULL"))
    assert errors == {
        never_new: "cron '0 0 31 2 *' never fires (no 31 February): set a cron that has a next time",
        never_due: "cron '0 0 30,31 2 *' never fires (no 30 or 31 February): set a cron that has a next time",
        no_zone: "time zone 'Atlantis/Capital' is not an IANA time zone (e.g. 'America/Chicago' or 'UTC')",
    }
    leap = sql(postgres, "SELECT next_fire_at FROM scheduled_notifications WHERE id = :id", id=leap_day)[0][0]
    local = leap.astimezone(ZoneInfo("Europe/Berlin"))
    assert (local.month, local.day, local.hour) == (2, 29, 0) and leap > datetime.now(UTC)
    with Receiver(SECRET) as receiver:
        assert outcome(run(postgres, result.run_requests[0], instance, receiver)) == {"sent": 1}
    assert len(receiver.requests) == 1


def test_a_row_whose_cron_stops_firing_keeps_its_last_time_and_says_why(postgres):
    row = add(postgres, title="edited")
    due_at = sql(postgres, "SELECT next_fire_at FROM scheduled_notifications WHERE id = :id", id=row)[0][0]
    sql(postgres, "UPDATE scheduled_notifications SET cron = '0 0 31 2 *' WHERE id = :id", id=row)
    with Receiver(SECRET) as receiver:
        assert deliver_due(postgres, notifier(postgres, receiver), SCHEDULED, Due(row, due_at),
                           scheduled_message, None, datetime.now(UTC)) == "invalid"
    assert receiver.requests == []
    assert sql(postgres, "SELECT next_fire_at, last_error FROM scheduled_notifications WHERE id = :id", id=row) \
        == [(due_at, "cron '0 0 31 2 *' never fires (no 31 February): set a cron that has a next time")]


def test_next_after_names_a_cron_that_never_fires():
    with pytest.raises(ScheduleError, match=r"^cron '0 0 31 2 \*' never fires \(no 31 February\)"):
        next_after("0 0 31 2 *", "UTC", datetime(2026, 1, 1, tzinfo=UTC))
    assert next_after("0 0 29 2 *", "UTC", datetime(2026, 1, 1, tzinfo=UTC)) == datetime(2028, 2, 29, tzinfo=UTC)


def test_a_due_row_fires_once_per_due_time(postgres, instance):
    due = add(postgres)
    add(postgres, next_fire="now() + interval '10 minutes'", title="not yet")
    first, second = in_one_window(lambda: evaluate(postgres, instance), times=2)
    assert len(first.run_requests) == 1 and first.run_requests[0].run_key == second.run_requests[0].run_key
    due_at = sql(postgres, "SELECT next_fire_at FROM scheduled_notifications WHERE id = :id", id=due)[0][0]

    with Receiver(SECRET) as receiver:
        assert outcome(run(postgres, first.run_requests[0], instance, receiver)) == {"sent": 1}
        again = run(postgres, first.run_requests[0], instance, receiver)  # a retried run or a second daemon
    assert outcome(again) == {"already_sent": 1}
    assert len(receiver.requests) == 1 and receiver.requests[0].signature_ok
    assert receiver.requests[0].json["dedup_key"] == f"scheduled:{due}:{due_at.isoformat()}"
    assert sql(postgres, "SELECT schedule_id, due_at, status FROM scheduled_fires") == [(due, due_at, "sent")]
    next_fire, last_fired, error = sql(
        postgres, "SELECT next_fire_at, last_fired_at, last_error FROM scheduled_notifications WHERE id = :id", id=due)[0]
    assert last_fired == due_at and error is None and next_fire > datetime.now(UTC)
    assert evaluate(postgres, instance).run_requests == []


def test_a_daemon_down_for_days_fires_each_schedule_once(postgres, instance):
    row = add(postgres, next_fire="now() - interval '3 days'")  # every 5 minutes: ~860 missed times
    result = evaluate(postgres, instance)
    with Receiver(SECRET) as receiver:
        assert run(postgres, result.run_requests[0], instance, receiver).success
    assert len(receiver.requests) == 1
    next_fire = sql(postgres, "SELECT next_fire_at FROM scheduled_notifications WHERE id = :id", id=row)[0][0]
    assert datetime.now(UTC) < next_fire <= datetime.now(UTC) + timedelta(minutes=5)
    assert evaluate(postgres, instance).run_requests == []


def test_a_row_edited_after_the_tick_is_not_sent_for_the_old_time(postgres, instance):
    row = add(postgres)
    request = evaluate(postgres, instance).run_requests[0]
    sql(postgres, "UPDATE scheduled_notifications SET next_fire_at = now() + interval '1 day' WHERE id = :id", id=row)
    with Receiver(SECRET) as receiver:
        assert outcome(run(postgres, request, instance, receiver)) == {"no_longer_due": 1}
    assert receiver.requests == [] and sql(postgres, "SELECT count(*) FROM scheduled_fires")[0][0] == 0


def test_the_kill_switch_stops_the_scheduler_with_a_reason(postgres, instance):
    add(postgres)
    with postgres.begin() as conn:
        set_controls(conn, "test", kill_switch=True)
    result = evaluate(postgres, instance)
    assert result.run_requests == [] and "the kill switch is on" in result.skip_reason.skip_message
