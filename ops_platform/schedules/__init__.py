"""Schedules, one module per domain: each one's crons, made by framework/schedules.gated_schedule."""
