"""Seed 002's crons for its caches."""

from ops_platform.framework.schedules import gated_schedule
from ops_platform.jobs.agent_builds import agent_stats_job, build_stats_job, inactive_users_job

agent_stats_schedule = gated_schedule("agent_stats_schedule", agent_stats_job, "*/5 * * * *",
                                      description="Seed 002 computeAgentStats, every 5 minutes.")
build_stats_schedule = gated_schedule("build_stats_schedule", build_stats_job, "0 * * * *",
                                      description="Seed 002 refreshBuildStats, hourly.")
inactive_users_schedule = gated_schedule("inactive_users_schedule", inactive_users_job, "0 1 * * *",
                                         description="Seed 002 markInactiveUsers, daily at 01:00 UTC.")
