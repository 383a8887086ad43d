"""What happens to Dagster runs themselves: each outcome audited, dead workers failed, failure streaks alerted."""
