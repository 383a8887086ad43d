"""Seed 002 (agent build platform): stats caches, stalled builds, inactive users."""
