"""The retry rule every op shares: exponential backoff with jitter, then the dead-letter table.

Step failures are retried by this policy inside the run; dagster.yaml's run retries cover only
crashed run workers (retry_on_asset_or_op_failure: false), so a step is never retried twice over.
"""

import dagster as dg

DEFAULT_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
