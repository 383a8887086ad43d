"""One notification layer for every sender: policy (dedup, routing, quiet hours) in front of channels."""

from ops_platform.notifications.message import Notification, Severity
from ops_platform.notifications.resource import NotifierResource

__all__ = ["Notification", "NotifierResource", "Severity"]
