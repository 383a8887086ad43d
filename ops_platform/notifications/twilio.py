"""Twilio SMS and voice call, for SEV1 and SEV0 (seed 003: "SEV0 immediate call, SEV1 immediate SMS").

Both POST a form to the account's REST resource with basic auth sid:token, one request per recipient.
A call speaks `<Response><Say>…</Say></Response>`: the text XML-escaped and cut to what is said in a minute.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

from sqlalchemy import Connection, text

from ops_platform.outbound.retry import DeliveryError
from ops_platform.outbound.http import RetryingHttp

SMS_LIMIT = 1600  # characters Twilio accepts in one message body
CALL_SECONDS = 60
SPOKEN_WORDS_PER_SECOND = 2.3  # text-to-speech at its default pace, ~140 words a minute
CALL_WORDS = int(CALL_SECONDS * SPOKEN_WORDS_PER_SECOND)

# The Message SID Twilio answered, so its status callbacks find the SMS (events/delivery_status.py).
_SMS_SENT_SQL = text("INSERT INTO sms_deliveries (message_sid, notification_id, to_number, status)"
                     " VALUES (:sid, :notification_id, :to, :status) ON CONFLICT (message_sid) DO NOTHING")


class _Twilio:
    resource = ""  # Messages | Calls

    def __init__(self, account_sid: str, auth_token: str, from_number: str, default_to: Sequence[str] = (),
                 api_url: str = "https://api.twilio.com", name: str = "", secrets: Sequence[str] = (), **retry: Any):
        self.name, self.from_number, self._default_to = name, from_number, tuple(default_to)
        self._url = f"{api_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/{self.resource}.json"
        self._http = RetryingHttp(name, auth=(account_sid, auth_token), secrets=[auth_token, *secrets], **retry)

    def deliver(self, notification_id: int, payload: dict[str, Any], conn: Connection) -> None:
        numbers = tuple(r for r in payload.get("recipients") or () if "@" not in r) or self._default_to
        if not numbers:
            raise DeliveryError(f"{self.name}: no phone number (set OPS_TWILIO_TO or give recipients)", 0)
        form = self._form(payload)
        for number in numbers:
            response = self._http.post(self._url, data={"To": number, "From": self.from_number} | form)
            if conn is not None:  # None: the path that runs while Postgres is down (monitoring/db_down.py)
                self._sent(conn, notification_id, number, response)

    def _sent(self, conn: Connection, notification_id: int, number: str, response) -> None:
        """What to keep of an accepted send; nothing by default."""

    def close(self) -> None:
        self._http.close()

    def _form(self, payload: dict[str, Any]) -> dict[str, str]:
        raise NotImplementedError


class SmsChannel(_Twilio):
    resource = "Messages"

    def __init__(self, *args: Any, name: str = "sms", status_callback: str | None = None, **kwargs: Any):
        super().__init__(*args, name=name, **kwargs)
        self.status_callback = status_callback  # where Twilio posts this SMS's delivery statuses

    def _sent(self, conn: Connection, notification_id: int, number: str, response) -> None:
        """An `sms_deliveries` row under the Message SID of Twilio's answer ({"sid": "SM…", "status": "queued"})."""
        try:
            answer = response.json()
        except ValueError:
            return
        if isinstance(answer, dict) and isinstance(answer.get("sid"), str):
            conn.execute(_SMS_SENT_SQL, {"sid": answer["sid"], "notification_id": notification_id, "to": number,
                                         "status": str(answer.get("status") or "queued")})

    def _form(self, payload: dict[str, Any]) -> dict[str, str]:
        body = f"[{payload['severity']}] {payload['title']}" + (f"\n{payload['body']}" if payload.get("body") else "")
        form = {"Body": body if len(body) <= SMS_LIMIT else body[:SMS_LIMIT - 1] + "…"}
        return form | ({"StatusCallback": self.status_callback} if self.status_callback else {})


class CallChannel(_Twilio):
    resource = "Calls"

    def __init__(self, *args: Any, name: str = "call", **kwargs: Any):
        super().__init__(*args, name=name, **kwargs)

    def _form(self, payload: dict[str, Any]) -> dict[str, str]:
        return {"Twiml": twiml(spoken_text(payload))}


def spoken_text(payload: dict[str, Any], max_words: int = CALL_WORDS) -> str:
    """Severity, title and body as sentences, cut at a word boundary to fit one minute of speech."""
    severity = {"SEV0": "Severity zero", "SEV1": "Severity one"}.get(payload["severity"], payload["severity"])
    words = f"{severity}. {payload['title']}. {payload.get('body') or ''}".split()
    if len(words) > max_words:
        words = words[:max_words - 3] + ["and", "more."]
    return " ".join(words)


def twiml(text: str) -> str:
    return f"<Response><Say>{escape(text)}</Say></Response>"
