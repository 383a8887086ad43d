"""The notification layer: signed webhooks, retries then dead letters, quiet hours, dedup under concurrency."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, time

from helpers import Receiver, sql

from ops_platform.framework.controls import set_controls
from ops_platform.notifications import Notification, NotifierResource, Severity
from ops_platform.notifications.transports import ChannelsResource

SECRET = "s3cret-for-tests"
QUIET_NIGHT = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)  # 23:00 in Chicago
DAYTIME = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)


def notifier(postgres, receiver, backoff=0.05):
    routes = {"SEV0": ["webhook"], "SEV1": ["webhook"], "WARN": ["webhook"], "INFO": ["digest"]}
    channels = ChannelsResource(webhook_url=receiver.url, webhook_secret=SECRET, webhook_backoff_seconds=backoff)
    return NotifierResource(postgres=postgres, channels=channels, routes=routes)


def message(key="k1", severity=Severity.WARN):
    return Notification(type="test", severity=severity, title="Title", body="Body", dedup_key=key)


def test_webhook_is_signed_and_verified_by_the_receiver(postgres):
    with Receiver(SECRET) as receiver:
        assert notifier(postgres, receiver).send(message(), at=DAYTIME) == "sent"
    assert len(receiver.requests) == 1 and receiver.requests[0].signature_ok
    assert receiver.requests[0].json["dedup_key"] == "k1"
    assert sql(postgres, "SELECT status, attempts, channels FROM notifications") == [("sent", 1, ["webhook"])]


def test_a_wrong_secret_is_rejected_by_the_receiver_and_not_retried(postgres):
    with Receiver("another-secret") as receiver:
        assert notifier(postgres, receiver).send(message(), at=DAYTIME) == "failed"
    assert len(receiver.requests) == 1 and not receiver.requests[0].signature_ok
    assert "HTTP 401 (not retried)" in sql(postgres, "SELECT reason FROM notifications")[0][0]


def test_server_errors_are_retried_with_backoff_then_dead_lettered(postgres):
    """3 inline attempts with backoff, then the retry queue takes over; its 5 attempts end in the
    dead letters (tests/test_retry_queue.py follows a failed notification to redelivery and to the DLQ)."""
    with Receiver(SECRET, status=500) as receiver:
        assert notifier(postgres, receiver, backoff=0.2).send(message(), at=DAYTIME) == "failed"
    times = [r.at for r in receiver.requests]
    assert len(times) == 3
    first_gap, second_gap = times[1] - times[0], times[2] - times[1]
    # 0.2 s then 0.4 s, each ±25%: the ranges [0.15, 0.25] and [0.3, 0.5] cannot overlap
    assert 0.15 <= first_gap and 0.3 <= second_gap and second_gap > first_gap
    [(notification_id, reason)] = sql(postgres, "SELECT id, reason FROM notifications")
    assert reason == "webhook: HTTP 500 after 3 attempts"
    assert sql(postgres, "SELECT job_name, payload, dedup_key, status, attempts, max_attempts FROM retry_jobs") == [
        ("notification.redeliver", {"notification_id": notification_id, "channel": "webhook", "type": "test"},
         f"notification:{notification_id}:webhook", "pending", 0, 5)]
    assert sql(postgres, "SELECT count(*) FROM dead_letters")[0][0] == 0  # not yet: the queue has 5 attempts left
    assert SECRET not in str(sql(postgres, "SELECT payload::text, last_error FROM retry_jobs"))


def test_quiet_hours_hold_a_warn_and_let_a_sev1_through(postgres):
    with postgres.begin() as conn:
        set_controls(conn, "test", quiet_hours_start=time(22), quiet_hours_end=time(7), quiet_hours_tz="America/Chicago")
    with Receiver(SECRET) as receiver:
        n = notifier(postgres, receiver)
        assert n.send(message("warn", Severity.WARN), at=QUIET_NIGHT) == "held"
        assert n.send(message("sev1", Severity.SEV1), at=QUIET_NIGHT) == "sent"
        assert n.send(message("warn-day", Severity.WARN), at=DAYTIME) == "sent"
    assert [r.json["dedup_key"] for r in receiver.requests] == ["sev1", "warn-day"]
    assert sql(postgres, "SELECT reason FROM notifications WHERE dedup_key = 'warn'")[0][0] == "quiet hours"


def test_one_event_notifies_once_even_from_concurrent_senders(postgres):
    with Receiver(SECRET) as receiver:
        n = notifier(postgres, receiver)
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: n.send(message("same"), at=DAYTIME), range(8)))
    assert sorted(statuses) == ["duplicate"] * 7 + ["sent"]
    assert len(receiver.requests) == 1


def test_routing_by_severity_and_switches(postgres):
    with Receiver(SECRET) as receiver:
        n = notifier(postgres, receiver)
        assert n.send(message("info", Severity.INFO), at=DAYTIME) == "digest"
        with postgres.begin() as conn:
            set_controls(conn, "test", comms_enabled=False)
        assert n.send(message("muted", Severity.SEV0), at=DAYTIME) == "suppressed"
    assert receiver.requests == []
    assert sql(postgres, "SELECT reason FROM notifications WHERE dedup_key = 'muted'")[0][0].startswith("communications")


def test_default_routes_use_the_outbox_and_an_unconfigured_channel_says_so(postgres):
    default = NotifierResource(postgres=postgres)
    assert default.send(message("page", Severity.SEV0), at=DAYTIME) == "sent"
    assert sql(postgres, "SELECT channel, payload->>'title' FROM outbox_messages") == [("call", "Title")]
    assert "not configured" in sql(postgres, "SELECT reason FROM notifications WHERE dedup_key = 'page'")[0][0]
    strict = NotifierResource(postgres=postgres, routes={"SEV1": ["webhook"]},
                              channels=ChannelsResource(unconfigured="error"))
    assert strict.send(message("sms", Severity.SEV1), at=DAYTIME) == "failed"
    assert "not configured: set OPS_WEBHOOK_URL" in sql(postgres, "SELECT reason FROM notifications WHERE dedup_key='sms'")[0][0]


def test_a_notification_is_one_type_from_sensor_to_run_to_row(postgres, instance):
    """What a sensor asks for is what the run delivers and what the row gives back: no second shape."""

    from ops_platform.jobs.notifications import notify_job, notify_requests

    sent = Notification(type="build_stalled", severity=Severity.SEV1, title="Build 7 stalled", body="since 10:00",
                        dedup_key="build_stalled:7", meta={"build_id": 7, "nested": {"ids": [1, 2]}},
                        channels=["slack"], recipients=["ops@example.com"])
    [request] = notify_requests("test", [sent])
    assert Notification.model_validate(request.run_config["ops"]["send_notifications"]["config"]["messages"][0]) == sent
    notifier = NotifierResource(postgres=postgres, channels=ChannelsResource())
    result = notify_job.execute_in_process(run_config=request.run_config, instance=instance,
                                           resources={"notifier": notifier})
    assert result.success
    with postgres.begin() as conn:
        from sqlalchemy import text
        row = conn.execute(text("SELECT * FROM notifications WHERE dedup_key = 'build_stalled:7'")).mappings().one()
    assert Notification.from_row(row) == sent
