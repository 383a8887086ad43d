"""Seed 002's jobs: the asset jobs its schedules launch, and the stalled-builds job its sensor launches."""

import dagster as dg

from ops_platform.agent_builds.stalled_builds import fail_stalled
from ops_platform.assets.agent_builds import agent_stats_cache, build_stats, inactive_users
from ops_platform.framework.controls import WRITE_JOB, gate_tags
from ops_platform.framework.guard import guard_run
from ops_platform.framework.retries import DEFAULT_RETRY_POLICY
from ops_platform.notifications import NotifierResource
from ops_platform.resources.postgres import PostgresResource

agent_stats_job = dg.define_asset_job("agent_stats_job", selection=[agent_stats_cache],
                                      description="Refreshes the agent stats cache (seed 002).")
build_stats_job = dg.define_asset_job("build_stats_job", selection=[build_stats],
                                      description="Hourly build statistics (seed 002).")
inactive_users_job = dg.define_asset_job("inactive_users_job", selection=[inactive_users],
                                         description="Marks users inactive for 90+ days (seed 002).")


class StalledBuildsConfig(dg.Config):
    build_ids: list[int]


@dg.op(tags=gate_tags(WRITE_JOB), retry_policy=DEFAULT_RETRY_POLICY)
def fail_stalled_builds(
    context: dg.OpExecutionContext, config: StalledBuildsConfig, postgres: PostgresResource, notifier: NotifierResource
) -> dg.Output:
    guard_run(context, postgres)
    with postgres.begin() as conn:
        marked, messages = fail_stalled(conn, config.build_ids)
    statuses = [notifier.send(m) for m in messages]
    context.log.info(f"stalled builds: {marked} marked failed, {len(messages)} notified")
    return dg.Output(None, metadata={"stalled": marked, "notified": statuses.count("sent") + statuses.count("digest"),
                                     "requested": len(config.build_ids)})


@dg.job(tags={"ops/kind": "notification"}, description="Fails stalled builds (seed 002) and notifies once per build.")
def stalled_builds_job():
    fail_stalled_builds()
