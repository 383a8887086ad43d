"""The events outbox consumer (seed 001): outgoing webhooks and the email queue."""
