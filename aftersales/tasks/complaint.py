"""Complaint steps (§1.10) as Prefect tasks: receive the complaint, put a compensation amount on the
case, pay the compensation exactly once."""

from __future__ import annotations

from decimal import Decimal

from prefect import task

from aftersales.domain.details import ComplaintDetails
from aftersales.domain.models import Process
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope
from aftersales.tasks.policy import LOCAL_RECORD


def case_fields(case_id: str, complaint: dict) -> dict:
    """The case row of a complaint (written at intake, before its run starts)."""
    return dict(
        id=case_id, process=Process.COMPLAINT, order_id=complaint.get("order_id") or "",
        # the customer is the requester; the staff member who entered it may handle it
        customer_id=complaint["customer"]["customer_id"], requested_by="buyer",
        reason=f"{complaint['object']}: {complaint['cause']}"[:500], amount=Decimal("0"), level=complaint["level"],
        details=ComplaintDetails.model_validate(complaint),  # validated once, at the door
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
