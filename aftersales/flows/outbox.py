"""Outbox retry: deliver notifications that could not be sent when their case event happened.

A channel that is down delays a message, never loses it: rows stay pending with a back-off, and
this scheduled flow delivers them in batches.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from aftersales.domain.settings import get_settings
from aftersales.integrations.notify import deliver_pending


@flow(name="outbox-retry")
def outbox_retry(batch_size: int = 200, max_batches: int = 50) -> dict:
    logger = get_run_logger()
    totals = {"sent": 0, "failed": 0, "dead": 0}
    for _ in range(max_batches):
        report = deliver_pending(limit=batch_size)
        for name in totals:
            totals[name] += getattr(report, name)
        if report.sent + report.failed + report.dead < batch_size:
            break
    logger.info("outbox: %(sent)d sent, %(failed)d postponed, %(dead)d dead", totals)
    return totals


def deployments(schedule) -> list:
    return [
        outbox_retry.to_deployment(
            name="outbox-retry", tags=["ops"], schedules=schedule(get_settings().outbox_retry_cron),
            description="通知重发 Delivers notifications whose channel was down.",
        )
    ]
