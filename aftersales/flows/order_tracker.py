"""Post-delivery order tracking (订单跟踪) — rulebook §1.9 (004 fig. 5.9).

Refunds and disputes arise in the 15 days after "transaction success"; orders older than that
rarely produce them. One scheduled run sweeps every watched order — from shipment to 15 days after
the signature — in batches, polling the carrier aggregator with an async client under bounded
concurrency (never one flow run or task run per order), and acts on each finding once:

- out of area / blind area / stranded (疑难 207, 208) → an express out-of-area case (§1.4);
- damaged in transit (209) → a logistics complaint (§1.10);
- refused at the door (拒签 14) → a return for the refused parcel (§1.1);
- signed by someone else (303), overdue, no update for days → a proactive message to the buyer.

Push first (``tasks/carrier_push.py``): after the sweep, every watched waybill not yet subscribed
is subscribed to the carrier aggregator's pushes once (after the sweep, so a new order's first
look is not held up by a push that may take hours, and a push never races its first poll). A
push applies the same findings through the same steps and moves the waybill's next poll to when
its pushes have gone quiet (``AFTERSALES_TRACKER_PUSH_QUIET_HOURS``): the sweep then polls only
those, and the orders whose subscription failed or was given up (``abort``).
"""

from __future__ import annotations

from collections import Counter

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from aftersales.domain.calendar import utcnow
from aftersales.domain.settings import get_settings
from aftersales.tasks.carrier_push import poll_quiet_return_parcels, subscribe_batch
from aftersales.tasks.tracking import sync_order_feed, track_batch


@flow(name="order-tracker")
async def order_tracker(batch_size: int | None = None, concurrency: int | None = None) -> dict:
    """Sweep the watched orders once (§1.9)."""
    settings = get_settings()
    logger = get_run_logger()
    added = await sync_order_feed()
    totals: Counter = Counter(watch_list_added=added)
    as_of, after = utcnow(), ""
    while after is not None:
        result = await track_batch(after, batch_size or settings.tracker_batch_size, concurrency or settings.tracker_concurrency, as_of)
        totals.update(result["counts"])
        after = result["last"]
    after = "" if settings.carrier_push else None
    while after is not None:
        result = await subscribe_batch(after, batch_size or settings.tracker_batch_size, concurrency or settings.tracker_concurrency)
        totals.update(result["counts"])
        after = result["last"]
    if settings.carrier_push:  # the return parcels the provider stopped pushing (or never did)
        totals.update(await poll_quiet_return_parcels(batch_size or settings.tracker_batch_size,
                                                      concurrency or settings.tracker_concurrency))
    summary = dict(totals)
    logger.info("order tracker: %s", summary)
    await create_markdown_artifact(
        key="order-tracker", description="15-day tracker sweep",
        markdown="### 订单跟踪 Order tracking sweep\n\n" + "\n".join(f"- **{name}**: {count}" for name, count in sorted(summary.items())),
    )
    return summary


def deployments(schedule) -> list:
    return [
        order_tracker.to_deployment(
            name="order-tracker", tags=["ops", "process:tracking"], schedules=schedule(get_settings().tracker_cron),
            description="§1.9 订单跟踪 Sweeps every order in its 15 days after the signature; opens out-of-area, complaint and refusal cases; contacts buyers.",
        )
    ]
