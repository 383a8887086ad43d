"""Every outgoing call, one rule: which failures are worth retrying, the wait the other side asks for,
the retry schedule (on tenacity), and DeliveryError, which says whether the failure is retryable."""
