"""Seed 003's morning call: a read-only status script that is spoken in at most 60 seconds.

The word budget is the call channel's minute of speech (about 140 words at text-to-speech pace)
less the severity and title it reads first, so the channel never has to cut the script. Sentences
are kept by priority (critical incidents, then pending work, then overnight activity) and read in a
natural order; each incident title is cut to a few words so one long title cannot crowd out the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, text

from ops_platform.notifications.twilio import CALL_WORDS, SPOKEN_WORDS_PER_SECOND

STATUS_SQL = text(
    "SELECT (SELECT count(*) FROM audit_log WHERE action_type = 'run' AND ts > :since AND ts <= :at) AS"
    " runs, (SELECT count(*) FROM audit_log WHERE action_type = 'run' AND NOT success AND ts > :since AND"
    " ts <= :at)   AS failed_runs, (SELECT count(*) FROM incidents WHERE created_at > :since AND"
    " created_at <= :at) AS new_incidents, (SELECT count(*) FROM notifications WHERE status = 'digest')"
    " AS waiting_digest, (SELECT count(*) FROM notifications WHERE status = 'held') AS held, (SELECT"
    " count(*) FROM dead_letters WHERE resolved_at IS NULL) AS dead_letters, (SELECT count(*) FROM"
    " retry_jobs WHERE status IN ('pending', 'running')) AS retries"
)
CRITICAL_SQL = text(
    "SELECT severity, title, count(*) OVER () AS total FROM incidents WHERE status = 'open' AND severity"
    " IN ('SEV0', 'SEV1') AND NOT archived ORDER BY severity, created_at DESC LIMIT :n"
)

MAX_WORDS = CALL_WORDS - 8  # "INFO. Morning Status Call." is spoken before the script
OVERNIGHT = timedelta(hours=12)
TITLE_WORDS = 8
LISTED_INCIDENTS = 3


def spoken_seconds(script: str) -> float:
    return round(len(script.split()) / SPOKEN_WORDS_PER_SECOND, 1)


@dataclass(frozen=True)
class Sentence:
    priority: int  # lower is kept first
    text: str


def status_script(conn: Connection, at: datetime, local_day: str) -> str:
    """The script for the call at `at` (`local_day` e.g. 'Monday, March 9'); reads only."""
    since = at - OVERNIGHT
    s = conn.execute(STATUS_SQL, {"since": since, "at": at}).one()
    critical = conn.execute(CRITICAL_SQL, {"n": LISTED_INCIDENTS}).all()

    sentences = [Sentence(0, f"Good morning. Here is your ops status for {local_day}.")]
    if critical:
        total = critical[0].total
        names = "; ".join(f"{r.severity}, {_cut(r.title)}" for r in critical)
        more = f", and {total - len(critical)} more" if total > len(critical) else ""
        sentences.append(Sentence(1, f"{_count(total, 'critical incident')} open: {names}{more}."))
    else:
        sentences.append(Sentence(1, "No critical incidents are open."))
    pending = [p for p in (_count(s.dead_letters, "dead letter") + " to resolve" if s.dead_letters else "",
                           _count(s.retries, "job") + " in the retry queue" if s.retries else "",
                           _count(s.held, "message") + " held by quiet hours" if s.held else "") if p]
    sentences.append(Sentence(2, "Pending: " + ", ".join(pending) + "." if pending else "Nothing is pending."))
    sentences.append(Sentence(3, f"Overnight, {_count(s.runs, 'workflow run')}, {s.failed_runs} failed, and "
                                 f"{_count(s.new_incidents, 'new incident')}."))
    if s.waiting_digest:
        sentences.append(Sentence(4, f"{_count(s.waiting_digest, 'message')} will be in the daily digest."))
    sentences.append(Sentence(5, "That is all. Have a good day."))
    return fit(sentences, MAX_WORDS)


def fit(sentences: list[Sentence], max_words: int) -> str:
    """The sentences that fit in `max_words`, chosen by priority, read in their original order."""
    kept, words = set(), 0
    for index, sentence in sorted(enumerate(sentences), key=lambda pair: pair[1].priority):
        n = len(sentence.text.split())
        if words + n <= max_words:
            kept.add(index)
            words += n
    return " ".join(s.text for i, s in enumerate(sentences) if i in kept)


def _cut(title: str) -> str:
    words = title.split()
    return " ".join(words[:TITLE_WORDS]) + (" …" if len(words) > TITLE_WORDS else "")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
