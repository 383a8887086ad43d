"""The code location, assembled from the domains' wiring modules rather than listed by hand.

Every module of `assets/`, `jobs/`, `schedules/` and `sensors/` is imported, and each Dagster
definition it holds at module scope (alone, or in a list or tuple) is registered once. A domain adds
a definition by defining it in its wiring module; nothing here changes. Where steps execute is
OPS_EXECUTOR's choice (executor.py): the same code location on one machine, Celery workers or Kubernetes.
"""

import importlib
import pkgutil
from collections.abc import Iterator
from types import ModuleType

import dagster as dg

from ops_platform.settings import current

SETTINGS = current()  # read and validated first: a wrong variable stops the load, named, before anything else

from ops_platform import assets, jobs, schedules, sensors  # noqa: E402 - their schedules read the settings
from ops_platform.build import build_resources  # noqa: E402
from ops_platform.executor import chosen_executor  # noqa: E402

WIRING = (assets, jobs, schedules, sensors)
# Dagster exports no name for the class of define_asset_job's result; take it from a result.
ASSET_JOB = type(dg.define_asset_job("asset_job_kind", selection=dg.AssetSelection.all()))
# Order matters: an asset check definition is also an AssetsDefinition.
KINDS = (
    (dg.AssetChecksDefinition, "asset_checks"),
    (dg.AssetsDefinition, "assets"),
    (dg.AssetSpec, "assets"),
    (dg.JobDefinition, "jobs"),
    (ASSET_JOB, "jobs"),
    (dg.ScheduleDefinition, "schedules"),
    (dg.SensorDefinition, "sensors"),
)


def wiring_modules(packages: tuple[ModuleType, ...] = WIRING) -> Iterator[ModuleType]:
    """Each module of the wiring packages, in name order."""
    for package in packages:
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            yield importlib.import_module(f"{package.__name__}.{info.name}")


def kind_of(value: object) -> str | None:
    return next((kind for cls, kind in KINDS if isinstance(value, cls)), None)


def collect(modules) -> dict[str, list]:
    """{"assets": [...], "jobs": [...], ...}: each definition once, however many modules import it."""
    found: dict[str, list] = {kind: [] for _, kind in KINDS}
    seen: set[int] = set()
    for module in modules:
        for value in vars(module).values():
            items = value if type(value) in (list, tuple) else [value]
            for item in items:
                kind = kind_of(item)
                if kind and id(item) not in seen:
                    seen.add(id(item))
                    found[kind].append(item)
    return found


defs = dg.Definitions(**collect(wiring_modules()), resources=build_resources(SETTINGS),
                      executor=chosen_executor(SETTINGS))
