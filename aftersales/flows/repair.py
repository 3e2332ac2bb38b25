"""Repair (返修) — rulebook §1.5 (004 fig. 5.5).

The flow chart, step by step:

1. an agent opens a repair order linked to a delivered order and one of its items;
2. out of warranty (超期: delivered more than ``repair_warranty_days`` ago) or out of scope (超服务)
   → a supervisor or manager approves with a quote, within ``repair_approval_working_days`` —
   otherwise it is declined and the buyer told;
3. the buyer gets the address and the terms, and ships within ``repair_buyer_ship_days`` —
   otherwise the repair order closes (shipping accepts any quote; the buyer may also withdraw);
4. the six stages, each a recorded event the buyer is told of:
   买家已寄出 buyer shipped → 仓库收货确认 warehouse received → 维修中 under repair →
   维修完成入库 repaired → 返修出库/寄回 shipped back → 买家已收货 buyer received.
   The warehouse and the repairers act within ``repair_stage_working_days`` per stage — otherwise
   the stage is escalated to the supervisor (then the manager). The buyer's receipt is taken as
   given after ``repair_buyer_receipt_days``;
5. the costs are ledger lines: repair cost and postage back, borne by the seller inside warranty and
   scope (who also refunds the buyer's postage to send it in), by the buyer when they accepted a
   quote for an out-of-warranty/out-of-scope repair.
"""

from __future__ import annotations

from decimal import Decimal

from prefect import flow

from aftersales.approvals.ladder import await_stage, stage_default
from aftersales.approvals.forms import ApprovalDecision
from aftersales.approvals.repair_forms import (
    RepairApproval,
    RepairDone,
    RepairReceipt,
    RepairReceived,
    RepairShipment,
    RepairShippedBack,
    ShipmentAction,
)
from aftersales.approvals.waits import Decision, WaitSpec, await_decision
from aftersales.domain.calendar import business_calendar
from aftersales.domain.details import RepairDetails, details_of
from aftersales.domain.models import Case, CaseStatus, Role
from aftersales.domain.outcomes import Outcome
from aftersales.domain.repair_rules import RepairScope, RepairStage
from aftersales.domain.rules import declared_return_postage, parse_amount
from aftersales.domain.settings import get_settings
from aftersales.tasks.cases import close_case, load_case, open_case, record_step
from aftersales.tasks.recovery import CASE_RUN
from aftersales.tasks.repair import ask_buyer_to_send_in, book_repair_costs


@flow(name="repair", **CASE_RUN)
async def repair_flow(case_id: str, order_id: str, sku: str, fault: str, scope: RepairScope = RepairScope.IN_SCOPE,
                      requested_by: str = "S001") -> str:
    """A repair order, from its opening to the buyer receiving the repaired item (§1.5)."""
    from prefect.runtime import flow_run

    await open_case(case_id, flow_run.id)  # checked (warranty, scope) and recorded at the door
    case = load_case(case_id)
    if case.status == CaseStatus.CLOSED:
        return case.outcome or "closed"
    days = get_settings().rules.repair_stage_working_days

    quote, approved_by, agreed = Decimal("0"), case.requested_by, None
    if details_of(case, RepairDetails).needs_approval:
        approval = await await_decision(case, superior_approval(case))
        if approval.data.decision == ApprovalDecision.DECLINE:
            return await close_case(case_id, Outcome.REPAIR_DECLINED, approval.actor, notify="repair_declined",
                                    staff_tags=[Role.AGENT.value], note=approval.data.note)
        quote, approved_by, agreed = parse_amount(approval.data.quote, "quote", allow_zero=True), approval.actor, approval
    await ask_buyer_to_send_in(case_id, quote, approved_by)

    shipment = await await_decision(case, buyer_ships(case, agreed))
    if shipment.by_deadline:
        return await close_case(case_id, Outcome.CLOSED_NOT_SHIPPED, "system", notify="case_closed")
    if shipment.data.action == ShipmentAction.WITHDRAWN:
        return await close_case(case_id, Outcome.REPAIR_WITHDRAWN, shipment.actor, notify="case_closed")
    await stage(case_id, RepairStage.BUYER_SHIPPED, shipment, f"{shipment.data.carrier} {shipment.data.tracking_number}")

    receipt = await await_stage(case, warehouse_receipt(case, shipment), days)
    await stage(case_id, RepairStage.WAREHOUSE_RECEIVED, receipt, receipt.data.note)
    await stage(case_id, RepairStage.UNDER_REPAIR, receipt, "")

    done = await await_stage(case, repair_done(case, receipt), days)
    await stage(case_id, RepairStage.REPAIRED, done, done.data.note)

    back = await await_stage(case, ship_back(case, done), days)
    await book_repair_costs(case_id, quote, approved_by, parse_amount(done.data.repair_cost, "repair_cost", allow_zero=True),
                            parse_amount(back.data.postage, "postage", allow_zero=True),
                            declared_return_postage(parse_amount(shipment.data.postage_paid, "postage_paid", allow_zero=True),
                                                    bool(shipment.data.staff_id), get_settings().rules.standard_postage))
    await stage(case_id, RepairStage.SHIPPED_BACK, back, f"{back.data.carrier} {back.data.tracking_number}")

    received = await await_decision(case, buyer_receipt(case, back))
    await stage(case_id, RepairStage.BUYER_RECEIVED, received, received.data.note)
    return await close_case(case_id, Outcome.REPAIRED, received.actor, notify="case_closed")


async def stage(case_id: str, step: RepairStage, decision: Decision, detail: str) -> None:
    """Each of the six stages is an event in the trail, and the buyer and warehouse are told."""
    await record_step(case_id, step.value, "repair.stage", decision.actor, stage=step.value,
                      details={"stage": step.value, "by_deadline": decision.by_deadline, "detail": detail},
                      notify="repair_stage", staff_tags=[Role.WAREHOUSE.value], buyer=True, repair_stage=step.value,
                      repair_progress=step.value, detail=detail)


# --- the waits of §1.5, each with its deadline and default action -------------------------------


def superior_approval(case: Case) -> WaitSpec:
    rules = get_settings().rules
    days = rules.repair_approval_working_days

    def check(form: RepairApproval) -> str | None:
        if form.decision == ApprovalDecision.DECLINE and not form.note.strip():
            return "不予维修须写明原因 declining needs a note for the buyer"
        return None

    return WaitSpec(
        step="repair-approval",
        title=f"返修审批（{details_of(case, RepairDetails).why_approval}）Repair approval",
        form=RepairApproval,
        deadline=business_calendar().add_working_days(case.opened_at, days),
        default_action=f"{days} 个工作日未审批，不予维修并告知买家 not approved in {days} working days: declined, the buyer is told",
        default_input={"decision": ApprovalDecision.DECLINE.value, "quote": "0.00",
                       "note": "审批超时，不予维修 not approved in time: declined"},
        addressed_to=Role.SUPERVISOR.value,
        check=check,
    )


def buyer_ships(case: Case, agreed: Decision | None) -> WaitSpec:
    rules = get_settings().rules
    days = rules.repair_buyer_ship_days

    def check(form: RepairShipment) -> str | None:
        if form.action == ShipmentAction.SHIPPED and not (form.carrier and form.tracking_number):
            return "寄出须填写快递公司和运单号 shipping needs the carrier and the tracking number"
        return None

    return WaitSpec(
        step="buyer-ships",
        title="等待买家寄出返修件 Waiting for the buyer to send the item",
        form=RepairShipment,
        deadline=business_calendar().add_days(agreed.answered_at if agreed else case.opened_at, days),
        default_action=f"买家 {days} 天未寄出，返修单关闭 not sent within {days} days: the repair order closes",
        default_input={"action": ShipmentAction.WITHDRAWN.value},
        addressed_to="buyer",
        check=check,
    )


def warehouse_receipt(case: Case, shipment: Decision) -> WaitSpec:
    days = get_settings().rules.repair_stage_working_days
    return WaitSpec(
        step="repair-receipt",
        title="返修件收货确认 Confirm the repair item arrived",
        form=RepairReceipt,
        deadline=business_calendar().add_working_days(shipment.answered_at, days),
        default_action=stage_default(days),
        default_input={"note": "超时未确认 not confirmed in time"},
        addressed_to=Role.WAREHOUSE.value,
    )


def repair_done(case: Case, receipt: Decision) -> WaitSpec:
    days = get_settings().rules.repair_stage_working_days
    return WaitSpec(
        step="repair-done",
        title="维修完成入库 Repair done, item back in stock",
        form=RepairDone,
        deadline=business_calendar().add_working_days(receipt.answered_at, days),
        default_action=stage_default(days),
        default_input={"repair_cost": "0.00", "note": "超时未完成 not done in time"},
        addressed_to=Role.QUALITY.value,
    )


def ship_back(case: Case, done: Decision) -> WaitSpec:
    rules = get_settings().rules
    days = rules.repair_stage_working_days
    return WaitSpec(
        step="repair-ship-back",
        title="返修出库寄回 Ship the repaired item back",
        form=RepairShippedBack,
        deadline=business_calendar().add_working_days(done.answered_at, days),
        default_action=stage_default(days),
        default_input={"carrier": "none", "tracking_number": "NOTSHIPPED", "postage": "0.00"},
        addressed_to=Role.WAREHOUSE.value,
        prefill={"postage": f"{rules.standard_postage:.2f}"},
    )


def buyer_receipt(case: Case, back: Decision) -> WaitSpec:
    days = get_settings().rules.repair_buyer_receipt_days
    return WaitSpec(
        step="buyer-receipt",
        title="买家确认收到返修件 The buyer confirms the item arrived",
        form=RepairReceived,
        deadline=business_calendar().add_days(back.answered_at, days),
        default_action=f"{days} 天未确认，视为已收货 not confirmed in {days} days: taken as received",
        default_input={"note": "超时视为已收货 taken as received at the deadline"},
        addressed_to="buyer",
    )


def deployments(schedule) -> list:
    return [
        repair_flow.to_deployment(
            name="repair", tags=["process:repair"],
            description="§1.5 返修 Repair: a repair order through its six stages. Opened by `aftersales repair open`.",
        )
    ]
