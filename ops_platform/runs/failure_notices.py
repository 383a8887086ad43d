"""Seed 003 afterJobExecution's alert: one notification per failed run, its severity from the error category
and the job's failures in a row (framework/error_categories.py `Handling.severity_after`, the one rule):

| category      | severity of the notice                                    |
|---------------|-----------------------------------------------------------|
| transient     | INFO, WARN from the 3rd failure in a row of the same job  |
| auth          | WARN at once                                              |
| validation    | INFO                                                      |
| external_api  | INFO, WARN from the 3rd failure in a row                  |
| database      | INFO, WARN from the 2nd (the one retry failed: persistent)|
| kill_switch   | none: a control refused the run, the audit log has it     |

The dedup key `job_failed:<run id>` makes it one notice per failed run, however often the sensor sees it.
The type `job_failed` has no rate limit: each failure of a streak is told (INFO and WARN go to the digest).
"""

from __future__ import annotations

from ops_platform.framework.error_categories import HANDLING, KILL_SWITCH
from ops_platform.notifications import Notification, Severity


def failure_notice(job_name: str, run_id: str, category: str, failures: int, error: str) -> Notification | None:
    """The notice of a failed run: `failures` (≥ 1) is how many runs of the job failed in a row, this one
    included. None for a refused run (kill switch). Raises KeyError for an unknown category."""
    if category == KILL_SWITCH:
        return None
    handling = HANDLING[category]
    severity = Severity(handling.severity_after(failures))
    retry = {None: "retried with backoff by the retry queue", 0: "not retried", 1: "retried once"}[handling.retries]
    in_a_row = f" ({failures} failures in a row)" if failures > 1 else ""
    return Notification(
        type="job_failed", severity=severity, title=f"{job_name} failed: {category} error{in_a_row}",
        body=f"Run {run_id}: {error[:800]} ({retry}).", dedup_key=f"job_failed:{run_id}",
        meta={"job_name": job_name, "run_id": run_id, "category": category, "failures": failures})
