"""Resources: Postgres, the warehouse, and (in from_env) how they are built from the environment."""
