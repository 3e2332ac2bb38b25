"""Carrier push first (Kuaidi100 快递信息推送服务): subscribe each outbound and return waybill once,
apply the pushes the provider sends, and let the tracker poll only what has gone quiet.

A push runs through the same steps as a poll (``tracking.parcel_view`` → ``assess`` → ``act``),
so it finds and does the same things; what it acts on is claimed in ``acted_on`` before it acts,
under the row's lock, so a repeated or concurrent push acts nothing twice. A push whose newest
event is older than the track already applied (pushes are retried and can overtake each other)
changes nothing: newest track wins.

The receiver (``api/app.py``) has checked the push's signature before anything here runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from prefect import task
from prefect.cache_policies import NONE
from sqlalchemy import or_
from sqlmodel import select

from aftersales.approvals.resume import ResumeRefused, resume_wait
from aftersales.domain.calendar import utcnow
from aftersales.domain.masking import mask_text
from aftersales.domain.models import Case, CaseStatus, PushSubscription, ReturnParcel, TrackedOrder, Wait, WaitStatus
from aftersales.domain.settings import Settings, get_settings
from aftersales.domain.tracking_rules import Action
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope
from aftersales.integrations.platform import CarrierClient, CarrierError, CarrierPush
from aftersales.tasks.cases import per_case
from aftersales.tasks.policy import OUTSIDE_EFFECT
from aftersales.tasks.tracking import act, new_findings, parcel_view

log = logging.getLogger(__name__)
RECEIPT = "receipt"  # the acted_on key of a return parcel whose signature answered the receipt wait
POLLED = "polled"  # a return parcel's push_status once the tracker polls it in the pushes' stead
NO_RECORD_YET = "3天"  # Kuaidi100's abort "3天查询无记录": no track for 3 days, subscribe again later


class PushRejected(Exception):
    """A signed push we cannot apply; ``status`` is the HTTP status the receiver answers with
    (404 unknown, 409 another waybill, 503 try again later: the provider retries)."""

    def __init__(self, status: int, message: str):
        self.status, self.message = status, message
        super().__init__(message)


@dataclass(frozen=True)
class Applied:
    """What one push did: ``outcome`` applied / older (out of order: nothing changed) / abort."""

    outcome: str
    acted: tuple[str, ...] = ()


def callback_url(settings: Settings, **target: str) -> str:
    """Our push address for one waybill: the callback carries whose it is (``?order=`` / ``?case=``)."""
    base = settings.carrier_callback_url
    return f"{base}{'&' if '?' in base else '?'}{urlencode(target)}"


# --- subscribing ----------------------------------------------------------------------------------


def _subscribed(row: PushSubscription, answer: str | None, error: CarrierError | None, now: datetime) -> None:
    row.subscriptions += 1
    row.resubscribe_at = None
    if error is None:
        row.subscribed_at, row.push_status, row.push_note = now, "subscribed", "" if answer == "subscribed" else "重复订阅 already subscribed"
    else:
        row.push_status, row.push_note = "failed", str(error)[:200]


def to_subscribe(after: str, limit: int, now: datetime, settings: Settings) -> list[TrackedOrder]:
    """Watched orders that need a subscription: never subscribed, or aborted with "no record yet"
    and due again, within the provider's limit per waybill (keyset paging)."""
    with session_scope() as session:
        rows = session.exec(
            select(TrackedOrder).where(
                TrackedOrder.watching == True, TrackedOrder.order_id > after,  # noqa: E712
                TrackedOrder.subscriptions < settings.carrier_subscribe_limit,
                or_(TrackedOrder.push_status.in_(["", "failed"]),
                    (TrackedOrder.push_status == "abort") & (TrackedOrder.resubscribe_at != None) & (TrackedOrder.resubscribe_at <= now)),  # noqa: E711
            ).order_by(TrackedOrder.order_id).limit(limit)
        ).all()
        for row in rows:
            session.expunge(row)
        return list(rows)


@task(name="subscribe-batch", retries=2, retry_delay_seconds=10, cache_policy=NONE, persist_result=False)
async def subscribe_batch(after: str, batch_size: int, concurrency: int) -> dict:
    """Subscribe the next batch of watched waybills to pushes (bounded concurrency). Returns the
    counts and the last order id (None when done). A failed subscription is noted on the row and
    tried again at the next sweep (counted against the limit); meanwhile the waybill is polled."""
    settings = get_settings()
    now = utcnow()
    rows = to_subscribe(after, batch_size, now, settings)
    if not rows:
        return {"counts": {}, "last": None}
    limit = asyncio.Semaphore(concurrency)
    salt = settings.carrier_push_salt

    async with CarrierClient() as carrier:
        async def one(row: TrackedOrder) -> tuple[TrackedOrder, str | None, CarrierError | None]:
            async with limit:
                try:
                    answer = await carrier.subscribe(row.carrier, row.waybill, callback_url=callback_url(settings, order=row.order_id),
                                                     salt=salt, phone=row.phone_tail or None)
                    return row, answer, None
                except CarrierError as exc:
                    return row, None, exc

        results = await asyncio.gather(*(one(row) for row in rows))
    counts: Counter = Counter()
    with session_scope() as session:
        for row, answer, error in results:
            stored = session.get(TrackedOrder, row.order_id)
            _subscribed(stored, answer, error, now)
            session.add(stored)
            counts["subscribed" if error is None else "subscribe_failed"] += 1
    return {"counts": dict(counts), "last": rows[-1].order_id}


@task(name="subscribe-return-parcel", cache_key_fn=per_case("return-parcel-subscription"), **OUTSIDE_EFFECT)
async def subscribe_return_parcel(case_id: str, order_id: str, carrier: str, waybill: str, receipt_step: str) -> str:
    """§1.1 step 4: the buyer's return waybill is subscribed once, so the carrier's signature at our
    warehouse can answer the receipt wait (step 5). A failed subscription does not hold the case up:
    the warehouse confirms by hand as before, and the failure is in the trail."""
    settings = get_settings()
    if not settings.carrier_push:
        return "off"
    now = utcnow()
    with session_scope() as session:
        # the row first: the provider may push before the subscription's answer is back
        if session.get(ReturnParcel, case_id) is None:
            session.add(ReturnParcel(case_id=case_id, order_id=order_id, carrier=carrier, waybill=waybill, receipt_step=receipt_step))
    answer, error = None, None
    try:
        async with CarrierClient() as client:
            answer = await client.subscribe(carrier, waybill, callback_url=callback_url(settings, case=case_id), salt=settings.carrier_push_salt)
    except CarrierError as exc:
        error = exc
    with session_scope() as session:
        row = session.get(ReturnParcel, case_id)
        _subscribed(row, answer, error, now)
        session.add(row)
        case_store.record_event(session, case_id, "return-parcel-subscribed", "system",
                                "parcel.subscribed" if error is None else "parcel.subscribe_failed",
                                {"carrier": carrier, "waybill": waybill, "answer": answer, "error": str(error) if error else None})
    if error is not None:
        log.warning("return parcel %s %s of %s not subscribed: %s", carrier, waybill, case_id, error)
    return answer or "failed"


# --- applying a push ------------------------------------------------------------------------------


def _check_waybill(row: PushSubscription, push: CarrierPush, waybill: str, whose: str) -> None:
    if push.tracking is not None and push.tracking.waybill != waybill:
        raise PushRejected(409, f"push for waybill {push.tracking.waybill} does not belong to {whose} (waybill {waybill})")


def _common(row, push: CarrierPush, now: datetime, settings: Settings) -> None:
    """What every push records: that it came, its status, and a carrier-code correction (comNew)."""
    row.last_push_at = now
    if push.com_new and push.com_new != row.carrier:
        row.carrier_was, row.carrier = row.carrier, push.com_new  # later polls ask with the right code
    if push.status == "abort":
        row.push_status, row.push_note = "abort", push.message
        # "no record for 3 days": subscribe again after the provider's wait; "no change for 60 days"
        # (or any other reason): the subscription is over, polling carries on alone
        row.resubscribe_at = now + timedelta(hours=settings.carrier_resubscribe_hours) if NO_RECORD_YET in push.message else None
    elif not _older(row, push):  # an older push says nothing about the subscription now
        row.push_status, row.push_note = push.status, ""


def _older(row, push: CarrierPush) -> bool:
    newest = push.newest_event_at
    return newest is not None and row.last_event_at is not None and newest < row.last_event_at


async def apply_order_push(order_id: str, push: CarrierPush, now: datetime | None = None) -> Applied:
    """A push for a watched order: the same findings as a poll, each acted on once."""
    settings = get_settings()
    now = now or utcnow()
    with session_scope() as session:
        row = session.exec(select(TrackedOrder).where(TrackedOrder.order_id == order_id).with_for_update()).first()
        if row is None:
            raise PushRejected(404, f"order {order_id} is not on the watch list")
        _check_waybill(row, push, row.waybill, f"order {order_id}")
        _common(row, push, now, settings)
        minimum = timedelta(minutes=settings.tracker_min_interval_minutes)
        if push.status == "abort":
            # the provider stopped: the tracker polls it again (never sooner than the aggregator allows)
            row.next_check_at = max(now, (row.last_checked_at or now) + minimum) if row.last_checked_at else now
            session.add(row)
            return Applied("abort")
        if push.tracking is None or _older(row, push):
            session.add(row)
            return Applied("older" if push.tracking is not None else "applied")
        view = parcel_view(push.tracking)
        snapshot = row.model_dump()
        findings = new_findings(snapshot, view, now, settings)
        row.acted_on = [*row.acted_on, *(f.key for f in findings)]  # claimed before acting: a repeat finds them
        row.last_state, row.last_status_code, row.last_event_at = view.state, view.codes[0] if view.codes else "", view.last_event_at
        row.signed_at = view.signed_at or row.signed_at
        if any(f.action is Action.STOP_WATCHING for f in findings):
            row.watching = False
        row.next_check_at = next_look_after_push(push, row.signed_at, now, settings)
        session.add(row)
    acted = []
    for finding in findings:
        try:
            await act(snapshot, finding)
        except Exception:
            _unclaim(TrackedOrder, order_id, [f.key for f in findings if f.key not in acted])
            raise
        acted.append(finding.key)
    return Applied("applied", tuple(acted))


def next_look_after_push(push: CarrierPush, signed_at: datetime | None, now: datetime, settings: Settings) -> datetime:
    """When the tracker polls a waybill that has just pushed: once it has gone quiet. A finished
    track (``shutdown``, signed) gets no more pushes and needs no more queries: its next look is
    the end of its §1.9 window, which takes it off the list without asking the carrier."""
    if push.status == "shutdown" and signed_at is not None:
        return signed_at + timedelta(days=settings.rules.tracking_watch_days, minutes=1)
    return now + timedelta(hours=settings.tracker_push_quiet_hours)


def _unclaim(table, key: str, keys: list[str]) -> None:
    # acting failed (the intake down): give the keys back so the provider's retry acts on them
    with session_scope() as session:
        row = session.get(table, key)
        row.acted_on = [k for k in row.acted_on if k not in keys]
        session.add(row)


async def apply_return_push(case_id: str, push: CarrierPush, now: datetime | None = None) -> Applied:
    """A push for a return parcel: signed for (state 3) at our warehouse answers the case's
    receipt wait as the carrier, once."""
    settings = get_settings()
    now = now or utcnow()
    with session_scope() as session:
        row = session.exec(select(ReturnParcel).where(ReturnParcel.case_id == case_id).with_for_update()).first()
        if row is None:
            raise PushRejected(404, f"case {case_id} has no subscribed return parcel")
        _check_waybill(row, push, row.waybill, f"case {case_id}")
        _common(row, push, now, settings)
        if push.status == "abort" or push.tracking is None or _older(row, push):
            session.add(row)
            return Applied("abort" if push.status == "abort" else "older" if push.tracking is not None else "applied")
        view = parcel_view(push.tracking)
        row.last_state, row.last_event_at = view.state, view.last_event_at
        row.signed_at = view.signed_at or row.signed_at
        claim = row.signed_at is not None and RECEIPT not in row.acted_on
        if claim:
            row.acted_on = [*row.acted_on, RECEIPT]
            signed = next(e for e in push.tracking.events if (e.status_code or "").startswith("3"))
            case_store.record_event(session, case_id, f"carrier-signed:{row.waybill}", "carrier", "parcel.signed_by_carrier", {
                "carrier": row.carrier, "waybill": row.waybill, "signed_at": signed.time, "status_code": signed.status_code,
                "context": signed.context, "push_status": push.status})
        session.add(row)
        step, waybill = row.receipt_step, row.waybill
    if not claim:
        return Applied("applied")
    try:
        await answer_receipt(case_id, step, waybill, signed)
    except Exception:
        _unclaim(ReturnParcel, case_id, [RECEIPT])
        raise
    return Applied("applied", (RECEIPT,))


# --- return parcels the provider does not push: polled --------------------------------------------


def quiet_return_parcels(now: datetime, settings: Settings, limit: int) -> list[ReturnParcel]:
    """Return parcels not signed for whose subscription failed or was aborted by the provider, of
    cases still open: at once after the abort, then (``polled``) never more often than the
    aggregator's minimum interval between queries of a waybill."""
    quiet_since = now - timedelta(minutes=settings.tracker_min_interval_minutes)
    with session_scope() as session:
        return list(session.exec(
            select(ReturnParcel).join(Case, Case.id == ReturnParcel.case_id)
            .where(ReturnParcel.push_status.in_(["abort", "failed", POLLED]), ReturnParcel.signed_at == None,  # noqa: E711
                   Case.status != CaseStatus.CLOSED,
                   or_(ReturnParcel.push_status != POLLED, ReturnParcel.last_push_at == None,  # noqa: E711
                       ReturnParcel.last_push_at <= quiet_since))
            .order_by(ReturnParcel.case_id).limit(limit)))


@task(name="poll-quiet-return-parcels", cache_policy=NONE, persist_result=False, retries=2, retry_delay_seconds=[5, 30])
async def poll_quiet_return_parcels(limit: int = 500, concurrency: int = 8) -> dict:
    """The fall-back for a return parcel whose pushes stopped (abort) or never started (the
    subscription failed): the tracker polls it, and a signature at our warehouse answers the
    receipt wait the way a push does (``apply_return_push``: once, as the carrier)."""
    settings = get_settings()
    now = utcnow()
    rows = quiet_return_parcels(now, settings, limit)
    counts: Counter = Counter()
    gate = asyncio.Semaphore(concurrency)
    async with CarrierClient() as client:
        async def one(row: ReturnParcel) -> None:
            async with gate:
                try:
                    track = await client.query(row.carrier, row.waybill)
                except CarrierError as exc:  # no track yet, or the aggregator is busy: next sweep
                    counts["return_parcels_unanswered"] += 1
                    log.info("return parcel %s %s of %s not polled: %s", row.carrier, row.waybill, row.case_id, exc)
                    with session_scope() as session:
                        _mark_polled(session, row.case_id, now)
                    return
            polled = CarrierPush(status=POLLED, message="", com_old=None, com_new=None, tracking=track)
            try:
                applied = await apply_return_push(row.case_id, polled, now)
            except PushRejected as refused:  # e.g. the run is not at its receipt wait yet: next sweep
                counts["return_parcels_retry"] += 1
                log.info("return parcel of %s: %s", row.case_id, refused.message)
                return
            with session_scope() as session:  # an older track changes nothing, but was asked all the same
                _mark_polled(session, row.case_id, now)
            counts["return_parcels_polled"] += 1
            counts["return_parcels_signed"] += bool(applied.acted)

        await asyncio.gather(*(one(row) for row in rows))
    return dict(counts)


def _mark_polled(session, case_id: str, now: datetime) -> None:
    """Asked the aggregator: not again before its minimum interval."""
    polled = session.get(ReturnParcel, case_id)
    polled.push_status, polled.last_push_at = POLLED, now
    session.add(polled)


async def answer_receipt(case_id: str, step: str, waybill: str, signed) -> None:
    """Resume the receipt wait as the carrier. Already answered (the warehouse was quicker) or the
    case closed: nothing to do. Not open yet (the run is on its way to it): the provider retries."""
    note = mask_text(f"快递签收 signed for by the carrier {waybill} {signed.time.isoformat()}: {signed.context}")[:500]
    try:
        await resume_wait(case_id, {"note": note}, step, by_carrier=True)
    except ResumeRefused as exc:
        with session_scope() as session:
            case = case_store.get_case(session, case_id)
            answered = session.exec(select(Wait).where(Wait.case_id == case_id, Wait.step == step,
                                                       Wait.status == WaitStatus.ANSWERED)).first()
        if answered is not None or case.status == CaseStatus.CLOSED:
            return
        raise PushRejected(503, f"case {case_id} is not waiting for {step} yet: {exc}") from None
