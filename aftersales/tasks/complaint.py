"""Complaint steps (§1.10) as Prefect tasks: receive the complaint, put a compensation amount on the
case, pay the compensation exactly once."""

from __future__ import annotations

from decimal import Decimal

from prefect import task

from aftersales.domain.models import Process, Role
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope
from aftersales.integrations.platform import PlatformClient, RefundKind
from aftersales.tasks.cases import load_case
from aftersales.tasks.notify import notify_in_session, send_pending
from aftersales.tasks.policy import LOCAL_RECORD, OUTSIDE_EFFECT


def case_fields(case_id: str, complaint: dict) -> dict:
    """The case row of a complaint (written at intake, before its run starts)."""
    return dict(
        id=case_id, process=Process.COMPLAINT, order_id=complaint.get("order_id") or "",
        # the customer is the requester; the staff member who entered it may handle it
        customer_id=complaint["customer"]["customer_id"], requested_by="buyer",
        reason=f"{complaint['object']}: {complaint['cause']}"[:500], amount=Decimal("0"), level=complaint["level"], details=complaint,
    )


def complaint_context(complaint: dict) -> dict:
    """The placeholders every complaint message may use."""
    return {
        "level": complaint["level"], "category_code": complaint["category_code"], "category": complaint["category_label"],
        "channel": complaint["channel"], "object": complaint["object"], "cause": complaint["cause"],
        "demand": complaint["demand"], "special": complaint["special_label"], "brand_owner": complaint.get("brand_owner") or "",
        "first_response_due": complaint["first_response_due"], "plan_due": complaint["plan_due"],
    }


@task(name="record-proposal", **LOCAL_RECORD)
async def record_proposal(case_id: str, round_: int, proposed_by: str, remedy: str, amount: Decimal, message: str) -> None:
    """The proposal is on the case; a compensation amount becomes the case's amount, so the approval
    form and messages show what is at stake."""
    with session_scope() as session:
        case_store.record_event(session, case_id, f"solution-{round_}:proposed", proposed_by, "complaint.solution_proposed",
                                {"round": round_, "remedy": remedy, "amount": amount, "message": message})
        case = case_store.get_case(session, case_id)
        if amount > 0 and case.amount != amount:
            case.amount = amount
            session.add(case)


@task(name="pay-complaint-compensation", **OUTSIDE_EFFECT,
      cache_key_fn=lambda _ctx, p: f"compensation-{p['case_id']}-{p['step']}")
async def pay_compensation(case_id: str, step: str, amount: Decimal, approved_by: str, bearer: str, department: str, reason: str) -> dict:
    """Cash compensation (002 §5.1) paid once: platform idempotency key, this business cache key,
    and a ledger line with the same unique key. It comes on top of the price (not capped by it)."""
    key = f"compensation-{case_id}-{step}"
    case = load_case(case_id)
    async with PlatformClient() as platform:
        refund = await platform.refund(case.order_id, amount, reason, case_id, key, RefundKind.COMPENSATION)
    with session_scope() as session:
        case = case_store.get_case(session, case_id)
        # the ledger records what the platform confirmed it paid under its reference
        case_store.add_ledger_line(session, idempotency_key=key, case=case, kind="compensation", amount=refund.amount, bearer=bearer,
                                   approved_by=approved_by, platform_ref=refund.refund_id, platform_paid=True, note=reason,
                                   responsible_department=department)
        case_store.record_event(session, case_id, f"{step}:paid", approved_by, "compensation.paid",
                                {"amount": refund.amount, "platform_ref": refund.refund_id, "bearer": bearer})
        notify_in_session(session, case, f"{step}:paid", "complaint_compensation_paid", staff_tags=[Role.FINANCE.value], buyer=True,
                          compensation=amount, approved_by=approved_by, bearer=bearer)
    send_pending(case_id)
    return {"refund_id": refund.refund_id, "amount": str(refund.amount)}
