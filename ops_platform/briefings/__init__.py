"""Seed 003's daily briefings: the morning call (06:00) and the daily digest (08:00), Central time."""
