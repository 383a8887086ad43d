"""Monitoring (seeds 003 and 004): incidents, watchers, HTTP probes for synthetics and the health monitor."""
