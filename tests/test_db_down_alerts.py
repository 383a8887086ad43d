"""The health monitor's database-free alert path: once an hour while Postgres is down, once when it is back."""

from datetime import UTC, datetime, timedelta

from helpers import Receiver

from ops_platform.monitoring.db_down import DatabaseDownAlerts
from ops_platform.notifications.transports import ChannelsResource

T0 = datetime(2026, 5, 4, 3, 0, tzinfo=UTC)


def test_down_alerts_hourly_without_the_database_and_says_when_it_is_back(tmp_path):
    with Receiver(secret="s3cret") as hook:
        alerts = DatabaseDownAlerts(tmp_path, ChannelsResource(webhook_url=hook.url, webhook_secret="s3cret"),
                                    ["webhook", "telegram"])  # telegram is not configured: not tried
        assert alerts.down("cannot reach the operational database at db:5432/ops", T0) == ["webhook"]
        assert alerts.down("still down", T0 + timedelta(minutes=59)) is None
        assert alerts.down("still down", T0 + timedelta(minutes=61)) == ["webhook"]
        assert alerts.up(T0 + timedelta(minutes=70)) == ["webhook"]
        assert alerts.up(T0 + timedelta(minutes=75)) is None
        received = [r.json for r in hook.requests]
    assert all(r.signature_ok for r in hook.requests)
    assert [(m["severity"], m["title"]) for m in received] == [
        ("SEV1", "Operational database DOWN"), ("SEV1", "Operational database DOWN"), ("WARN", "Operational database back")]
    assert f"down since {T0.isoformat()}" in received[2]["body"]
    log = (tmp_path / "health_alerts.log").read_text().splitlines()
    assert len(log) == 3 and "cannot reach the operational database" in log[0]


def test_an_unreachable_channel_is_logged_not_raised(tmp_path):
    from helpers import free_port
    channels = ChannelsResource(webhook_url=f"http://127.0.0.1:{free_port()}/hook", webhook_secret="x",
                                webhook_attempts=1, delivery_attempts=1)
    alerts = DatabaseDownAlerts(tmp_path, channels, ["webhook"])
    assert alerts.down("down", T0) == []
    assert "could not deliver through webhook" in (tmp_path / "health_alerts.log").read_text()
