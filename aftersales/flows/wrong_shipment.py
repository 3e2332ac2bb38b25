"""Wrong shipment (错发货) — rulebook §1.7 (004 fig. 5.6).

The flow chart, step by step:

1. a wrong item, size or quantity is reported (串发/错发) against the order's items;
2. not yet out of the warehouse → the correct items are shipped at once; nobody needs to decide;
3. out of the warehouse → the buyer chooses, within ``wrong_shipment_choice_days`` (3 days), to get
   the correct items (re-ship) or a refund (return); without an answer the correct items are sent.
   Either way the wrong items are picked up at the shop's cost;
4. “settle according to stock”: correct items out of stock → refunded instead, and the buyer told;
5. with a direct economic loss (the parcel left: extra postage both ways) or a negative effect
   reported (a complaint, a bad review), the supervisor records the responsible person and the
   assessment (记录考核) in a form, within ``wrong_shipment_assessment_working_days``; unrecorded at
   the deadline it is written down as unassigned and the manager is told.

Ledger: the re-shipment or refund, the correct parcel's postage and the pick-up, all borne by the
seller with the warehouse as the responsible department.
"""

from __future__ import annotations

from datetime import datetime

from prefect import flow

from aftersales.approvals.waits import Decision, WaitSpec, await_decision
from aftersales.approvals.wrong_shipment_forms import WrongShipmentAssessment, WrongShipmentChoice
from aftersales.domain.calendar import business_calendar
from aftersales.domain.details import WrongShipmentDetails, details_of
from aftersales.domain.models import Case, CaseStatus, Role
from aftersales.domain.rules import parse_amount
from aftersales.domain.settings import get_settings
from aftersales.domain.wrong_shipment_rules import BuyerChoice, direct_loss, needs_assessment
from aftersales.integrations.db import session_scope
from aftersales.tasks.cases import close_case, load_case, open_case, record_step
from aftersales.tasks.notify import notify_in_session, send_pending
from aftersales.tasks.recovery import CASE_RUN
from aftersales.tasks.wrong_shipment import DEPARTMENT, items_text, put_it_right

UNASSIGNED = "未指定 unassigned"


@flow(name="wrong-shipment", **CASE_RUN)
async def wrong_shipment_flow(case_id: str, order_id: str, skus: list[str], reason: str = "", requested_by: str = "buyer",
                              negative_effect: bool = False) -> str:
    """A wrong shipment, from the report to the correct goods (or the refund) and the assessment (§1.7)."""
    from prefect.runtime import flow_run

    await open_case(case_id, flow_run.id)  # §1.7 step 1: checked and recorded at the door
    case = load_case(case_id)
    if case.status == CaseStatus.CLOSED:
        return case.outcome or "closed"
    details = details_of(case, WrongShipmentDetails)
    left = details.warehouse_left

    if not left:
        # §1.7: still in the warehouse — re-ship correctly at once
        outcome, actor, since = await put_it_right(case_id, BuyerChoice.RESHIP, "system"), "system", case.opened_at
    else:
        choice = await await_decision(case, buyer_choice(case))
        outcome, actor, since = await put_it_right(case_id, choice.data.choice, choice.actor), choice.actor, choice.answered_at

    if needs_assessment(left, details.negative_effect):
        assessment = await await_decision(case, assess_responsibility(case, since))
        await record_assessment(case_id, assessment)
    return await close_case(case_id, outcome, actor, notify="case_closed")


# --- the waits of §1.7 ---------------------------------------------------------------------------


def buyer_choice(case: Case) -> WaitSpec:
    rules = get_settings().rules
    days = rules.wrong_shipment_choice_days
    with session_scope() as session:
        notify_in_session(session, case, "choose", "wrong_shipment_choose", buyer=True, items=items_text(case), choice_days=days)
    send_pending(case.id)
    return WaitSpec(
        step="buyer-choice",
        title="错发货：买家选择补发或退货 Wrong shipment: the buyer chooses re-ship or return",
        form=WrongShipmentChoice,
        deadline=business_calendar().add_days(case.opened_at, days),
        default_action=f"买家 {days} 天未选择，补发正确商品 no choice in {days} days: the right items are sent",
        default_input={"choice": BuyerChoice.RESHIP.value, "note": "超时默认补发 re-shipped by default at the deadline"},
        addressed_to="buyer",
    )


def assess_responsibility(case: Case, since: datetime) -> WaitSpec:
    rules = get_settings().rules
    days = rules.wrong_shipment_assessment_working_days
    details = details_of(case, WrongShipmentDetails)
    loss = direct_loss(details.warehouse_left, rules.standard_postage)
    with session_scope() as session:
        notify_in_session(session, case, "assessment-needed", "wrong_shipment_assessment_needed", staff_tags=[Role.SUPERVISOR.value],
                          economic_loss=f"{loss:.2f}")
    send_pending(case.id)
    return WaitSpec(
        step="assessment",
        title="错发货记录考核 Record the responsible person and the assessment",
        form=WrongShipmentAssessment,
        deadline=business_calendar().add_working_days(since, days),
        default_action=f"{days} 个工作日未记录，记为未指定并通知经理 not recorded in {days} working days: recorded as unassigned, the manager is told",
        default_input={"responsible_person": UNASSIGNED, "department": DEPARTMENT, "economic_loss": f"{loss:.2f}",
                       "negative_effect": details.negative_effect, "assessment": "逾期未记录 not recorded in time"},
        addressed_to=Role.SUPERVISOR.value,
        prefill={"economic_loss": f"{loss:.2f}", "negative_effect": details.negative_effect},
    )


async def record_assessment(case_id: str, assessment: Decision) -> None:
    """§1.7 记录考核: the responsible person and the assessment go into the case's events; the manager is told."""
    form = assessment.data
    details = {"responsible_person": form.responsible_person, "department": form.department,
               "economic_loss": parse_amount(form.economic_loss, "economic_loss", allow_zero=True),
               "negative_effect": form.negative_effect, "assessment": form.assessment, "recorded_by": assessment.actor}
    if assessment.by_deadline:
        await record_step(case_id, "assessment", "assessment.missing", "system", details=details,
                             notify="wrong_shipment_assessment_missing", staff_tags=[Role.MANAGER.value], economic_loss=form.economic_loss)
    else:
        await record_step(case_id, "assessment", "assessment.recorded", assessment.actor, details=details,
                             notify="wrong_shipment_assessed", staff_tags=[Role.MANAGER.value],
                             **{**details, "negative_effect": "是 yes" if form.negative_effect else "否 no", "economic_loss": form.economic_loss})


# --- running it ------------------------------------------------------------------------------------


def deployments(schedule) -> list:
    return [
        wrong_shipment_flow.to_deployment(
            name="wrong-shipment", tags=["process:wrong_shipment"],
            description="§1.7 错发货 Wrong shipment: one run per case. Opened by `aftersales wrong-shipment open`.",
        )
    ]
