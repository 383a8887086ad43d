"""Seed 004 synthetic checks: which endpoints to probe, from the environment and from Postgres.

`OPS_SYNTHETIC_CHECKS` holds the deployed checks as a JSON list, e.g.
`[{"name": "tenant_login", "url": "https://app.example.com/login", "expect_status": 200, "max_latency_ms": 2000}]`
(expect_status defaults to 200, max_latency_ms to 3000). It is validated when the code location
loads. Rows of `synthetic_checks` add checks without a deploy; on a name in both, the environment wins.
"""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sqlalchemy import text

from ops_platform.monitoring.probes import Probe
from ops_platform.resources.postgres import PostgresResource
from ops_platform.settings import ConfigError, Settings, current

CHECKS_VAR = "OPS_SYNTHETIC_CHECKS"
DEFAULT_MAX_LATENCY_MS = 3000


class SyntheticCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[\w.:-]+$")
    url: str = Field(pattern=r"^https?://[^\s/]+")
    expect_status: int = Field(default=200, ge=100, le=599)
    max_latency_ms: int = Field(default=DEFAULT_MAX_LATENCY_MS, gt=0)

    def probe(self) -> Probe:
        return Probe(self.name, self.url, self.expect_status, self.max_latency_ms)


_CHECKS = TypeAdapter(list[SyntheticCheck])


def deployed_checks(settings: Settings | None = None) -> list[Probe]:
    """The checks in OPS_SYNTHETIC_CHECKS; a ConfigError naming the entry and field when one is wrong."""
    try:
        checks = _CHECKS.validate_python((settings or current()).synthetic_checks)
    except ValidationError as err:
        # Field paths and reasons only: the input may hold a URL with a token in it.
        problems = "; ".join(f"{CHECKS_VAR}{_where(e['loc'])}: {e['msg']}"
                             for e in err.errors(include_input=False, include_url=False))
        raise ConfigError(f"invalid synthetic checks: {problems}. Each check is "
                          "{name, url (http/https), expect_status? (100-599), max_latency_ms? (> 0)}") from None
    repeated = sorted(name for name, n in Counter(c.name for c in checks).items() if n > 1)
    if repeated:
        raise ConfigError(f"{CHECKS_VAR} names a check more than once: {', '.join(repeated)}")
    return [c.probe() for c in checks]


def _where(loc: tuple) -> str:
    index, *fields = loc
    return f"[{index}]" + "".join(f".{f}" for f in fields)


def configured_checks(postgres: PostgresResource, settings: Settings | None = None) -> list[Probe]:
    """The deployed checks (settings), then the enabled rows of synthetic_checks not named there."""
    deployed = deployed_checks(settings)
    names = [p.name for p in deployed]
    with postgres.begin() as conn:
        rows = conn.execute(text(
            "SELECT name, url, expect_status, max_latency_ms FROM synthetic_checks"
            " WHERE enabled AND NOT (name = ANY(:names)) ORDER BY name"), {"names": names}).all()
    return deployed + [Probe(r.name, r.url, r.expect_status, r.max_latency_ms) for r in rows]
