"""FinOps (seed 004): AI and infrastructure cost per tenant and day."""
