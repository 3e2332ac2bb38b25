"""The 15-day tracker's steps (§1.9): keep the watch list in step with the platform, poll a batch
of parcels under bounded concurrency, and act on what the tracking says — each finding once."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from prefect import task
from prefect.cache_policies import NONE
from sqlmodel import select

from aftersales.domain.calendar import utcnow
from aftersales.domain.details import TrackingDetails, stored
from aftersales.domain.models import Case, Checkpoint, Process, TrackedOrder
from aftersales.domain.outcomes import Outcome
from aftersales.domain.rules import InvalidRequest
from aftersales.domain.settings import get_settings
from aftersales.domain.tracking_rules import Action, Finding, ParcelView, assess
from aftersales.intake.complaint import open_complaint
from aftersales.intake.out_of_area import open_out_of_area
from aftersales.intake.returns import open_return
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope
from aftersales.integrations.platform import CarrierClient, CarrierError, NoTrackingRecord, Order, PlatformClient, TrackingResult, shop_platform
from aftersales.tasks.notify import notify_in_session, send_pending
from aftersales.tasks.policy import SCHEDULED_READ

log = logging.getLogger(__name__)
FEED = "order-feed"
FEED_OVERLAP = timedelta(minutes=10)  # read again this much before the checkpoint: late commits, clock steps
STOP = "stop"  # the key of the stop-watching finding (tracking_rules.assess)


# --- the watch list -------------------------------------------------------------------------------


@task(name="sync-order-feed", **SCHEDULED_READ)
async def sync_order_feed(page_size: int = 500) -> int:
    """Add shipped orders to the watch list from the platform's incremental feed, page by page.

    The feed is read by the time an order was last created or changed at the platform, from the
    newest such time seen before (the checkpoint) less an overlap: an order that reaches the platform
    late, whatever its shipping time, is changed after the checkpoint and so read. What the overlap
    reads again is already on the watch list and skipped by order id."""
    rules = get_settings().rules
    now = utcnow()
    horizon = now - timedelta(days=rules.tracking_watch_days + 15)  # shipped before that: out of reach
    checkpoint = _feed_checkpoint()
    modified_since = max(horizon, checkpoint - FEED_OVERLAP) if checkpoint else horizon
    added, after, newest = 0, None, checkpoint
    async with shop_platform() as platform:
        while True:
            page = await platform.list_shipped_orders(horizon, modified_since=modified_since, after=after, limit=page_size)
            added += _watch(page.orders, now, rules.tracking_watch_days)
            changed = [o.modified_at for o in page.orders if o.modified_at is not None]
            if changed and (newest is None or max(changed) > newest):
                # everything changed before this page's last order has been read: a retry resumes here
                newest = max(changed)
                _save_checkpoint(FEED, newest.isoformat())
            if page.next is None:
                return added
            after = page.next


def _feed_checkpoint() -> datetime | None:
    """The newest platform change time read so far; None before the first sync. A checkpoint
    of the old shipped-time cursor (``shipped_at|order_id``) counts as none: the first sync then
    reads the whole horizon again and picks up the orders that cursor skipped."""
    with session_scope() as session:
        checkpoint = session.get(Checkpoint, FEED)
    if checkpoint is None or "|" in checkpoint.value:
        return None
    try:
        moment = datetime.fromisoformat(checkpoint.value)
    except ValueError:
        log.warning("tracker: unreadable order-feed checkpoint %r: reading the whole horizon", checkpoint.value)
        return None
    return moment if moment.tzinfo is not None else None


def past_watch_window(signed_at: datetime | None, now: datetime, watch_days: int) -> bool:
    """§1.9: an order is watched until ``watch_days`` after its signature, not a look longer."""
    return signed_at is not None and now - signed_at > timedelta(days=watch_days)


def _watch(orders: list[Order], now: datetime, watch_days: int) -> int:
    """Put the orders not yet watched on the watch list; one signed more than ``watch_days`` ago is
    not added (nothing more is expected of it, and the carrier is not asked about it)."""
    if not orders:
        return 0
    added = 0
    with session_scope() as session:
        known = set(session.exec(select(TrackedOrder.order_id).where(TrackedOrder.order_id.in_([o.order_id for o in orders]))))
        for order in orders:
            if order.order_id in known or not order.waybill or not order.carrier or order.shipped_at is None:
                continue
            if past_watch_window(order.delivered_at or order.transaction_success_at, now, watch_days):
                continue
            session.add(TrackedOrder(order_id=order.order_id, customer_id=order.customer.customer_id, carrier=order.carrier,
                                     waybill=order.waybill, phone_tail=(order.customer.phone or "")[-4:], shipped_at=order.shipped_at,
                                     signed_at=order.delivered_at))
            known.add(order.order_id)
            added += 1
    return added


def _save_checkpoint(name: str, value: str) -> None:
    with session_scope() as session:
        row = session.get(Checkpoint, name) or Checkpoint(name=name, value=value)
        row.value, row.updated_at = value, utcnow()
        session.add(row)


def due_orders(after: str, limit: int, now: datetime) -> list[dict]:
    """The next page of watched orders due for a look (keyset paging: flat memory however many)."""
    with session_scope() as session:
        rows = session.exec(
            select(TrackedOrder).where(TrackedOrder.watching == True, TrackedOrder.next_check_at <= now, TrackedOrder.order_id > after)  # noqa: E712
            .order_by(TrackedOrder.order_id).limit(limit)
        ).all()
        return [row.model_dump() for row in rows]


# --- one batch ------------------------------------------------------------------------------------


@task(name="track-batch", retries=2, retry_delay_seconds=10, cache_policy=NONE, persist_result=False)
async def track_batch(after: str, batch_size: int, concurrency: int, as_of: datetime) -> dict:
    """Poll the next batch of due parcels after ``after`` (bounded concurrency), act on new
    findings, record the look. Returns the counts and the last order id (None when done).

    The task loads its own rows: orders passed as parameters would be kept by the flow run for
    its whole length, and memory would grow with the number of orders."""
    batch = due_orders(after, batch_size, as_of)
    if not batch:
        return {"counts": {}, "last": None}
    settings = get_settings()
    now = utcnow()
    limit = asyncio.Semaphore(concurrency)
    counts: Counter = Counter()
    updates: list[dict[str, Any]] = []
    live: list[dict] = []
    for row in batch:
        if past_watch_window(row["signed_at"], now, settings.rules.tracking_watch_days):
            # its window is over (signed more than tracking_watch_days ago): off the list, no query
            counts[Action.STOP_WATCHING.value] += 1
            acted = row["acted_on"] if STOP in row["acted_on"] else [*row["acted_on"], STOP]
            updates.append({"order_id": row["order_id"], "watching": False, "acted_on": acted})
        else:
            live.append(row)

    async with CarrierClient() as carrier:
        async def look(row: dict) -> tuple[dict, TrackingResult | None, str]:
            async with limit:
                try:
                    return row, await carrier.query(row["carrier"], row["waybill"], phone=row["phone_tail"] or None), ""
                except NoTrackingRecord:
                    return row, None, "no_record"
                except CarrierError as exc:
                    return row, None, f"carrier_error: {exc}"

        results = await asyncio.gather(*(look(row) for row in live))

    for row, tracking, error in results:
        counts["polled"] += 1
        if tracking is None:
            counts["no_record" if error == "no_record" else "carrier_errors"] += 1
            updates.append({"order_id": row["order_id"], "last_checked_at": now, "next_check_at": now + _interval(settings, None, row)})
            continue
        view = parcel_view(tracking)
        findings = new_findings(row, view, now, settings)
        acted = list(row["acted_on"])
        for finding in findings:
            if await act(row, finding):
                acted.append(finding.key)
                counts[finding.action.value] += 1
        updates.append({
            "order_id": row["order_id"], "last_checked_at": now, "next_check_at": now + _interval(settings, view, row),
            "last_state": view.state, "last_status_code": view.codes[0] if view.codes else "", "last_event_at": view.last_event_at,
            "signed_at": view.signed_at or row["signed_at"], "acted_on": acted,
            "watching": not any(f.action is Action.STOP_WATCHING for f in findings),
        })
    _record_looks(updates)
    return {"counts": dict(counts), "last": batch[-1]["order_id"]}


# a subscription that pushes, or is about to: the tracker polls it only once it has gone quiet
PUSHING = {"subscribed", "polling", "updateall", "shutdown"}


def _interval(settings, view: ParcelView | None, row: dict) -> timedelta:
    # never faster than the aggregator allows; a signed parcel needs only a daily look
    minimum = timedelta(minutes=settings.tracker_min_interval_minutes)
    if row.get("push_status") in PUSHING:
        minimum = max(minimum, timedelta(hours=settings.tracker_push_quiet_hours))
    if view is not None and view.signed_at is not None:
        return max(minimum, timedelta(hours=12))
    return minimum


def new_findings(row: dict, view: ParcelView, now: datetime, settings) -> list[Finding]:
    """What the parcel's tracking asks of the shop (§1.9) that has not been acted on for this
    order: the one judgement a poll and a push (``carrier_push``) both go through."""
    return [f for f in assess(view, now, settings.rules.tracking_watch_days, settings.rules.tracking_no_update_days)
            if f.key not in row["acted_on"]]


def parcel_view(tracking: TrackingResult) -> ParcelView:
    signed = next((e.time for e in tracking.events if (e.status_code or "").startswith("3")), None)
    return ParcelView(
        state=tracking.state, signed_at=signed, last_event_at=tracking.latest.time if tracking.latest else None,
        codes=tuple(e.status_code or "" for e in tracking.events), contexts=tuple(e.context for e in tracking.events),
    )


def _record_looks(updates: list[dict[str, Any]]) -> None:
    with session_scope() as session:
        for values in updates:
            row = session.get(TrackedOrder, values["order_id"])
            for name, value in values.items():
                setattr(row, name, value)
            session.add(row)


# --- acting on a finding --------------------------------------------------------------------------


async def act(row: dict, finding: Finding) -> bool:
    """Carry out one finding; True when it is done (and must not be repeated)."""
    if finding.action is Action.STOP_WATCHING:
        return True
    try:
        if finding.action is Action.CONTACT_BUYER:
            await contact_buyer(row, finding)
        else:
            await open_case_for(row, finding)
    except InvalidRequest as exc:
        # the receiving process refuses it (e.g. the order changed): record it and move on
        log.warning("tracker: %s for %s not opened: %s", finding.action.value, row["order_id"], exc.message)
    return True


async def open_case_for(row: dict, finding: Finding) -> None:
    order_id = row["order_id"]
    if finding.action is Action.OPEN_REFUSAL_RETURN:
        async with PlatformClient() as platform:
            order = await platform.get_order(order_id)
        await open_return(order_id, str(order.paid_amount), f"物流显示拒收 carrier reports a refusal: {finding.detail}",
                          "refused_at_delivery", requested_by="system")
    elif finding.action is Action.OPEN_OUT_OF_AREA:
        await open_out_of_area(order_id, finding.problem, requested_by="system", note=f"订单跟踪发现 found by the 15-day tracker: {finding.detail}")
    elif finding.action is Action.OPEN_COMPLAINT:
        async with PlatformClient() as platform:
            order = await platform.get_order(order_id)
        # a logistics complaint (2xxx) raised for the buyer before they have to raise it themselves
        await open_complaint(
            channel="tracking", category=DAMAGED_IN_TRANSIT, level=2, customer_name=order.customer.name,
            contact=order.customer.phone or order.customer.email, object=f"包裹 parcel {row['carrier']} {row['waybill']}",
            cause=finding.detail, demand="核实破损，补发或赔偿 check the damage; re-ship or compensate", order_id=order_id,
            ticket=f"{order_id}-tracking-{finding.problem}", requested_by="system",
        )


DAMAGED_IN_TRANSIT = "2002"  # complaint category 2xxx logistics (002 §2.3.2)


async def contact_buyer(row: dict, finding: Finding) -> None:
    """§1.9: contact the buyer early. Recorded as a small tracking case so it has an audit trail."""
    case_id = f"tracking-{row['order_id']}-{finding.key.split(':', 1)[1]}"
    async with PlatformClient() as platform:
        order = await platform.get_order(row["order_id"])
    with session_scope() as session:
        case, created = case_store.create_case(
            session, id=case_id, process=Process.TRACKING, order_id=order.order_id, customer_id=order.customer.customer_id,
            requested_by="system", reason=finding.detail,
            details=stored(TrackingDetails(customer=order.customer.model_dump(mode="json"), finding=finding.problem,
                                           carrier=row["carrier"], waybill=row["waybill"])),
        )
        if created:
            case_store.record_event(session, case_id, "contacted", "system", "tracking.buyer_contacted", {"finding": finding.problem, "detail": finding.detail})
            notify_in_session(session, case, "contacted", "tracking_buyer_contact", staff_tags=["logistics"], buyer=True,
                              finding=finding.detail, carrier=row["carrier"], waybill=row["waybill"])
            case_store.close_case(session, case_id, Outcome.BUYER_CONTACTED)
    send_pending(case_id)


def is_case(case_id: str) -> bool:
    with session_scope() as session:
        return session.get(Case, case_id) is not None
