"""platform-sync: the shop platform's refunds move our cases (Taobao/Tmall, ``AFTERSALES_PLATFORM=taobao``).

A buyer applies for a refund at the platform, not with us. Every few minutes one run reads the
refunds changed since the last run (``taobao.refunds.receive.get``, ``tasks/platform_sync.py``) and,
for each change, once:

- a new application opens its case: with the goods sent back, a return (§1.1); refund only, the
  return's refund-only path; the refund id is the case's idempotency key;
- the buyer filled in the return waybill: it answers the case's buyer-shipment wait;
- the buyer cancelled it (or the platform closed it): the case closes as withdrawn;
- the platform acted by itself at its deadline (agreed the return, refunded): the case's wait is
  due now and the deadline sweeper applies its default — which is what the platform did — and the
  trail says ``platform``.

The checkpoint moves only after every change of the window has been applied: a run that fails
half-way reads the same window again, and what it applied already is recognised.
"""

from __future__ import annotations

from collections import Counter

from prefect import flow, get_run_logger

from aftersales.domain.calendar import utcnow
from aftersales.domain.settings import get_settings
from aftersales.flows.deadline_sweeper import deadline_sweeper
from aftersales.tasks.platform_sync import apply_refund_change, read_refund_changes, save_checkpoint


@flow(name="platform-sync")
async def platform_sync() -> dict:
    """Read the refunds changed at the platform and move their cases, each change once."""
    logger = get_run_logger()
    if get_settings().platform != "taobao":
        logger.info("platform-sync: AFTERSALES_PLATFORM is %r: the buyers' refunds are not read from TOP", get_settings().platform)
        return {"skipped": get_settings().platform}
    until = utcnow()
    changes = await read_refund_changes(until)
    counts: Counter = Counter()
    acted = []
    for reading in changes:
        result = await apply_refund_change(reading)
        counts[result["action"]] += 1
        if result["action"] == "platform-acted":
            acted.append(result["case_id"])
    for case_id in acted:  # the wait's default is what the platform did: the sweeper applies it
        await deadline_sweeper(as_of=utcnow(), case_id=case_id)
    if not counts["retry"]:
        save_checkpoint(until)
    logger.info("platform-sync: %d refund changes read: %s", len(changes), dict(counts))
    return {"read": len(changes), **counts}


def deployments(schedule) -> list:
    settings = get_settings()
    return [
        platform_sync.to_deployment(
            name="platform-sync", tags=["ops", "process:return", "platform:taobao"],
            schedules=schedule(settings.platform_sync_cron) if settings.platform == "taobao" else [],
            description="淘宝/天猫退款同步 Reads the refunds changed at Taobao/Tmall (TOP) and opens or moves their return cases, each change once.",
        )
    ]
