"""How tasks retry, declared once and used by name (``@task(name=…, **OUTSIDE_EFFECT)``).

A failed task is retried by Prefect inside the same flow run; a step that moved money or goods is
kept to once by its cache key and the platform's idempotency key, so a retry is always safe.
"""

from __future__ import annotations

from prefect.cache_policies import NONE

from aftersales.domain.rules import InvalidRequest
from aftersales.integrations.platform import PlatformRejected


def no_retry_on_invalid(_task, _run, state) -> bool:
    """Retry outside-world failures; never a request the rulebook or the platform refused (4xx)."""
    return not isinstance(state.data, (InvalidRequest, PlatformRejected))


# A case step that calls the platform or the carrier (a refund, a re-shipment, a case opened
# against the order): short outages and rate limits pass within a minute; a refusal is final. Its
# result is persisted so a resumed run skips it (the caller gives the business cache key).
OUTSIDE_EFFECT = dict(retries=3, retry_delay_seconds=[2, 10, 30], persist_result=True, retry_condition_fn=no_retry_on_invalid)

# A write to our own case database (an event, a closing): only a lock or a dropped connection fails it.
LOCAL_RECORD = dict(retries=3, retry_delay_seconds=2)

# A scheduled read of the platform (the order feed, new reviews): the next schedule reads again, so
# nothing is cached or kept.
SCHEDULED_READ = dict(retries=3, retry_delay_seconds=[5, 30, 60], cache_policy=NONE, persist_result=False)
