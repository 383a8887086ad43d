"""Handling outbox events exactly once: a per-event lock, a dispatch by name, one `events_handled` row each.

The `events_handled` primary key is the promise: an event with a row is never handled again, whatever
repeats (a retried step, a re-executed run, two runs holding the same event after a sensor reset).
While a run handles an event it holds a session advisory lock on it, so a second run waits and then
finds the row; a crashed run's lock goes with its connection. Handlers are idempotent per attempt or
per email (their own unique keys), so a run that dies half way resumes where the log says it stopped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ops_platform.framework.dead_letters import dead_letter
from ops_platform.resources.postgres import DatabaseUnavailable, PostgresResource
from ops_platform.settings import ConfigError

OUTCOMES = ("delivered", "failed", "invalid", "ignored")
_LOCK_SPACE = 0x0E7E  # first key of the two-key advisory lock: events of the outbox


@dataclass(frozen=True)
class Event:
    id: int
    name: str
    payload: Any  # jsonb: a dict when the producer behaved


@dataclass(frozen=True)
class Result:
    outcome: str  # one of OUTCOMES
    error: str | None = None
    counts: dict[str, int] = field(default_factory=dict)  # e.g. webhook_attempts, emails_sent
    retry_at: datetime | None = None  # handed to the retry queue, to be tried again at this time (UTC)


class InvalidEvent(ValueError):
    """The payload does not have the shape its event name promises; the message says what is wrong."""


Handler = Callable[[Event], Result]

_LOAD_SQL = text(
    "SELECT e.id, e.name, e.payload, EXISTS (SELECT 1 FROM events_handled h WHERE h.event_id = e.id) AS handled"
    " FROM events_outbox e WHERE e.id = ANY(:ids) ORDER BY e.txid, e.id"
)
_MARK_SQL = text(
    "INSERT INTO events_handled (event_id, name, run_id, outcome, error)"
    " VALUES (:id, :name, :run_id, :outcome, :error) ON CONFLICT (event_id) DO NOTHING"
)


def consume(postgres: PostgresResource, event_ids: Sequence[int], dispatch: Mapping[str, Handler],
            run_id: str | None, on_result: Callable[[Event, Result], None] = lambda e, r: None) -> Counter:
    """Handle each not-yet-handled event of `event_ids` once, in commit order. Returns counts by outcome,
    plus `already_handled`, `not_found` (ids not in the outbox) and the handlers' own counts. Raises only
    when the database or the deployment is broken (then the run fails and can be re-executed: handled
    events are skipped)."""
    counts: Counter = Counter()
    with postgres.begin() as conn:
        rows = conn.execute(_LOAD_SQL, {"ids": list(event_ids)}).all()
    events = [Event(r.id, r.name, r.payload) for r in rows if not r.handled]
    counts["already_handled"] = len(rows) - len(events)
    counts["not_found"] = len(set(event_ids)) - len(rows)
    # Autocommit: the lock connection never holds a transaction id, so it does not hold back the
    # sensor's pg_snapshot_xmin bound while webhooks are retried.
    with postgres.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as lock_conn:
        for event in events:
            key = {"space": _LOCK_SPACE, "id": _int4(event.id)}
            lock_conn.execute(text("SELECT pg_advisory_lock(:space, :id)"), key)
            try:
                result = _handle_once(postgres, event, dispatch, run_id)
            finally:
                lock_conn.execute(text("SELECT pg_advisory_unlock(:space, :id)"), key)
            if result is None:
                counts["already_handled"] += 1
                continue
            counts[result.outcome] += 1
            counts.update(result.counts)
            on_result(event, result)
    return counts


def _handle_once(postgres: PostgresResource, event: Event, dispatch: Mapping[str, Handler],
                 run_id: str | None) -> Result | None:
    with postgres.begin() as conn:  # another run may have finished it while we waited for the lock
        if conn.execute(text("SELECT 1 FROM events_handled WHERE event_id = :id"), {"id": event.id}).first():
            return None
    handler = dispatch.get(event.name)
    if handler is None:
        result = Result("ignored", f"no handler for events named {event.name!r}")
    else:
        try:
            result = handler(event)
        except InvalidEvent as err:
            result = Result("invalid", f"{event.name} event {event.id}: {err}")
        except (SQLAlchemyError, psycopg.Error, DatabaseUnavailable, ConfigError):
            raise  # the database or the deployment is broken: fail the run, it can be re-executed
        except Exception as err:  # noqa: BLE001 - one poisoned event must not strand the rest of its batch
            result = Result("failed", f"{event.name} event {event.id}: {type(err).__name__}: {err}")
            with postgres.begin() as conn:
                dead_letter(conn, source=f"event:{event.name}", dedup_key=f"event:{event.id}", error=result.error,
                            attempts=1, payload={"event_id": event.id, "name": event.name})
    with postgres.begin() as conn:
        conn.execute(_MARK_SQL, {"id": event.id, "name": event.name, "run_id": run_id, "outcome": result.outcome,
                                 "error": result.error[:4000] if result.error else None})
    return result


def _int4(value: int) -> int:
    """Event ids as the signed 32-bit second key (ids 2^32 apart share a lock: harmless, they only wait)."""
    return (value + 2**31) % 2**32 - 2**31


def require(payload: Any, key: str, kind: type | tuple[type, ...], what: str) -> Any:
    """payload[key], checked: raises InvalidEvent naming the key and the expected shape."""
    if not isinstance(payload, dict):
        raise InvalidEvent(f"the payload must be a JSON object, got {json_type(payload)}")
    if key not in payload or payload[key] is None:
        raise InvalidEvent(f"missing {key!r} ({what})")
    value = payload[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):  # JSON true is no id
        raise InvalidEvent(f"{key!r} must be {what}, got {json_type(value)}")
    return value


def event_data(event: Event) -> dict:
    """The event's fields: inbound webhooks (api/inbound.py) wrap the provider's body in {"provider", "data": …};
    our own events do not. Raises InvalidEvent when they are no JSON object."""
    payload = event.payload
    if isinstance(payload, dict) and "provider" in payload and isinstance(payload.get("data"), dict):
        return payload["data"]
    if not isinstance(payload, dict):
        raise InvalidEvent("the payload must be a JSON object")
    return payload


def event_time(data: dict, key: str) -> datetime:
    """data[key] as an aware datetime (ISO 8601, "Z" allowed); InvalidEvent naming the key otherwise."""
    value = require(data, key, str, "an ISO 8601 time")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidEvent(f"{key!r} must be an ISO 8601 time, got {value!r}") from None


def json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)
