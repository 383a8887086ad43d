"""Seed 003 periodic scan: patterns over the last 24 hours, proposals from the confident ones, incident upkeep."""
