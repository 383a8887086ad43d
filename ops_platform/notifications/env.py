"""Reading channel settings from the environment: a wrong value stops the code location loading, naming the variable."""

from __future__ import annotations

import os

from ops_platform.settings import ConfigError

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def text_env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, "").strip() or default


def bool_env(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in _TRUE | _FALSE:
        raise ConfigError(f"{name} must be true or false (also 1/0, yes/no, on/off), got {raw!r}")
    return raw in _TRUE


def port_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ConfigError(f"{name} must be a port number from 1 to 65535, got {raw!r}")
    return int(raw)


def list_env(name: str) -> list[str]:
    """A comma-separated list, blanks dropped."""
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]
