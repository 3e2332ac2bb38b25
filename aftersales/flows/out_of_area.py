"""Express out-of-area (快递超区) — rulebook §1.4 (004 fig. 5.4; carrier states as Kuaidi100 gives them).

The flow chart, step by step:

1. a problem parcel is reported with its order and problem type — out of the outlet's area (超区),
   blind area (盲区/无网点) or stranded at a suspended outlet (网点暂停滞留); it must be on its way
   (shipped, not yet signed for);
2. the buyer is contacted at once and chooses a remedy within ``out_of_area_choice_hours`` —
   otherwise ``out_of_area_default_remedy`` (switch carrier) is carried out;
3. the remedy, through the platform and once only:
   switch carrier → the order ships again with another carrier (the stranded parcel comes back);
   self-pickup → the pickup point is recorded and the buyer told where to collect;
   return and refund → the buyer is refunded in full and the parcel comes back;
4. the extra postage is a ledger line, borne by the seller (out-of-area and blind-area parcels:
   coverage should have been checked before shipping) or the carrier (a suspended outlet).
"""

from __future__ import annotations

from prefect import flow

from aftersales.approvals.out_of_area_forms import RemedyChoice
from aftersales.approvals.waits import WaitSpec, await_decision
from aftersales.domain.details import OutOfAreaDetails, details_of
from aftersales.domain.models import Case, CaseStatus, Role
from aftersales.domain.outcomes import Outcome
from aftersales.domain.out_of_area_rules import OutOfAreaRemedy, ParcelProblem, check_new_carrier, parse_remedy
from aftersales.domain.settings import get_settings
from aftersales.tasks.cases import close_case, load_case, open_case, record_step
from aftersales.tasks.money import refund_buyer
from aftersales.tasks.out_of_area import book_returned_parcel, choice_deadline, switch_carrier
from aftersales.tasks.recovery import CASE_RUN


@flow(name="out-of-area", **CASE_RUN)
async def out_of_area_flow(case_id: str, order_id: str, problem: ParcelProblem, requested_by: str = "system", note: str = "") -> str:
    """A problem parcel, from the report to the remedy the buyer chose (§1.4)."""
    from prefect.runtime import flow_run

    await open_case(case_id, flow_run.id)  # checked and recorded at the door, the buyer contacted
    case = load_case(case_id)
    if case.status == CaseStatus.CLOSED:
        return case.outcome or "closed"

    details = details_of(case, OutOfAreaDetails)
    choice = await await_decision(case, buyer_choice(case))
    remedy = choice.data.remedy

    if remedy == OutOfAreaRemedy.SWITCH_CARRIER:
        await switch_carrier(case_id, choice.data.new_carrier or details.new_carrier, choice.actor)
        return await close_case(case_id, Outcome.CARRIER_SWITCHED, choice.actor, notify="case_closed")

    if remedy == OutOfAreaRemedy.SELF_PICKUP:
        point = choice.data.pickup_point or details.pickup_point
        await record_step(case_id, "self-pickup", "parcel.self_pickup", choice.actor, stage="self-pickup",
                          details={"pickup_point": point}, notify="ooa_pickup", staff_tags=[Role.LOGISTICS.value], buyer=True,
                          carrier=details.carrier, waybill=details.waybill, pickup_point=point)
        return await close_case(case_id, Outcome.SELF_PICKUP_ARRANGED, choice.actor, notify="case_closed")

    await refund_buyer(case_id, "refund", case.amount, choice.actor, "问题件退回并退款 problem parcel: return and full refund")
    await book_returned_parcel(case_id, choice.actor)
    return await close_case(case_id, Outcome.RETURNED_REFUNDED, choice.actor, notify="case_closed")


def buyer_choice(case: Case) -> WaitSpec:
    rules = get_settings().rules
    default = parse_remedy(rules.out_of_area_default_remedy)
    details = details_of(case, OutOfAreaDetails)
    current = details.carrier

    def check(form: RemedyChoice) -> str | None:
        if form.remedy == OutOfAreaRemedy.SWITCH_CARRIER and form.new_carrier:
            return check_new_carrier(form.new_carrier, current)
        if form.remedy == OutOfAreaRemedy.SELF_PICKUP and not (form.pickup_point.strip() or details.pickup_point):
            return "自提须填写自提点 self-pickup needs the pickup point"
        return None

    return WaitSpec(
        step="buyer-choice",
        title="问题件：买家选择处理方式 Problem parcel: the buyer chooses a remedy",
        form=RemedyChoice,
        deadline=choice_deadline(case),
        default_action=f"{rules.out_of_area_choice_hours} 小时未选择，默认 {default.value} no choice in {rules.out_of_area_choice_hours} h: {default.value}",
        default_input={"remedy": default.value, "new_carrier": details.new_carrier,
                       "pickup_point": details.pickup_point, "note": "超时按默认处理 default at the deadline"},
        addressed_to="buyer",
        prefill={"remedy": default.value, "new_carrier": details.new_carrier, "pickup_point": details.pickup_point},
        check=check,
    )


def deployments(schedule) -> list:
    return [
        out_of_area_flow.to_deployment(
            name="out-of-area", tags=["process:out_of_area"],
            description="§1.4 快递超区 Problem parcels (out of area, blind area, stranded): the buyer chooses a remedy. "
                        "Opened by `aftersales out-of-area open`.",
        )
    ]
