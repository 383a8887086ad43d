"""Seed 003 data sources: Notion, n8n, HubSpot and the chat logs, synced into Postgres under shared rate limits."""
