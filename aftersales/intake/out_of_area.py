"""Opening an express out-of-area case (§1.4): refuse a bad report at once, else start its run.

Called by the CLI (`aftersales out-of-area open`), and by a tracking poller when the carrier
reports state 2 (疑难) with an out-of-area, blind-area or stranded detail (Kuaidi100).
"""

from __future__ import annotations

from aftersales.domain.details import OutOfAreaDetails
from aftersales.domain.masking import mask_text
from aftersales.domain.out_of_area_rules import ParcelProblem, parse_problem, validate_problem_parcel
from aftersales.domain.rules import check_order_id, check_text
from aftersales.domain.models import Process, Role
from aftersales.domain.out_of_area_rules import fallback_carrier
from aftersales.domain.settings import get_settings
from aftersales.intake.core import NewCase, Opened, open_case
from aftersales.intake.registry import ProcessEntry, ProcessRequest, cli
from aftersales.integrations.platform import shop_platform
from aftersales.tasks.intake import order_facts
from aftersales.tasks.out_of_area import choice_deadline, last_scan


def out_of_area_case_id(order_id: str) -> str:
    return f"out-of-area-{order_id}"


async def open_out_of_area(order_id: str, problem: ParcelProblem | str, requested_by: str = "system", note: str = "") -> Opened:
    """One case per order: a repeated report finds the case already open."""
    problem = parse_problem(problem)
    order_id = check_order_id(order_id)
    note = check_text(note, "note", "说明")
    requested_by = check_text(requested_by, "requested_by", "报告人", 64) or "system"
    async with shop_platform() as platform:
        order, facts = await order_facts(platform, order_id)
    validate_problem_parcel(order_id, order.status, order.delivered_at, order.carrier, order.waybill)
    scan, pickup = await last_scan(order.carrier, order.waybill, order.customer.phone)
    rules = get_settings().rules
    case_id = out_of_area_case_id(order_id)
    note = mask_text(note)
    new = NewCase(
        fields=dict(id=case_id, process=Process.OUT_OF_AREA, order_id=order_id, customer_id=order.customer.customer_id,
                    requested_by=requested_by, reason=f"{problem.value} {note}".strip()[:500], amount=facts.paid_amount - facts.already_refunded,
                    details=OutOfAreaDetails(problem=problem, carrier=order.carrier, waybill=order.waybill, bearer=problem.bearer,
                                             last_scan=scan, pickup_point=pickup, note=note,
                                             new_carrier=fallback_carrier(order.carrier, rules.out_of_area_fallback_carrier),
                                             customer=order.customer.model_dump(mode="json"),
                                             items=[item.model_dump(mode="json") for item in order.items])),
        opened={"problem": problem.value, "carrier": order.carrier, "waybill": order.waybill, "last_scan": scan, "note": note},
        terms={"problem": problem.value}, actor=requested_by,
        # the buyer is contacted at once; the logistics team calls them
        notice="ooa_opened", staff_tags=(Role.LOGISTICS.value, Role.AGENT.value), buyer=True,
        say=lambda case: {"ooa_problem": problem.value, "carrier": order.carrier, "waybill": order.waybill, "last_scan": scan,
                          "pickup_point": pickup, "deadline": choice_deadline(case), "ooa_remedy": rules.out_of_area_default_remedy,
                          "bearer": problem.bearer},
    )
    return await open_case(
        "out-of-area/out-of-area", new,
        {"case_id": case_id, "order_id": order_id, "problem": problem.value, "requested_by": requested_by, "note": note},
        tags=["process:out_of_area", f"problem:{problem.value}"],
    )


class OutOfAreaRequest(ProcessRequest):
    order_id: str = cli("--order", "订单号 order id")
    problem: str = cli("--problem", "out_of_area 超区 | blind_area 盲区 | stranded 网点暂停滞留")
    requested_by: str = cli("--requested-by", "the staff id reporting it", "system")
    note: str = cli("--note", "说明 what the carrier said", "")


PROCESS = ProcessEntry(
    name="out-of-area", section="§1.4", title="Express out-of-area parcels (§1.4) 快递超区", route="out-of-area",
    request=OutOfAreaRequest, opener=open_out_of_area,
    summary="Open a problem-parcel case; the buyer is asked to choose a remedy. A repeat opens nothing new.",
    # the seeded order still on the road, stranded at a suspended outlet (the logistics team calls the buyer)
    demo=(OutOfAreaRequest(order_id="O20261120-006", problem=ParcelProblem.STRANDED.value, requested_by="S011",
                           note="武汉洪山网点暂停派送 the Hongshan outlet in Wuhan suspended service"),),
)
