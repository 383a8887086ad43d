"""The HTTP service (`ops api`): inbound provider webhooks into the events outbox, and authenticated manual
triggers that launch Dagster runs through Dagster's GraphQL API. Starlette app served by uvicorn."""
