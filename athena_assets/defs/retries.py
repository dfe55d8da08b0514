"""The retry policy of the assets that call a model server.

A server restarting (a new model, a crash, a deploy) refuses requests for seconds; the resources retry
each request within a budget, and when a whole step still fails that way Dagster runs it again after
5 s, then 10 s (with jitter, so replicas coming back are not hit by every run at once). A bad input is
raised as `dg.Failure(allow_retries=False)`: asking again would only repeat the error.
"""

import dagster as dg

MODEL_RETRY_POLICY = dg.RetryPolicy(
    max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
