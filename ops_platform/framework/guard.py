"""Where controls meet Dagster: the tick gate for schedules and sensors, the run guard for steps."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from ops_platform.framework.audit import record
from ops_platform.framework.controls import gates_from_tags, read_controls
from ops_platform.resources.postgres import PostgresResource

REFUSED_BY = "refused_by"  # failure metadata marking a refusal: a decision, not work to retry or dead-letter


def tick_gate(postgres: PostgresResource, name: str, gates: tuple[str, ...], at: datetime | None = None) -> dg.SkipReason | None:
    """None when `name` may launch work now; else a SkipReason naming the control (and audited)."""
    with postgres.begin() as conn:
        reason = read_controls(conn).blocked_by(gates, at or datetime.now(UTC))
        if reason is None:
            return None
        record(conn, action=name, action_type="skip", success=False, error=reason)
    return dg.SkipReason(f"{name} skipped: {reason}")


def guard_run(context: dg.OpExecutionContext | dg.AssetExecutionContext, postgres: PostgresResource) -> None:
    """First line of every step: refuse, clearly and on the record, when a control says no.

    The gates come from the step's op tags, so a run launched by hand from the UI obeys exactly
    what the schedule or sensor would have.
    """
    op_context = context.op_execution_context if isinstance(context, dg.AssetExecutionContext) else context
    gates = gates_from_tags(op_context.op_def.tags)
    with postgres.begin() as conn:
        controls = read_controls(conn)
        reason = controls.blocked_by(gates)
        if reason is None:
            return
        what = launched(op_context)
        record(conn, action=what, action_type="refusal", success=False, run_id=context.run.run_id, error=reason)
    raise dg.Failure(
        description=f"Refused to run {what}: {reason}. To allow it: {controls.how_to_fix(reason)}.",
        metadata={REFUSED_BY: reason},
        allow_retries=False,
    )


def launched(context: dg.OpExecutionContext) -> str:
    """What a person launched, in their words: the job's name, or the assets when the UI's "Materialize"
    ran them in Dagster's implicit asset job (named `__ASSET_JOB`, which means nothing to them)."""
    name = context.run.job_name
    if name.startswith("__") and context.has_assets_def:
        return ", ".join(sorted(key.to_user_string() for key in context.selected_asset_keys))
    return name
