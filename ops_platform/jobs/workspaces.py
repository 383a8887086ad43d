"""Seed 000 jobs: guest organisation cleanup, daily insights."""

from datetime import UTC, datetime

import dagster as dg

from ops_platform.assets.workspaces import insights
from ops_platform.framework.controls import WRITE_JOB, gate_tags
from ops_platform.framework.guard import guard_run
from ops_platform.framework.retries import DEFAULT_RETRY_POLICY
from ops_platform.resources.postgres import PostgresResource
from ops_platform.workspaces.guests import delete_expired_guests


@dg.op(tags=gate_tags(WRITE_JOB), retry_policy=DEFAULT_RETRY_POLICY)
def delete_expired_guest_organisations(context: dg.OpExecutionContext, postgres: PostgresResource) -> dg.Output:
    guard_run(context, postgres)
    with postgres.begin() as conn:
        result = delete_expired_guests(conn, datetime.now(UTC))
    context.log.info(f"guest organisations deleted: {result['deleted']} (expired at or before {result['cutoff']})")
    return dg.Output(None, metadata={"deleted": result["deleted"], "cutoff": result["cutoff"],
                                     "organisation_ids": dg.MetadataValue.json(result["organisation_ids"])})


@dg.job(description="Seed 000 cleanup-expired-orgs: guest organisations past their 7-day TTL are deleted, "
                    "with everything that belongs to them (foreign-key cascade).")
def guest_cleanup_job():
    delete_expired_guest_organisations()


insights_job = dg.define_asset_job("insights_job", selection=[insights],
                                   description="Seed 000 daily insights per workspace with an active connection.")
