"""Resources: the operational database (Postgres) and the analytics warehouse (ClickHouse or chDB)."""
