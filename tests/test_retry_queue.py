"""The retry queue (seed 003): backoff 2·2^(n−1) s capped at 60, 10 per pass, 5 attempts, then dead
letter and a notification; claims safe under concurrency; abandoned claims recovered; the sensor."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from helpers import LocalServer, Receiver, in_one_window, sql

from ops_platform.framework.controls import set_controls
from ops_platform.jobs.retry_queue import retry_queue_job
from ops_platform.notifications import Notification, NotifierResource, Severity
from ops_platform.notifications.transports import ChannelsResource
from ops_platform.retry_queue.queue import backoff_seconds, claim, enqueue, finish, pending_work, process_ready
from ops_platform.sensors.retry_queue import retry_queue_sensor, run_request_for

SECRET = "s3cret-for-tests"
TOKEN = "Bearer tok-123-never-shown"


class Endpoint(LocalServer):
    """A real HTTP server on 127.0.0.1 that answers each path with a status and counts the calls."""

    def __init__(self, status: int = 200, headers: dict[str, str] | None = None):
        self.status, self.headers = status, headers or {}
        self.calls: Counter = Counter()
        self.bodies: list[tuple[str, str | None, bytes]] = []
        self._lock = threading.Lock()

    def url(self, path: str = "/hook", query: str = "") -> str:
        return f"{self.base_url}{path}{query}"

    def respond(self, handler, body):
        with self._lock:
            self.calls[handler.path.split("?")[0]] += 1
            self.bodies.append((handler.path, handler.headers.get("Authorization"), body))
        handler.send_response(self.status)
        for name, value in self.headers.items():
            handler.send_header(name, value)
        handler.end_headers()


@pytest.fixture
def t0() -> datetime:
    """A pass time just after every job enqueued 'now' in the test is ready."""
    return datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)


def webhook_notifier(postgres, receiver=None, warn_to="webhook") -> NotifierResource:
    routes = {"SEV0": ["webhook"], "SEV1": ["webhook"], "WARN": [warn_to], "INFO": ["digest"]}
    channels = ChannelsResource(webhook_url=receiver.url if receiver else None, webhook_secret=SECRET,
                                webhook_backoff_seconds=0.01)
    return NotifierResource(postgres=postgres, channels=channels, routes=routes)


def post(postgres, endpoint, path="/hook", **kwargs) -> int:
    with postgres.begin() as conn:
        return enqueue(conn, "http.request", {"method": "POST", "url": endpoint.url(path), "json": {"path": path},
                                              "headers": {"Authorization": TOKEN}}, **kwargs)


def job_row(postgres, job_id):
    return sql(postgres, "SELECT status, attempts, run_at, last_error FROM retry_jobs WHERE id = :id", id=job_id)[0]


def test_backoff_is_the_seeds_exactly():
    assert [backoff_seconds(n) for n in range(1, 9)] == [2, 4, 8, 16, 32, 60, 60, 60]
    assert backoff_seconds(1000) == 60
    with pytest.raises(ValueError, match="attempts starts at 1"):
        backoff_seconds(0)


def test_success_completes_the_job_after_one_call(postgres, t0):
    with Endpoint(200) as endpoint:
        job = post(postgres, endpoint)
        counts = process_ready(postgres, NotifierResource(postgres=postgres), "run-1", now=t0)
    assert counts == {"claimed": 1, "completed": 1, "retried": 0, "dead": 0, "notified": 0}
    assert endpoint.calls == {"/hook": 1}
    path, auth, body = endpoint.bodies[0]
    assert auth == TOKEN and json.loads(body) == {"path": "/hook"}
    assert sql(postgres, "SELECT status, attempts, completed_at, locked_by FROM retry_jobs WHERE id = :id",
               id=job) == [("completed", 1, t0, None)]


def test_a_pass_takes_at_most_ten_ready_jobs_oldest_first(postgres, t0):
    with Endpoint(200) as endpoint:
        ids = [post(postgres, endpoint, f"/job/{i}", run_at=t0 - timedelta(seconds=20 - i)) for i in range(12)]
        later = post(postgres, endpoint, "/later", run_at=t0 + timedelta(hours=1))
        notifier = NotifierResource(postgres=postgres)
        assert process_ready(postgres, notifier, "run-1", now=t0)["completed"] == 10
        assert set(endpoint.calls) == {f"/job/{i}" for i in range(10)}
        assert process_ready(postgres, notifier, "run-2", now=t0)["completed"] == 2
        assert process_ready(postgres, notifier, "run-3", now=t0)["claimed"] == 0
    assert sum(endpoint.calls.values()) == 12 and "/later" not in endpoint.calls
    statuses = dict(sql(postgres, "SELECT id, status FROM retry_jobs"))
    assert [statuses[i] for i in ids] == ["completed"] * 12 and statuses[later] == "pending"


def test_five_failed_attempts_back_off_then_dead_letter_and_notify_once(postgres, t0):
    notifier = NotifierResource(postgres=postgres)  # default routes: WARN goes to the digest
    with Endpoint(503) as endpoint:
        job = post(postgres, endpoint, dedup_key="sync:42")
        at, waits = t0, []
        for attempt in range(1, 5):
            assert process_ready(postgres, notifier, f"run-{attempt}", now=at)["retried"] == 1
            status, attempts, run_at, _ = job_row(postgres, job)
            assert (status, attempts) == ("pending", attempt)
            waits.append((run_at - at).total_seconds())
            # one second early it is not ready: nothing is claimed, nothing is called
            assert process_ready(postgres, notifier, "early", now=run_at - timedelta(seconds=1))["claimed"] == 0
            at = run_at
        assert waits == [2, 4, 8, 16]
        assert process_ready(postgres, notifier, "run-5", now=at) == {
            "claimed": 1, "completed": 0, "retried": 0, "dead": 1, "notified": 1}
        assert process_ready(postgres, notifier, "run-6", now=at + timedelta(hours=1))["claimed"] == 0
    assert endpoint.calls == {"/hook": 5}
    error = f"TransientError: POST {endpoint.url()}: HTTP 503"
    assert job_row(postgres, job)[:2] == ("dead", 5) and job_row(postgres, job)[3] == error
    letters = sql(postgres, "SELECT source, dedup_key, attempts, error, payload FROM dead_letters")
    assert [row[:4] for row in letters] == [("retry_queue:http.request", "sync:42", 5, error)]
    assert letters[0][4]["retry_job_id"] == job and letters[0][4]["payload"]["headers"] == {"Authorization": "***"}
    notes = sql(postgres, "SELECT dedup_key, severity, status, title, body FROM notifications")
    assert [n[:3] for n in notes] == [(f"retry_dead:{job}", "WARN", "digest")]
    assert f"Retry job {job} (http.request) failed permanently" == notes[0][3] and "HTTP 503" in notes[0][4]
    assert TOKEN not in str(sql(postgres, "SELECT payload::text, error FROM dead_letters")) + str(notes)


def test_a_wait_the_other_side_asks_for_delays_the_retry_job(postgres, t0):
    """Retry-After 300 s: the job waits that long, not the queue's 2 s, for a plain call and for a channel."""
    with Endpoint(429, headers={"Retry-After": "300"}) as endpoint:
        job = post(postgres, endpoint)
        assert process_ready(postgres, NotifierResource(postgres=postgres), "run-1", now=t0)["retried"] == 1
    _, attempts, run_at, _ = job_row(postgres, job)
    assert attempts == 1 and 295 <= (run_at - datetime.now(UTC)).total_seconds() <= 301

    with Receiver(SECRET, replies=[(503, {})] * 3 + [(429, {"Retry-After": "300"})]) as receiver:
        notifier = webhook_notifier(postgres, receiver)
        message = Notification(type="test", severity=Severity.WARN, title="Disk", body="full", dedup_key="disk:9")
        assert notifier.send(message) == "failed"
        assert process_ready(postgres, notifier, "run-2", now=t0)["retried"] == 1
    assert len(receiver.requests) == 4  # 3 inline attempts, then 1: the 300 s wait is not slept
    [(run_at, error)] = sql(postgres, "SELECT run_at, last_error FROM retry_jobs WHERE job_name = 'notification.redeliver'")
    assert 295 <= (run_at - datetime.now(UTC)).total_seconds() <= 301 and "asked to wait 300 s" in error


def test_unknown_job_names_and_final_errors_are_dead_at_once(postgres, t0):
    with postgres.begin() as conn, pytest.raises(ValueError, match="no retry handler for 'no.such.job'"):
        enqueue(conn, "no.such.job", {})
    assert sql(postgres, "SELECT count(*) FROM retry_jobs")[0][0] == 0
    # a row written by an older release, whose handler is gone
    [(unknown,)] = sql(postgres, "INSERT INTO retry_jobs (job_name, run_at) VALUES ('no.such.job', :at) RETURNING id",
                       at=t0)
    with Endpoint(404) as endpoint:
        with postgres.begin() as conn:
            rejected = enqueue(conn, "http.request", {"method": "POST", "url": endpoint.url("/gone", "?key=abc")})
            no_url = enqueue(conn, "http.request", {"method": "POST"})
        counts = process_ready(postgres, NotifierResource(postgres=postgres), "run-1", now=t0)
    assert counts["dead"] == 3 and counts["claimed"] == 3 and counts["notified"] == 3
    errors = dict(sql(postgres, "SELECT id, last_error FROM retry_jobs WHERE status = 'dead' AND attempts = 1"))
    assert errors[unknown] == ("no handler for job 'no.such.job' (known: http.request, job.rerun, notification.redeliver, "
                               "webhook.redeliver)")
    assert errors[rejected].endswith("/gone: HTTP 404 (not retried)") and "key=abc" not in errors[rejected]
    assert errors[no_url] == "payload field 'url' must be a str, got None"
    assert sql(postgres, "SELECT count(*) FROM dead_letters")[0][0] == 3


def test_enqueue_once_per_dedup_key_and_bad_payloads_refused(postgres):
    with postgres.begin() as conn:
        first = enqueue(conn, "http.request", {"method": "GET", "url": "http://x"}, dedup_key="once")
        again = enqueue(conn, "http.request", {"method": "GET", "url": "http://y"}, dedup_key="once")
        with pytest.raises(ValueError, match="payload must be JSON"):
            enqueue(conn, "http.request", {"when": datetime.now(UTC)})
        with pytest.raises(ValueError, match="payload is a JSON object"):
            enqueue(conn, "http.request", ["GET"])
    assert first == again
    assert sql(postgres, "SELECT dedup_key, payload->>'url' FROM retry_jobs") == [("once", "http://x")]


def test_two_processors_never_claim_the_same_job(postgres, t0):
    with Endpoint(200) as endpoint:
        ids = [post(postgres, endpoint, f"/job/{i}") for i in range(40)]
        # while one claim's transaction is open, a second claim skips its rows instead of waiting
        with postgres.engine.connect() as first, postgres.engine.connect() as second:  # rolled back at the end
            second.exec_driver_sql("SET lock_timeout = '2s'")  # waiting on a claimed row would be an error, not a hang
            mine = {j.id for j in claim(first, "run-a", t0)}
            theirs = {j.id for j in claim(second, "run-b", t0)}
        assert len(mine) == len(theirs) == 10 and not mine & theirs

        notifier, start = NotifierResource(postgres=postgres), threading.Barrier(4)
        done: list[dict] = []

        def processor(name: str) -> None:
            start.wait()
            while (counts := process_ready(postgres, notifier, name, now=t0))["claimed"]:
                done.append(counts)

        threads = [threading.Thread(target=processor, args=(f"run-{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert endpoint.calls == {f"/job/{i}": 1 for i in range(40)}
    assert sum(c["completed"] for c in done) == 40 and all(c["claimed"] <= 10 for c in done)
    completed = sql(postgres, "SELECT id FROM retry_jobs WHERE status = 'completed' AND attempts = 1 ORDER BY id")
    assert [row.id for row in completed] == ids


def test_a_job_left_running_by_a_crashed_pass_is_recovered(postgres, t0):
    with Endpoint(200) as endpoint:
        job = post(postgres, endpoint)
        [(spent,)] = sql(postgres, "INSERT INTO retry_jobs (job_name, run_at, attempts) VALUES ('http.request', :at, 4)"
                                   " RETURNING id", at=t0)
        with postgres.begin() as conn:
            claimed = claim(conn, "crashed-run", t0)  # the pass dies here: no result is ever recorded
        notifier = NotifierResource(postgres=postgres)
        assert process_ready(postgres, notifier, "run-2", now=t0 + timedelta(minutes=9, seconds=59))["claimed"] == 0
        assert job_row(postgres, job)[:2] == ("running", 1)

        ten = t0 + timedelta(minutes=10)
        counts = process_ready(postgres, notifier, "run-3", now=ten)
        assert counts["recovered_retried"] == 1 and counts["recovered_dead"] == 1 and counts["claimed"] == 0
        status, attempts, run_at, error = job_row(postgres, job)
        assert (status, attempts, run_at) == ("pending", 1, ten + timedelta(seconds=2))
        assert error.startswith("abandoned: run crashed-run claimed it at") and "within 10 minutes" in error
        assert job_row(postgres, spent)[:2] == ("dead", 5)  # its 5th start crashed too: dead, not looping

        assert process_ready(postgres, notifier, "run-4", now=run_at)["completed"] == 1
        with postgres.begin() as conn:  # the crashed pass's late result no longer counts
            assert finish(conn, next(j for j in claimed if j.id == job), "crashed-run", None, ten) == "lost"
    assert endpoint.calls == {"/hook": 1}
    assert job_row(postgres, job)[:2] == ("completed", 2)


def test_a_failed_notification_is_redelivered_when_the_channel_recovers(postgres, t0):
    with Receiver(SECRET, status=500) as receiver:
        notifier = webhook_notifier(postgres, receiver)
        message = Notification(type="test", severity=Severity.WARN, title="Disk", body="full", dedup_key="disk:1")
        assert notifier.send(message) == "failed"
        [(nid, status)] = sql(postgres, "SELECT id, status FROM notifications")
        assert status == "failed" and len(receiver.requests) == 3  # the channel's own inline attempts
        assert sql(postgres, "SELECT job_name, payload, dedup_key FROM retry_jobs") == [
            ("notification.redeliver", {"notification_id": nid, "channel": "webhook", "type": "test"},
             f"notification:{nid}:webhook")]
        assert sql(postgres, "SELECT count(*) FROM dead_letters")[0][0] == 0

        assert process_ready(postgres, notifier, "run-1", now=t0)["retried"] == 1
        assert len(receiver.requests) == 6
        receiver.status = 200
        assert process_ready(postgres, notifier, "run-2", now=t0 + timedelta(seconds=1))["claimed"] == 0
        assert process_ready(postgres, notifier, "run-3", now=t0 + timedelta(seconds=2))["completed"] == 1
    last = receiver.requests[-1]
    assert len(receiver.requests) == 7 and last.signature_ok and last.json["dedup_key"] == "disk:1"
    assert last.json["id"] == nid and last.json["title"] == "Disk"
    [(status, sent_at, reason)] = sql(postgres, "SELECT status, sent_at, reason FROM notifications")
    assert status == "sent" and sent_at is not None and reason.endswith("webhook: redelivered by the retry queue")
    assert sql(postgres, "SELECT status, attempts FROM retry_jobs") == [("completed", 2)]
    assert sql(postgres, "SELECT count(*) FROM dead_letters")[0][0] == 0


def test_a_notification_that_never_gets_through_is_dead_lettered_after_five_attempts(postgres, t0):
    with Receiver(SECRET, status=500) as receiver:
        notifier = webhook_notifier(postgres, receiver)
        message = Notification(type="test", severity=Severity.WARN, title="Disk", body="full", dedup_key="disk:1")
        assert notifier.send(message) == "failed"
        [(nid,)] = sql(postgres, "SELECT id FROM notifications")
        at = t0
        for attempt in range(1, 6):
            process_ready(postgres, notifier, f"run-{attempt}", now=at)
            at += timedelta(seconds=60)
        assert len(receiver.requests) == 3 + 5 * 3 + 3  # inline, 5 queue attempts, the dead-job notice
    [(job, status, attempts)] = sql(postgres, "SELECT id, status, attempts FROM retry_jobs")
    assert (status, attempts) == ("dead", 5)
    letters = dict(sql(postgres, "SELECT dedup_key, source FROM dead_letters"))
    assert letters[f"notification:{nid}:webhook"] == "retry_queue:notification.redeliver"
    # the dead-job notice itself fails on the same broken webhook: dead-lettered at once, not queued again
    [(notice_id, notice_status)] = sql(postgres, "SELECT id, status FROM notifications WHERE dedup_key = :k",
                                       k=f"retry_dead:{job}")
    assert notice_status == "failed" and letters[f"notification:{notice_id}:webhook"] == "notify:webhook"
    assert sql(postgres, "SELECT count(*) FROM retry_jobs")[0][0] == 1
    assert sql(postgres, "SELECT status FROM notifications WHERE id = :id", id=nid) == [("failed",)]


def test_redelivery_waits_while_communications_are_off_without_spending_an_attempt(postgres, t0):
    with Receiver(SECRET, status=500) as receiver:
        notifier = webhook_notifier(postgres, receiver)
        notifier.send(Notification(type="test", severity=Severity.WARN, title="T", body="B", dedup_key="k"))
        with postgres.begin() as conn:
            set_controls(conn, "test", comms_enabled=False)
        receiver.status = 200
        assert process_ready(postgres, notifier, "run-1", now=t0)["deferred"] == 1
        assert len(receiver.requests) == 3  # nothing went out
        [(status, attempts, run_at, error)] = sql(postgres, "SELECT status, attempts, run_at, last_error FROM retry_jobs")
        assert (status, attempts, run_at) == ("pending", 0, t0 + timedelta(seconds=300))
        assert error.endswith("waits: communications are disabled (comms_enabled = false)")
        assert sql(postgres, "SELECT count(*) FROM dead_letters") == [(0,)]
        with postgres.begin() as conn:
            set_controls(conn, "test", comms_enabled=True)
        assert process_ready(postgres, notifier, "run-2", now=t0 + timedelta(seconds=300))["completed"] == 1
    assert len(receiver.requests) == 4
    assert sql(postgres, "SELECT status FROM notifications WHERE dedup_key = 'k'") == [("sent",)]


def evaluate(postgres, instance):
    with dg.build_sensor_context(instance=instance, resources={"postgres": postgres}) as ctx:
        return retry_queue_sensor(ctx)


def test_sensor_launches_one_run_per_set_of_ready_jobs_and_obeys_jobs_enabled(postgres, instance):
    with Endpoint(200) as endpoint:
        past = datetime.now(UTC) - timedelta(seconds=5)
        post(postgres, endpoint, "/a", run_at=past)
        post(postgres, endpoint, "/b", run_at=past)
        post(postgres, endpoint, "/later", run_at=past + timedelta(hours=1))

        first, second = in_one_window(lambda: evaluate(postgres, instance), times=2)
        assert len(first.run_requests) == 1 and first.run_requests[0].run_key == second.run_requests[0].run_key
        assert first.run_requests[0].tags["ops/retry_jobs"] == "2"

        result = retry_queue_job.execute_in_process(
            instance=instance, resources={"postgres": postgres, "notifier": NotifierResource(postgres=postgres)})
        assert result.success and endpoint.calls == {"/a": 1, "/b": 1}
        [output] = [e for e in result.events_for_node("process_retry_queue") if e.is_successful_output]
        reported = {k: v.value for k, v in output.step_output_data.metadata.items()}
        assert reported == {"claimed": 2, "completed": 2, "retried": 0, "dead": 0, "notified": 0}

    skipped = evaluate(postgres, instance)
    assert skipped.run_requests == [] and skipped.skip_reason.skip_message == "no retry jobs are ready"
    sql(postgres, "UPDATE retry_jobs SET run_at = now() - interval '1 second' WHERE status = 'pending'")
    with postgres.begin() as conn:
        set_controls(conn, "test", jobs_enabled=False)
    disabled = evaluate(postgres, instance)
    assert disabled.run_requests == []
    assert disabled.skip_reason.skip_message == "retry_queue_sensor skipped: jobs are disabled (jobs_enabled = false)"


def test_run_key_is_stable_for_the_same_work_and_changes_with_attempts_or_window(postgres, t0):
    window_start = datetime.fromtimestamp(int(t0.timestamp()) // 600 * 600, UTC)
    with Endpoint(503) as endpoint:
        post(postgres, endpoint, "/a", run_at=window_start - timedelta(minutes=1))

        def key(at):
            with postgres.begin() as conn:
                work = pending_work(conn, at)
            assert len(work) == 1
            return run_request_for(work, at).run_key

        assert key(window_start + timedelta(minutes=2)) == key(window_start + timedelta(minutes=9, seconds=59))
        assert key(window_start + timedelta(minutes=10)) != key(window_start + timedelta(minutes=2))
        after_backoff = window_start + timedelta(seconds=2)
        before = key(after_backoff)
        process_ready(postgres, NotifierResource(postgres=postgres), "run-1", now=window_start)  # attempt 1 fails
        assert key(after_backoff) != before  # same window, one more attempt: a new pass, a new run


def test_a_failed_daily_digest_is_retried_once_after_5_minutes_then_dead_lettered_with_an_alert(postgres):
    with Receiver(SECRET, status=500) as receiver:
        notifier = webhook_notifier(postgres, receiver, warn_to="digest")
        sent_at = datetime.now(UTC)
        digest = Notification(type="daily_digest", severity=Severity.INFO, title="Daily Digest", body="• quiet",
                              dedup_key="daily_digest:2026-05-04", channels=("webhook",))
        assert notifier.send(digest) == "failed"
        [(job, run_at, max_attempts)] = sql(postgres, "SELECT id, run_at, max_attempts FROM retry_jobs")
        assert max_attempts == 1 and timedelta(minutes=5) <= run_at - sent_at < timedelta(minutes=5, seconds=5)
        assert process_ready(postgres, notifier, "early", now=sent_at + timedelta(minutes=4)).get("claimed", 0) == 0
        assert len(receiver.requests) == 3  # the inline attempts only: not yet due
        process_ready(postgres, notifier, "due", now=sent_at + timedelta(minutes=5, seconds=10))
    assert job_row(postgres, job).status == "dead"
    assert sql(postgres, "SELECT source FROM dead_letters WHERE dedup_key LIKE 'notification:%'")[0][0] \
        == "retry_queue:notification.redeliver"
    # SEV1, sent at once (here through the webhook): a WARN would wait for the digest that just failed
    assert sql(postgres, "SELECT severity, status FROM notifications WHERE dedup_key = :k", k=f"retry_dead:{job}") \
        == [("SEV1", "failed")]
    assert len(receiver.requests) == 3 + 3 + 3  # inline, the one retry, the alert


def test_other_dead_redeliveries_stay_warn(postgres):
    with Receiver(SECRET, status=500) as receiver:
        notifier = webhook_notifier(postgres, receiver)
        notice = Notification(type="build_report", severity=Severity.WARN, title="Report", body="x",
                              dedup_key="build_report:1", channels=("webhook",))
        assert notifier.send(notice) == "failed"
        sql(postgres, "UPDATE retry_jobs SET max_attempts = 1")
        process_ready(postgres, notifier, "due", now=datetime.now(UTC) + timedelta(minutes=1))
    [(job,)] = sql(postgres, "SELECT id FROM retry_jobs WHERE status = 'dead'")
    assert sql(postgres, "SELECT severity FROM notifications WHERE dedup_key = :k",
               k=f"retry_dead:{job}") == [("WARN",)]
