"""Seed 000 analytics workspaces ("Canvas"): organisations and guest expiry, workspaces, connections, insights."""
