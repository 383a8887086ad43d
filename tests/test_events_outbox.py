"""Events outbox (seed 001): signed webhooks (verified with the `standardwebhooks` package) with retries
through the one retry rule, wait hints and dead letters, emails in batches of 10,
and each event consumed exactly once: across sensor restarts, re-executed runs, concurrent runs and
transactions that commit out of id order."""

import base64
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import dagster as dg
import httpx
import pytest
from helpers import LocalServer, Receiver, in_one_window, sql
from sqlalchemy import text
from standardwebhooks import Webhook, WebhookVerificationError

from ops_platform.events.outbox import Result, consume
from ops_platform.framework.controls import set_controls
from ops_platform.framework.run_keys import run_key
from ops_platform.jobs.events import EventsConfig, dispatch_table, events_job
from ops_platform.notifications import NotifierResource
from ops_platform.notifications.transports import ChannelsResource
from ops_platform.retry_queue.queue import process_ready
from ops_platform.sensors.events import events_outbox_sensor, parse_cursor

SECRET = "webhook-row-secret-0123456789"
FAST = {"webhook_backoff_seconds": 0.01}


@dataclass
class EmailApi(LocalServer):
    """A Resend-shaped email API on 127.0.0.1 (POST /emails, POST /emails/batch). Like Resend it answers a
    repeated Idempotency-Key with its first answer and delivers nothing again. `after_delivery` (1-based
    call number → function) runs once that call is delivered, before it is answered; `refused_calls`
    (call number → status) are refused with that status and deliver nothing."""

    after_delivery: dict[int, Callable[[], None]] = field(default_factory=dict)
    refused_calls: dict[int, int] = field(default_factory=dict)
    calls: list[tuple[str, str | None, int]] = field(default_factory=list)  # (path, idempotency key, emails)
    delivered: list[dict] = field(default_factory=list)
    _answers: dict[str, bytes] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return self.base_url

    def respond(self, handler, body):
        emails = json.loads(body)
        emails = emails if isinstance(emails, list) else [emails]
        key = handler.headers.get("Idempotency-Key")
        with self._lock:
            self.calls.append((handler.path, key, len(emails)))
            refused = self.refused_calls.get(len(self.calls))
            if refused:
                handler.send_response(refused)
                handler.end_headers()
                handler.wfile.write(b'{"message": "refused by the test"}')
                return
            answer = self._answers.get(key) if key else None
            if answer is None:
                ids = [{"id": f"em_{len(self.delivered) + i}"} for i in range(len(emails))]
                self.delivered.extend(emails)
                answer = json.dumps({"data": ids} if handler.path.endswith("/batch") else ids[0]).encode()
                if key:
                    self._answers[key] = answer
            self.after_delivery.get(len(self.calls), lambda: None)()
        handler.send_response(200)
        handler.end_headers()
        handler.wfile.write(answer)


def add_webhook(postgres, url, secret=SECRET, active=True, events=()):
    return sql(postgres, "INSERT INTO webhooks (url, secret, active, events) VALUES (:u, :s, :a, :e) RETURNING id",
               u=url, s=secret, a=active, e=list(events))[0][0]


def add_event(postgres, name, payload):
    return sql(postgres, "INSERT INTO events_outbox (name, payload) VALUES (:n, CAST(:p AS jsonb)) RETURNING id",
               n=name, p=json.dumps(payload))[0][0]


def webhook_event(postgres, webhook_id, data=None):
    return add_event(postgres, "webhook/send", {"webhook_id": webhook_id, "event": "user.created", "data": data or {}})


def evaluate(postgres, instance, cursor=None):
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"postgres": postgres}) as ctx:
        return events_outbox_sensor(ctx)


def notifier(postgres, api=None):
    channels = ChannelsResource(email_api_url=api.url, email_api_key="test-api-key", delivery_backoff_seconds=0.01) \
        if api else ChannelsResource()
    return NotifierResource(postgres=postgres, channels=channels)


def run(postgres, instance, request, api=None, **kwargs):
    config = request.run_config["ops"]["handle_events"]["config"] | FAST
    return events_job.execute_in_process(
        run_config={"ops": {"handle_events": {"config": config}}}, instance=instance,
        tags={"dagster/run_key": request.run_key},
        resources={"postgres": postgres, "notifier": notifier(postgres, api)}, **kwargs)


def output_metadata(result):
    output = next(e for e in result.all_node_events if e.is_successful_output)
    return {key: value.value for key, value in output.step_output_data.metadata.items()}


def event_ids(request):
    return request.run_config["ops"]["handle_events"]["config"]["event_ids"]


def test_webhook_is_signed_with_the_rows_secret_and_logged(postgres, instance):
    with Receiver(SECRET) as receiver:
        hook = add_webhook(postgres, receiver.url)
        event = webhook_event(postgres, hook, {"user": 42})
        tick, key = in_one_window(lambda: evaluate(postgres, instance), lambda: run_key("events", [str(event)]))
        assert [r.run_key for r in tick.run_requests] == [key]
        result = run(postgres, instance, tick.run_requests[0])
    assert result.success
    assert len(receiver.requests) == 1 and receiver.requests[0].signature_ok
    assert receiver.requests[0].json == {"id": event, "event": "user.created", "data": {"user": 42}}
    assert sql(postgres, "SELECT event_id, webhook_id, attempt, status_code, success FROM webhook_deliveries") == [
        (event, hook, 1, 200, True)]
    assert sql(postgres, "SELECT event_id, outcome, error FROM events_handled") == [(event, "delivered", None)]
    assert output_metadata(result) == {"events": 1, "delivered": 1, "failed": 0, "invalid": 0, "ignored": 0,
                                     "already_handled": 0, "not_found": 0, "webhook_attempts": 1}
    logged = " ".join(str(e) for e in instance.all_logs(result.run_id))
    assert SECRET not in logged and receiver.url not in logged


def test_server_errors_are_retried_with_backoff_then_dead_lettered(postgres, instance):
    with Receiver(SECRET, status=500) as receiver:
        hook = add_webhook(postgres, receiver.url)
        event = webhook_event(postgres, hook)
        request = evaluate(postgres, instance).run_requests[0]
        config = event_ids(request)
        result = events_job.execute_in_process(
            run_config={"ops": {"handle_events": {"config": {"event_ids": config, "webhook_backoff_seconds": 0.2}}}},
            instance=instance, resources={"postgres": postgres, "notifier": notifier(postgres)})
        assert result.success  # a failed delivery is recorded and dead-lettered, not a failed run
        times = [r.at for r in receiver.requests]
        assert len(times) == 3 and all(r.signature_ok for r in receiver.requests)
        # 0.2 s then 0.4 s, each ±25%: the second wait is longer than the first can be
        assert times[1] - times[0] >= 0.15 and times[2] - times[1] >= 0.3
        attempts = sql(postgres, "SELECT attempt, status_code, error, success FROM webhook_deliveries ORDER BY attempt")
        assert attempts == [
            (1, 500, "HTTP 500", False), (2, 500, "HTTP 500", False), (3, 500, "HTTP 500", False)]
        reason = f"webhook {hook}: HTTP 500 after 3 attempt(s)"
        assert sql(postgres, "SELECT source, dedup_key, attempts, error FROM dead_letters") == [
            ("webhook", f"webhook:{event}:{hook}", 3, reason)]
        assert sql(postgres, "SELECT outcome, error FROM events_handled") == [("failed", reason)]
        assert SECRET not in str(sql(postgres, "SELECT payload::text, error FROM dead_letters"))

        receiver.status = 200  # the receiver is back: the same run again sends nothing, the event is handled
        again = run(postgres, instance, request)
        assert output_metadata(again)["already_handled"] == 1
    assert len(receiver.requests) == 3


def test_client_errors_are_not_retried_but_429_is(postgres, instance):
    with Receiver(SECRET, status=400) as bad_request, Receiver(SECRET, status=429) as busy, \
            Receiver("the-receivers-other-secret") as strict:
        rejected = webhook_event(postgres, add_webhook(postgres, bad_request.url))
        throttled = webhook_event(postgres, add_webhook(postgres, busy.url))
        wrong_secret = webhook_event(postgres, add_webhook(postgres, strict.url))  # the receiver answers 401
        result = run(postgres, instance, evaluate(postgres, instance).run_requests[0])
    assert result.success
    assert (len(bad_request.requests), len(busy.requests), len(strict.requests)) == (1, 3, 1)
    assert not strict.requests[0].signature_ok
    attempts = dict(sql(postgres, "SELECT event_id, count(*) FROM webhook_deliveries GROUP BY event_id"))
    assert attempts == {rejected: 1, throttled: 3, wrong_secret: 1}
    errors = dict(sql(postgres, "SELECT event_id, error FROM events_handled WHERE outcome = 'failed'"))
    assert errors[rejected].endswith("HTTP 400 after 1 attempt(s) (not retried)")
    assert errors[throttled].endswith("HTTP 429 after 3 attempt(s)")
    assert errors[wrong_secret].endswith("HTTP 401 after 1 attempt(s) (not retried)")
    assert output_metadata(result)["webhook_attempts"] == 5


def test_emails_go_in_batches_of_ten_and_a_rerun_sends_none_twice(postgres, instance):
    emails = [{"to": f"user{i}@example.org", "subject": f"Hello {i}", "html": f"<p>{i}</p>"} for i in range(25)]
    with EmailApi() as api:
        batch = add_event(postgres, "email/send-batch", {"emails": emails})
        single = add_event(postgres, "email/send", {"to": ["a@example.org", "b@example.org"], "subject": "Hi",
                                                    "html": "<b>hi</b>"})
        request = evaluate(postgres, instance).run_requests[0]
        assert event_ids(request) == [batch, single]
        result = run(postgres, instance, request, api)
        assert result.success
        assert [(path, n) for path, _, n in api.calls] == [
            ("/emails/batch", 10), ("/emails/batch", 10), ("/emails/batch", 5), ("/emails", 1)]
        assert all(key for _, key, _ in api.calls)  # every call carries an idempotency key
        assert api.calls[3][1] == f"event:{single}:0"
        assert [e["subject"] for e in api.delivered[:25]] == [f"Hello {i}" for i in range(25)]
        assert api.delivered[25]["to"] == ["a@example.org", "b@example.org"]
        assert sql(postgres, "SELECT status, count(*), count(provider_id) FROM email_deliveries GROUP BY status") == [
            ("sent", 26, 26)]
        assert output_metadata(result).items() >= {"delivered": 2, "emails_sent": 26, "email_batches": 4}.items()

        run(postgres, instance, request, api)  # a re-executed run
        assert len(api.calls) == 4 and len(api.delivered) == 26


def test_a_batch_interrupted_after_sending_is_resumed_without_sending_twice(postgres, instance):
    emails = [{"to": f"user{i}@example.org", "subject": f"Hello {i}", "text": "hi"} for i in range(25)]

    def drop_database_connections():  # the run loses Postgres after the provider took batch 2
        sql(postgres, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                      " WHERE datname = current_database() AND pid <> pg_backend_pid()")

    with EmailApi(after_delivery={2: drop_database_connections}) as api:
        add_event(postgres, "email/send-batch", {"emails": emails})
        result = run(postgres, instance, evaluate(postgres, instance).run_requests[0], api)
        assert result.success  # the step failed once and its retry finished the work
        assert [e.event_type_value for e in result.all_events].count("STEP_UP_FOR_RETRY") == 1
        keys = [key for _, key, _ in api.calls]
        assert [n for _, _, n in api.calls] == [10, 10, 10, 5]
        assert keys[1] == keys[2] and len(set(keys)) == 3  # batch 2 again, with the same key
    assert sorted(e["subject"] for e in api.delivered) == sorted(f"Hello {i}" for i in range(25))
    assert sql(postgres, "SELECT status, count(*) FROM email_deliveries GROUP BY status") == [("sent", 25)]


def test_a_refused_batch_is_dead_lettered_and_a_missing_email_setup_fails_the_run(postgres, instance):
    emails = [{"to": f"user{i}@example.org", "subject": f"Hello {i}", "text": "hi"} for i in range(25)]
    event = add_event(postgres, "email/send-batch", {"emails": emails})
    request = evaluate(postgres, instance).run_requests[0]
    unconfigured = events_job.execute_in_process(
        run_config=request.run_config, instance=instance, raise_on_error=False,
        resources={"postgres": postgres, "notifier": NotifierResource(
            postgres=postgres, channels=ChannelsResource(unconfigured="error"))})
    assert not unconfigured.success
    failure = unconfigured.failure_data_for_node("handle_events").error.message
    assert "events not handled: email is not configured" in failure
    assert sql(postgres, "SELECT count(*) FROM events_handled")[0][0] == 0  # kept for a run once it is fixed

    with EmailApi(refused_calls={2: 422}) as api:
        assert run(postgres, instance, request, api).success
    assert [n for _, _, n in api.calls] == [10, 10, 5] and len(api.delivered) == 15
    assert sql(postgres, "SELECT status, count(*) FROM email_deliveries GROUP BY status ORDER BY status") == [
        ("failed", 10), ("sent", 15)]
    error = "email (API): HTTP 422: refused by the test (not retried)"
    assert sql(postgres, "SELECT source, dedup_key, error FROM dead_letters") == [
        ("email", f"email:{event}:10-19", error)]
    assert sql(postgres, "SELECT outcome, error FROM events_handled") == [
        ("failed", f"10 of 25 emails not sent: {error}")]


def test_malformed_events_are_recorded_with_their_reason_and_do_not_block_others(postgres, instance):
    with Receiver(SECRET) as receiver:
        good_hook = webhook_event(postgres, add_webhook(postgres, receiver.url))
        inactive_hook = add_webhook(postgres, receiver.url, active=False)
        inactive = webhook_event(postgres, inactive_hook)
        picky_hook = add_webhook(postgres, receiver.url, events=["order.paid"])
        unsubscribed = webhook_event(postgres, picky_hook)
        missing = webhook_event(postgres, 9999)
        not_object = add_event(postgres, "webhook/send", [1, 2])
        text_id = add_event(postgres, "webhook/send", {"webhook_id": "7", "event": "x"})
        no_to = add_event(postgres, "email/send", {"subject": "Hi", "html": "<p/>"})
        not_list = add_event(postgres, "email/send-batch", {"emails": "a@example.org"})
        mixed = add_event(postgres, "email/send-batch", {"emails": [
            {"to": "ok@example.org", "subject": "fine", "html": "<p/>"},
            {"to": "nope", "subject": "bad address", "html": "<p/>"},
            {"to": "ok2@example.org", "html": "<p/>"},
        ]})
        campaign = add_event(postgres, "campaign.status.changed", {"campaign_id": 1, "from": "draft", "to": "active"})

        tick = evaluate(postgres, instance)
        assert campaign not in event_ids(tick.run_requests[0])  # other kinds: passed over, no run
        result = run(postgres, instance, tick.run_requests[0])  # email unconfigured: the local outbox
    assert result.success
    assert len(receiver.requests) == 1 and receiver.requests[0].json["id"] == good_hook
    handled = {row[0]: row[1:] for row in sql(postgres, "SELECT event_id, outcome, error FROM events_handled")}
    assert handled == {
        good_hook: ("delivered", None),
        inactive: ("failed", f"webhook {inactive_hook} is inactive; nothing sent"),
        unsubscribed: ("ignored", f"webhook {picky_hook} does not subscribe to 'user.created'"),
        missing: ("failed", "webhook 9999 does not exist; nothing sent"),
        not_object: ("invalid", f"webhook/send event {not_object}: the payload must be a JSON object, got an array"),
        text_id: ("invalid", f"webhook/send event {text_id}: 'webhook_id' must be the id of a row in webhooks, "
                             "got a string"),
        no_to: ("invalid", "missing 'to' (an email address or an array of them)"),
        not_list: ("invalid", f"email/send-batch event {not_list}: 'emails' must be an array of {{to, subject, html}}, "
                              "got a string"),
        mixed: ("failed", "2 of 3 emails not sent: emails[1]: not an email address: 'nope'; "
                          "emails[2]: missing 'subject' (a string)"),
    }
    assert sql(postgres, "SELECT ref, payload->>'subject' FROM outbox_messages WHERE channel = 'email'") == [
        (f"event:{mixed}:0", "fine")]
    assert sql(postgres, "SELECT idx, status FROM email_deliveries WHERE event_id = :e ORDER BY idx", e=mixed) == [
        (0, "sent"), (1, "invalid"), (2, "invalid")]
    assert output_metadata(result).items() >= {"delivered": 1, "failed": 3, "invalid": 4, "ignored": 1}.items()
    assert sql(postgres, "SELECT count(*) FROM events_handled WHERE event_id = :c", c=campaign)[0][0] == 0
    assert evaluate(postgres, instance, tick.cursor).run_requests == []
    # given by hand to the job anyway, an event of another kind is recorded as ignored
    assert consume(postgres, [campaign], {}, run_id="by-hand")["ignored"] == 1
    assert sql(postgres, "SELECT outcome, error FROM events_handled WHERE event_id = :c", c=campaign) == [
        ("ignored", "no handler for events named 'campaign.status.changed'")]


def test_each_event_is_consumed_once_across_sensor_restarts_and_reruns(postgres, instance):
    with Receiver(SECRET) as receiver:
        hook = add_webhook(postgres, receiver.url)
        first = [webhook_event(postgres, hook, {"n": n}) for n in range(3)]
        tick, again, key = in_one_window(lambda: evaluate(postgres, instance), lambda: evaluate(postgres, instance),
                                         lambda: run_key("events", map(str, first)))
        assert again.run_requests[0].run_key == tick.run_requests[0].run_key  # same tick twice
        assert [event_ids(r) for r in tick.run_requests] == [first]
        assert tick.run_requests[0].run_key == key
        assert run(postgres, instance, tick.run_requests[0]).success

        after_restart = evaluate(postgres, instance, tick.cursor)  # the daemon restarts with its stored cursor
        assert after_restart.run_requests == [] and after_restart.skip_reason.skip_message == "no new events"
        assert evaluate(postgres, instance).run_requests == []  # a fresh sensor (cursor lost or reset)

        later = webhook_event(postgres, hook, {"n": 3})
        next_tick = evaluate(postgres, instance, tick.cursor)
        assert [event_ids(r) for r in next_tick.run_requests] == [[later]]
        run(postgres, instance, next_tick.run_requests[0])

        rerun = run(postgres, instance, tick.run_requests[0])  # the first run re-executed
        assert output_metadata(rerun).items() >= {"already_handled": 3, "delivered": 0, "not_found": 0}.items()
    assert sorted(r.json["data"]["n"] for r in receiver.requests) == [0, 1, 2, 3]
    assert sql(postgres, "SELECT count(*) FROM webhook_deliveries")[0][0] == 4


def test_an_event_committed_out_of_id_order_is_not_skipped(postgres, instance):
    insert = text("INSERT INTO events_outbox (name, payload) VALUES ('email/send', CAST(:p AS jsonb)) RETURNING id")
    payload = json.dumps({"to": "a@example.org", "subject": "s", "text": "t"})
    with postgres.engine.connect() as early, postgres.engine.connect() as late:
        late.execute(text("SELECT pg_current_xact_id()"))  # `late` takes its transaction id first
        low = early.execute(insert, {"p": payload}).scalar_one()  # the smaller id, in the younger transaction
        high = late.execute(insert, {"p": payload}).scalar_one()
        assert low < high
        assert evaluate(postgres, instance).run_requests == []  # nothing committed yet
        late.commit()
        tick = evaluate(postgres, instance)
        assert [event_ids(r) for r in tick.run_requests] == [[high]]  # an id cursor would now be past `low`
        early.commit()
    second = evaluate(postgres, instance, tick.cursor)
    assert [event_ids(r) for r in second.run_requests] == [[low]]

    with postgres.engine.connect() as open_tx:  # an older transaction that writes no event still holds it back
        open_tx.execute(text("SELECT pg_current_xact_id()"))
        waiting = add_event(postgres, "email/send", {"to": "a@example.org", "subject": "s", "text": "t"})
        assert evaluate(postgres, instance, second.cursor).run_requests == []
        open_tx.rollback()
    assert [event_ids(r) for r in evaluate(postgres, instance, second.cursor).run_requests] == [[waiting]]


def test_two_runs_given_the_same_events_deliver_each_once(postgres):
    with Receiver(SECRET) as receiver:
        hook = add_webhook(postgres, receiver.url)
        ids = [webhook_event(postgres, hook, {"n": n}) for n in range(20)]
        config = EventsConfig(event_ids=ids)

        def consume_all(run_id):
            given = [*ids, 10**9]  # and an id that is not in the outbox
            return consume(postgres, given, dispatch_table(postgres, notifier(postgres), config, http), run_id)

        with httpx.Client() as http, ThreadPoolExecutor(2) as pool:
            counts = list(pool.map(consume_all, ["run-a", "run-b"]))
    assert len(receiver.requests) == 20
    assert sum(c["delivered"] for c in counts) == 20 and sum(c["already_handled"] for c in counts) == 20
    assert [c["not_found"] for c in counts] == [1, 1]
    assert sql(postgres, "SELECT count(*), count(DISTINCT event_id) FROM webhook_deliveries")[0] == (20, 20)


def test_the_sensor_obeys_the_controls_and_keeps_its_cursor(postgres, instance):
    webhook_event(postgres, 1)
    with postgres.begin() as conn:
        set_controls(conn, "test", comms_enabled=False)
    result = evaluate(postgres, instance, cursor="5:3")
    assert result.run_requests == [] and result.cursor == "5:3"
    assert "communications are disabled" in result.skip_reason.skip_message


def test_a_garbled_cursor_is_a_clear_error():
    assert parse_cursor(None) == ("0", 0) and parse_cursor("812:7") == ("812", 7)
    with pytest.raises(ValueError, match="is not '<txid>:<event id>'; clear it"):
        parse_cursor("7")


def test_a_poisoned_event_fails_alone_and_the_batch_goes_on(postgres, instance):
    with Receiver(SECRET) as receiver:
        broken_url = webhook_event(postgres, add_webhook(postgres, "http://[::1/hook"))  # passes the CHECK, not httpx
        good = webhook_event(postgres, add_webhook(postgres, receiver.url))
        result = run(postgres, instance, evaluate(postgres, instance).run_requests[0])
    assert result.success and [r.json["id"] for r in receiver.requests] == [good]
    outcome, error = sql(postgres, "SELECT outcome, error FROM events_handled WHERE event_id = :e", e=broken_url)[0]
    assert outcome == "failed" and error.startswith(f"webhook/send event {broken_url}: InvalidURL")
    assert sql(postgres, "SELECT source FROM dead_letters WHERE dedup_key = :k", k=f"event:{broken_url}") == [
        ("event:webhook/send",)]

    def explodes(event):
        raise KeyError("a handler bug")

    crashing = add_event(postgres, "custom/thing", {})
    fine = add_event(postgres, "custom/other", {})
    counts = consume(postgres, [crashing, fine], {"custom/thing": explodes,
                                                   "custom/other": lambda e: Result("delivered")}, run_id="r")
    assert counts["failed"] == 1 and counts["delivered"] == 1
    assert sql(postgres, "SELECT source, error FROM dead_letters WHERE dedup_key = :k", k=f"event:{crashing}") == [
        ("event:custom/thing", f"custom/thing event {crashing}: KeyError: 'a handler bug'")]


# -- Standard Webhooks and the one retry rule ------------------------------------------------------


def receivers_key(secret: str) -> Webhook:
    """How a receiver holding our raw secret verifies: the secret's bytes are the key."""
    return Webhook(secret.encode())


def test_webhooks_are_signed_the_standard_webhooks_way_with_one_id_across_retries(postgres, instance):
    whsec = "whsec_" + base64.b64encode(b"a-random-32-byte-key-for-the-hk!").decode()
    with Receiver(SECRET, replies=[(500, {}), (502, {})]) as raw, Receiver(whsec) as standard:
        raw_event = webhook_event(postgres, raw_hook := add_webhook(postgres, raw.url), {"user": 1})
        standard_event = webhook_event(postgres, add_webhook(postgres, standard.url, secret=whsec))
        assert run(postgres, instance, evaluate(postgres, instance).run_requests[0]).success
    assert len(raw.requests) == 3 and len(standard.requests) == 1
    for request in raw.requests:  # each attempt verifies, both ways a receiver may hold the raw secret
        assert receivers_key(SECRET).verify(request.body, request.headers) == request.json
        assert Webhook("whsec_" + base64.b64encode(SECRET.encode()).decode()).verify(request.body, request.headers)
    assert {r.headers["webhook-id"] for r in raw.requests} == {f"webhook:{raw_event}:{raw_hook}"}
    assert Webhook(whsec).verify(standard.requests[0].body, standard.requests[0].headers)["id"] == standard_event
    first = raw.requests[0]
    with pytest.raises(WebhookVerificationError):  # a changed body
        receivers_key(SECRET).verify(first.body.replace(b'"user":1', b'"user":2'), first.headers)
    with pytest.raises(WebhookVerificationError, match="too old"):  # a replay, re-dated to look fresh, fails too
        stale = first.headers | {"webhook-timestamp": str(int(time.time()) - 600)}
        receivers_key(SECRET).verify(first.body, stale)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        replayed = first.headers | {"webhook-timestamp": str(int(time.time()) + 1)}
        receivers_key(SECRET).verify(first.body, replayed)


def generic_channel_delivery(postgres, instance, receiver: Receiver) -> str:
    channel = ChannelsResource(webhook_url=receiver.url, webhook_secret=SECRET,
                               webhook_backoff_seconds=0.2).channel("webhook")
    try:
        channel.deliver(7, {"id": 7, "dedup_key": "k", "title": "Disk"}, None)
    finally:
        channel.close()
    return "notification:7:webhook"


def events_delivery(postgres, instance, receiver: Receiver) -> str:
    hook = add_webhook(postgres, receiver.url)
    event = webhook_event(postgres, hook)
    request = evaluate(postgres, instance).run_requests[0]
    config = {"event_ids": event_ids(request), "webhook_backoff_seconds": 0.2}
    assert events_job.execute_in_process(run_config={"ops": {"handle_events": {"config": config}}}, instance=instance,
                                         resources={"postgres": postgres, "notifier": notifier(postgres)}).success
    assert sql(postgres, "SELECT attempt, status_code, success FROM webhook_deliveries ORDER BY attempt") == [
        (1, 429, False), (2, 503, False), (3, 200, True)]
    return f"webhook:{event}:{hook}"


@pytest.mark.parametrize("send", [generic_channel_delivery, events_delivery])
def test_the_generic_and_the_events_webhook_follow_the_one_retry_rule(postgres, instance, send):
    with Receiver(SECRET, replies=[(429, {"Retry-After": "1"}), (503, {})]) as receiver:
        message_id = send(postgres, instance, receiver)
    first, second, third = (r.at for r in receiver.requests)
    assert len(receiver.requests) == 3
    assert second - first >= 1.0  # the receiver's Retry-After, over the 0.15–0.25 s backoff
    assert 0.3 <= third - second < 1.0  # then the backoff's second step: 0.2 s · 2, ±25 %
    assert {r.headers["webhook-id"] for r in receiver.requests} == {message_id}
    assert all(receivers_key(SECRET).verify(r.body, r.headers, json_parse=False) is None for r in receiver.requests)


def test_a_long_wait_hint_hands_the_webhook_to_the_retry_queue(postgres, instance):
    with Receiver(SECRET, replies=[(429, {"Retry-After": "120"})]) as receiver:
        hook = add_webhook(postgres, receiver.url)
        event = webhook_event(postgres, hook)
        started = time.monotonic()
        result = run(postgres, instance, evaluate(postgres, instance).run_requests[0])
        assert result.success and time.monotonic() - started < 20 and len(receiver.requests) == 1
        assert output_metadata(result)["webhooks_to_retry_queue"] == 1
        [(outcome, error)] = sql(postgres, "SELECT outcome, error FROM events_handled")
        assert outcome == "failed" and "asked to wait 120 s" in error and "the retry queue sends it at" in error
        [(job, payload, due_in)] = sql(
            postgres, "SELECT job_name, payload, extract(epoch FROM run_at - now()) FROM retry_jobs")
        assert (job, payload) == ("webhook.redeliver", {"event_id": event, "webhook_id": hook}) and 110 <= due_in <= 121
        assert sql(postgres, "SELECT count(*) FROM dead_letters") == [(0,)]

        later = datetime.now(UTC) + timedelta(seconds=121)
        assert process_ready(postgres, NotifierResource(postgres=postgres), "run-1", now=later)["completed"] == 1
    assert len(receiver.requests) == 2
    assert {r.headers["webhook-id"] for r in receiver.requests} == {f"webhook:{event}:{hook}"}
    assert sql(postgres, "SELECT attempt, status_code, success FROM webhook_deliveries ORDER BY attempt") == [
        (1, 429, False), (2, 200, True)]
    assert sql(postgres, "SELECT outcome, error FROM events_handled") == [("delivered", None)]
