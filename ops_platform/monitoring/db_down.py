"""When Postgres itself is down the health monitor still alerts, by a path that needs no database.

The notifier keeps its dedup keys and suppression log in Postgres, so it cannot say that Postgres is
gone. This path:
- appends every alert to OPS_HOME/health_alerts.log (the local trace, always written);
- delivers it straight through the HTTP channels of OPS_HEALTH_FALLBACK_CHANNELS (default: telegram, slack,
  teams, webhook; only the configured ones), each once;
- sends at most one alert an hour while the outage lasts, remembered in OPS_HOME/db_down.json
  (down_since, last_alert_at), a file, not a table;
- when the database answers again, says so once by the same path and forgets the outage.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ops_platform.notifications.message import Notification, Severity
from ops_platform.notifications.transports import ChannelsResource
from ops_platform.outbound.retry import DeliveryError
from ops_platform.settings import current

CHANNELS_VAR = "OPS_HEALTH_FALLBACK_CHANNELS"
DEFAULT_CHANNELS = ["telegram", "slack", "teams", "webhook"]
STATE_FILE, LOG_FILE = "db_down.json", "health_alerts.log"
REPEAT = timedelta(hours=1)


def fallback_channels() -> list[str]:
    return current().health_fallback_channels or DEFAULT_CHANNELS


class DatabaseDownAlerts:
    """The database-free alert path. `home` is OPS_HOME; `channels` the same ChannelsResource the notifier uses."""

    def __init__(self, home: Path, channels: ChannelsResource, channel_names: list[str] | None = None):
        self.state_path, self.log_path = home / STATE_FILE, home / LOG_FILE
        self.channels = channels
        self.names = [n for n in (channel_names or fallback_channels())
                      if channels.status().get(n, "").startswith("configured")]

    def down(self, problem: str, now: datetime | None = None) -> list[str] | None:
        """Alert that the database is down, unless alerted within the hour (then None). Returns the
        channels that delivered it (the log line is written either way)."""
        now = now or datetime.now(UTC)
        state = self._state()
        if state and now - datetime.fromisoformat(state["last_alert_at"]) < REPEAT:
            return None
        since = state["down_since"] if state else now.isoformat()
        self._write_state({"down_since": since, "last_alert_at": now.isoformat()})
        return self._send(Notification(type="health_alert", severity=Severity.SEV1, title="Operational database DOWN",
                                       body=f"{problem}\nDown since {since}. Alerts through the notifier resume when "
                                            "it is back.", dedup_key=f"db_down:{since}"), now)

    def up(self, now: datetime | None = None) -> list[str] | None:
        """Say once that the database is back after an outage; None when there was none."""
        now = now or datetime.now(UTC)
        state = self._state()
        if not state:
            return None
        self.state_path.unlink(missing_ok=True)
        return self._send(Notification(type="health_alert", severity=Severity.WARN, title="Operational database back",
                                       body=f"The database answers again (down since {state['down_since']}).",
                                       dedup_key=f"db_up:{state['down_since']}"), now)

    def _send(self, message: Notification, now: datetime) -> list[str]:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a") as log:
            log.write(f"{now.isoformat()} {message.severity} {message.title}: {message.body.splitlines()[0]}\n")
        delivered = []
        for name in self.names:
            channel = self.channels.channel(name)
            try:
                channel.deliver(0, message.payload(0), None)
                delivered.append(name)
            except (DeliveryError, OSError) as err:
                with self.log_path.open("a") as log:
                    log.write(f"{now.isoformat()} could not deliver through {name}: {err}\n")
            finally:
                getattr(channel, "close", lambda: None)()
        return delivered

    def _state(self) -> dict | None:
        try:
            return json.loads(self.state_path.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def _write_state(self, state: dict) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self.state_path)
