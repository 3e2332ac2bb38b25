"""platform-sync's steps: read the refunds changed at the platform (TOP) since the last read, and
turn each change into what it means for its case — a new return, the buyer's waybill, a refund the
buyer cancelled, the platform acting on its own deadline.

The read walks forward in windows of ``platform_sync_window_hours`` (TOP answers by modified time,
paged), from the checkpoint less ``platform_sync_overlap_minutes`` (a refund saved late at the
platform still comes). What the overlap reads again is recognised by the refund's modified time and
status, kept on its case: a change is applied once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from prefect import get_client, task
from prefect.states import Cancelled
from sqlmodel import select

from aftersales.approvals.resume import ResumeRefused, resume_wait
from aftersales.domain.calendar import utcnow
from aftersales.domain.details import ReturnDetails, details_of, stored, with_changes
from aftersales.domain.models import Case, CaseStatus, Checkpoint, Wait, WaitStatus
from aftersales.domain.outcomes import Outcome
from aftersales.domain.rules import InvalidRequest
from aftersales.domain.settings import get_settings
from aftersales.intake.returns import open_platform_return, platform_return_case_id
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope
from aftersales.integrations.platform import RefundApplication, RefundStatus, TopClient
from aftersales.integrations.platform.top import CARRIER_BY_NAME
from aftersales.tasks.cases import close_case
from aftersales.tasks.tracking import _save_checkpoint
from aftersales.tasks.policy import SCHEDULED_READ

log = logging.getLogger(__name__)
CHECKPOINT = "platform-refunds"


# --- reading --------------------------------------------------------------------------------------


@task(name="read-refund-changes", **SCHEDULED_READ)
async def read_refund_changes(until: datetime) -> list[dict[str, Any]]:
    """Every refund changed at the platform from the checkpoint (less the overlap) to ``until``, the
    newest reading of each, oldest change first."""
    settings = get_settings()
    start = read_checkpoint()
    start = start - timedelta(minutes=settings.platform_sync_overlap_minutes) if start else until - timedelta(hours=settings.platform_sync_first_hours)
    window = timedelta(hours=settings.platform_sync_window_hours)
    newest: dict[str, RefundApplication] = {}
    async with TopClient() as top:
        while start < until:
            end = min(start + window, until)
            page = 1
            while True:
                got = await top.refunds_changed(start, end, page=page, page_size=100)
                for refund in got.refunds:
                    known = newest.get(refund.refund_id)
                    if known is None or (refund.modified_at or until) >= (known.modified_at or until):
                        newest[refund.refund_id] = refund
                if not got.has_next:
                    break
                page += 1
            start = end
    ordered = sorted(newest.values(), key=lambda r: (r.modified_at or until, r.refund_id))
    return [refund.model_dump(mode="json") for refund in ordered]


def read_checkpoint() -> datetime | None:
    with session_scope() as session:
        row = session.get(Checkpoint, CHECKPOINT)
    return datetime.fromisoformat(row.value) if row else None


def save_checkpoint(moment: datetime) -> None:
    _save_checkpoint(CHECKPOINT, moment.isoformat())  # the tracker's and the review monitor's one way


# --- applying -------------------------------------------------------------------------------------


@task(name="apply-refund-change", retries=2, retry_delay_seconds=5, persist_result=False)
async def apply_refund_change(reading: dict[str, Any]) -> dict[str, str]:
    """One refund's change, once: returns ``{"case_id", "action"}``. ``action`` "platform-acted"
    means the platform decided by itself what the case is waiting for: its wait's deadline is now,
    and the caller sweeps it (the wait's default is what the platform did)."""
    refund = RefundApplication.model_validate(reading)
    case_id = platform_return_case_id(refund.order_id, refund.refund_id)
    with session_scope() as session:
        case = session.get(Case, case_id)
    if case is None:
        return {"case_id": case_id, "action": await _open(refund)}
    details = details_of(case, ReturnDetails)
    if details.platform_status == refund.status and details.platform_modified and refund.modified_at \
            and refund.modified_at <= details.platform_modified:
        return {"case_id": case_id, "action": "unchanged"}  # the overlap read it again
    actor = "buyer" if refund.status in (RefundStatus.WAIT_SELLER_CONFIRM_GOODS, RefundStatus.CLOSED) else "platform"
    with session_scope() as session:
        case = case_store.get_case(session, case_id)
        case.details = stored(with_changes(details_of(case, ReturnDetails), platform_status=refund.status,
                                           platform_modified=refund.modified_at))
        session.add(case)
        case_store.record_event(session, case_id, f"platform:{refund.status}:{refund.modified_at.isoformat() if refund.modified_at else ''}",
                                actor, "platform.changed", {"status": refund.status, "from": details.platform_status,
                                                            "carrier": refund.return_carrier, "waybill": refund.return_waybill})
        closed = case.status == CaseStatus.CLOSED
        waiting = case_store.find_wait(session, case_id)
        step = waiting.step if waiting is not None else None
    if closed:
        return {"case_id": case_id, "action": "recorded"}
    if refund.status == RefundStatus.WAIT_SELLER_CONFIRM_GOODS and step == "buyer-shipment" and refund.return_waybill:
        return {"case_id": case_id, "action": await _buyer_shipped(case_id, refund)}
    if refund.status == RefundStatus.CLOSED:
        return {"case_id": case_id, "action": await _withdrawn(case_id)}
    if step is not None and _platform_decided(refund.status, step):
        _deadline_now(case_id, step)
        return {"case_id": case_id, "action": "platform-acted"}
    return {"case_id": case_id, "action": "recorded"}


async def _open(refund: RefundApplication) -> str:
    if refund.status != RefundStatus.WAIT_SELLER_AGREE:
        return "ignored"  # began before we watched, or over already: nothing for us to decide
    async with TopClient() as top:
        full = await top.get_refund(refund.refund_id)  # the version, the deadline, the buyer's id
        order = await top.get_order(refund.order_id)
    try:
        opened = await open_platform_return(full, order)
    except InvalidRequest as refused:
        log.warning("platform-sync: refund %s not opened: %s", refund.refund_id, refused.message)
        return "refused"
    return "opened" if opened.new else "known"


async def _buyer_shipped(case_id: str, refund: RefundApplication) -> str:
    carrier = CARRIER_BY_NAME.get(refund.return_carrier or "", "other")
    try:
        await resume_wait(case_id, {"carrier": carrier, "tracking_number": refund.return_waybill, "return_postage": "0.00",
                                    "reported_by": "buyer"}, "buyer-shipment")
    except ResumeRefused as refused:  # e.g. the run is between two steps: the next sync tries again
        log.warning("platform-sync: %s: the buyer's waybill was not delivered yet (%s)", case_id, refused)
        _forget_reading(case_id)
        return "retry"
    return "buyer-shipped"


def _platform_decided(status: str, step: str) -> bool:
    """The platform did by itself what the open wait was for (its own deadline passed first)."""
    return (step.startswith("seller-review") and status in (RefundStatus.WAIT_BUYER_RETURN_GOODS, RefundStatus.SUCCESS)) \
        or (step.startswith(("receipt", "inspection", "sms-code")) and status == RefundStatus.SUCCESS)


def _deadline_now(case_id: str, step: str) -> None:
    with session_scope() as session:
        wait = case_store.find_wait(session, case_id, step)
        if wait is not None and wait.status == WaitStatus.OPEN:
            wait.deadline = utcnow()
            session.add(wait)
            case_store.record_event(session, case_id, f"{wait.key}:platform-acted", "platform", "platform.acted",
                                    {"step": step, "note": "平台已按其时限自行处理 the platform acted at its own deadline"})


def _forget_reading(case_id: str) -> None:
    with session_scope() as session:
        case = case_store.get_case(session, case_id)
        case.details = stored(with_changes(details_of(case, ReturnDetails), platform_modified=None))
        session.add(case)


async def _withdrawn(case_id: str) -> str:
    """The buyer cancelled the refund (or the platform closed it): the case closes as withdrawn and
    its run, waiting for a decision nobody needs any more, is cancelled."""
    with session_scope() as session:
        case = case_store.get_case(session, case_id)
        run_id = case.flow_run_id
        for wait in session.exec(select(Wait).where(Wait.case_id == case_id,
                                                               Wait.status.in_([WaitStatus.OPEN, WaitStatus.EXPIRING]))).all():
            wait.status, wait.actor, wait.answered_at = WaitStatus.ANSWERED, "buyer", utcnow()
            wait.decision = {"withdrawn_at_platform": True}
            session.add(wait)
    # the buyer cancelled it themselves: staff are told, the buyer is not asked how we did
    await close_case(case_id, Outcome.WITHDRAWN, "buyer", notify="return_withdrawn", staff_tags=["agent"], buyer=False,
                     note="买家在平台上撤销了退款申请 the buyer cancelled the refund at the platform")
    if run_id:
        async with get_client() as client:
            await client.set_flow_run_state(UUID(run_id), Cancelled(message="the buyer cancelled the refund at the platform"), force=True)
    return "withdrawn"
