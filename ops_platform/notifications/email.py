"""Email: one `Email` value, three senders behind `EmailSender`, and the `email` notification channel.

- SmtpSender: stdlib smtplib, one connection per batch, STARTTLS and login optional.
- ApiEmailSender: an HTTP email API in the shape of Resend (POST /emails, POST /emails/batch ≤ 100).
- OutboxEmailSender: nothing leaves the machine; each email becomes an outbox_messages row, once per key.
"""

from __future__ import annotations

import hashlib
import json
import smtplib
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Protocol

from sqlalchemy import Connection, text

from ops_platform.outbound.retry import DeliveryError
from ops_platform.outbound.http import RetryingHttp
from ops_platform.outbound.retry import Final, Retryable, RetryRule

API_BATCH_LIMIT = 100  # Resend's batch endpoint takes at most 100 emails per call
SMTP_REPLY_CHARS = 200  # of a server's reply kept in the error


@dataclass(frozen=True)
class Email:
    to: tuple[str, ...]
    subject: str
    text: str = ""
    html: str | None = None
    key: str | None = None  # idempotency key: Idempotency-Key header for the API, Message-ID basis for SMTP, outbox ref


class EmailSender(Protocol):
    def send_batch(self, emails: Sequence[Email]) -> list[str]: ...  # one provider/message id per email

    def close(self) -> None: ...


def _check(emails: Sequence[Email]) -> None:
    """Bad input is refused before anything is sent, with the reason (not retried)."""
    for email in emails:
        if not email.to:
            raise DeliveryError(f"email {email.subject!r} has no recipients (set OPS_EMAIL_TO or give recipients)", 0)
        bad = [a for a in email.to if "@" not in a or any(c in a for c in "\r\n,;<> ")]
        if bad:
            raise DeliveryError(f"email {email.subject!r}: not an email address: {', '.join(map(repr, bad))}", 0)


def one_line(subject: str) -> str:
    """Mail headers may not contain line breaks: a multi-line title becomes one line."""
    return " ".join(subject.split())


class SmtpSender:
    """One SMTP connection per batch. Connection drops, timeouts and 4xx replies are retried (from the
    first email not yet accepted) by the one `RetryRule`; 5xx replies, refused logins and TLS problems are
    final at once."""

    def __init__(self, host: str, port: int = 587, username: str | None = None, password: str | None = None,
                 starttls: bool = True, sender: str = "ops@localhost", attempts: int = 3,
                 backoff_seconds: float = 1.0, timeout_seconds: float = 10.0):
        self.host, self.port, self.starttls, self.sender = host, port, starttls, sender
        self._login = (username, password) if username else None
        self.rule, self.timeout_seconds = RetryRule(max(1, attempts), backoff_seconds), timeout_seconds

    def send_batch(self, emails: Sequence[Email]) -> list[str]:
        """Message-IDs in the order of `emails`; DeliveryError (see `RetryRule.call`) when the server refuses
        or stays unreachable, its error saying how many of the batch were accepted."""
        _check(emails)
        messages = [self._message(e) for e in emails]
        sent = 0

        def attempt() -> list[str]:
            nonlocal sent
            try:
                with smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds) as smtp:
                    if self.starttls:
                        smtp.starttls(context=ssl.create_default_context())
                    if self._login:
                        smtp.login(*self._login)
                    for message in messages[sent:]:
                        smtp.send_message(message)
                        sent += 1
                return [m["Message-ID"] for m in messages]
            except (smtplib.SMTPNotSupportedError, smtplib.SMTPAuthenticationError, ssl.SSLError) as exc:
                raise Final(_smtp_error(exc)) from None
            except smtplib.SMTPRecipientsRefused as exc:
                codes = sorted({code for code, _ in exc.recipients.values()})
                error, final = f"recipients refused ({', '.join(map(str, codes))})", min(codes) >= 500
            except smtplib.SMTPResponseException as exc:
                error, final = _smtp_error(exc), exc.smtp_code >= 500
            except (smtplib.SMTPException, OSError) as exc:
                error, final = type(exc).__name__, False
            if final:
                raise Final(error)
            raise Retryable(f"{error} ({sent} of {len(messages)} sent)")

        return self.rule.call(attempt, "email (SMTP)")

    def close(self) -> None:
        """Nothing held between batches: each batch opens and closes its own connection."""

    def _message(self, email: Email) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = ", ".join(email.to)
        message["Subject"] = one_line(email.subject)
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = message_id(email, self.sender)
        message.set_content(email.text or "")
        if email.html:
            message.add_alternative(email.html, subtype="html")
        return message


def message_id(email: Email, sender: str) -> str:
    """Stable for a keyed email, so a retried send is recognisable as the same message downstream."""
    domain = sender.rpartition("@")[2].strip("> ") or "localhost"
    basis = email.key or f"{time.time_ns()}:{id(email)}"
    return f"<{hashlib.sha256(basis.encode()).hexdigest()[:32]}@{domain}>"


def _smtp_error(exc: Exception) -> str:
    code = getattr(exc, "smtp_code", None)
    reply = getattr(exc, "smtp_error", b"")
    reply = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    return f"{code} {reply}"[:SMTP_REPLY_CHARS].strip() if code else f"{type(exc).__name__}: {exc}"[:SMTP_REPLY_CHARS]


class ApiEmailSender:
    """Resend-shaped API: one email → POST /emails, more → POST /emails/batch in chunks of ≤ 100.
    The Idempotency-Key makes a retried call (ours or the caller's) send nothing twice."""

    def __init__(self, api_url: str, api_key: str, sender: str = "ops@localhost", attempts: int = 3,
                 backoff_seconds: float = 1.0, timeout_seconds: float = 10.0, secrets: Sequence[str] = ()):
        self.api_url, self.sender = api_url.rstrip("/"), sender
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._http = RetryingHttp("email (API)", attempts, backoff_seconds, timeout_seconds,
                                  secrets=[api_key, *secrets])

    def send_batch(self, emails: Sequence[Email]) -> list[str]:
        _check(emails)
        ids: list[str] = []
        for start in range(0, len(emails), API_BATCH_LIMIT):
            chunk = emails[start:start + API_BATCH_LIMIT]
            ids.extend(self._send_one(chunk[0]) if len(chunk) == 1 else self._send_chunk(chunk))
        return ids

    def close(self) -> None:
        self._http.close()

    def _send_one(self, email: Email) -> list[str]:
        response = self._http.post(f"{self.api_url}/emails", json=self._body(email),
                                   headers=self._headers | _idempotency([email]))
        return [str(_answer(response).get("id", ""))]

    def _send_chunk(self, chunk: Sequence[Email]) -> list[str]:
        response = self._http.post(f"{self.api_url}/emails/batch", json=[self._body(e) for e in chunk],
                                   headers=self._headers | _idempotency(chunk))
        data = _answer(response).get("data") or []
        if len(data) != len(chunk):
            raise DeliveryError(f"email (API): the batch endpoint answered {len(data)} ids for {len(chunk)} emails", 1)
        return [str(item.get("id", "")) for item in data]

    def _body(self, email: Email) -> dict[str, Any]:
        body: dict[str, Any] = {"from": self.sender, "to": list(email.to), "subject": one_line(email.subject),
                                "text": email.text}
        if email.html:
            body["html"] = email.html
        return body


def _answer(response) -> dict[str, Any]:
    """The provider's JSON answer; a 2xx that is not JSON is an error (the emails' fate is unknown)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise DeliveryError(f"email (API): HTTP {response.status_code} without a JSON object in reply", 1)
    return body


def _idempotency(emails: Sequence[Email]) -> dict[str, str]:
    """Only when every email has a key: the same emails then always make the same key (≤ 256 chars)."""
    keys = [e.key for e in emails]
    if not all(keys):
        return {}
    if len(keys) == 1 and len(keys[0]) <= 256:
        return {"Idempotency-Key": keys[0]}
    return {"Idempotency-Key": "ops-" + hashlib.sha256("\n".join(keys).encode()).hexdigest()}


class OutboxEmailSender:
    """The embedded default: each email is kept in outbox_messages (channel 'email', ref = key), once per key."""

    def __init__(self, conn: Connection, sender: str = "ops@localhost", note: str | None = None):
        self.conn, self.sender, self.note = conn, sender, note

    def send_batch(self, emails: Sequence[Email]) -> list[str]:
        _check(emails)
        if not emails:
            return []
        inserted = self.conn.execute(text(
            "INSERT INTO outbox_messages (notification_id, channel, ref, payload)"
            " SELECT NULL, 'email', r.ref, r.payload"
            " FROM unnest(CAST(:refs AS text[]), CAST(:payloads AS jsonb[])) WITH ORDINALITY AS r(ref, payload, n)"
            " ORDER BY r.n ON CONFLICT DO NOTHING RETURNING id, ref"
        ), {"refs": [e.key for e in emails], "payloads": [json.dumps(self._payload(e)) for e in emails]}).all()
        unkeyed = iter(sorted(row.id for row in inserted if row.ref is None))  # ids follow insertion order
        keys = [e.key for e in emails if e.key]
        by_key = dict(self.conn.execute(text(
            "SELECT ref, id FROM outbox_messages WHERE channel = 'email' AND ref = ANY(:keys)"
        ), {"keys": keys}).all()) if keys else {}
        return [f"outbox:{by_key[e.key] if e.key else next(unkeyed)}" for e in emails]

    def close(self) -> None:
        """The caller owns the connection and its transaction."""

    def _payload(self, email: Email) -> dict[str, Any]:
        payload = {"from": self.sender, "to": list(email.to), "subject": one_line(email.subject),
                   "text": email.text, "html": email.html}
        return payload | {"outbox_note": self.note} if self.note else payload


class EmailChannel:
    """The `email` notification channel: the message as one email through the configured sender."""

    def __init__(self, sender: EmailSender, default_to: Sequence[str], name: str = "email"):
        self.name, self._sender, self._default_to = name, sender, tuple(default_to)

    def deliver(self, notification_id: int, payload: dict[str, Any], conn: Connection) -> None:
        to = tuple(r for r in payload.get("recipients") or () if "@" in r) or self._default_to
        email = Email(to=to, subject=f"[{payload['severity']}] {payload['title']}", text=payload.get("body", ""),
                      key=f"notification:{notification_id}:{self.name}")
        self._sender.send_batch([email])

    def close(self) -> None:
        self._sender.close()
