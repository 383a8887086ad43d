"""Seed 004: campaigns, their lifecycle and their usage."""
