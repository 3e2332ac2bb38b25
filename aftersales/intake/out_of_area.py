"""Opening an express out-of-area case (§1.4): refuse a bad report at once, else start its run.

Called by the CLI (`aftersales out-of-area open`), and by a tracking poller when the carrier
reports state 2 (疑难) with an out-of-area, blind-area or stranded detail (CARRIERS.md).
"""

from __future__ import annotations

from aftersales.domain.masking import mask_text
from aftersales.domain.out_of_area_rules import ParcelProblem, parse_problem, validate_problem_parcel
from aftersales.domain.rules import check_order_id, check_text
from aftersales.intake.core import Opened, start_case_run
from aftersales.intake.registry import Process, ProcessRequest, cli
from aftersales.integrations.platform import PlatformClient
from aftersales.tasks.intake import order_facts


def out_of_area_case_id(order_id: str) -> str:
    return f"out-of-area-{order_id}"


async def open_out_of_area(order_id: str, problem: ParcelProblem | str, requested_by: str = "system", note: str = "") -> Opened:
    """One case per order: a repeated report finds the case already open."""
    problem = parse_problem(problem)
    order_id = check_order_id(order_id)
    note = check_text(note, "note", "说明")
    requested_by = check_text(requested_by, "requested_by", "报告人", 64) or "system"
    async with PlatformClient() as platform:
        order, _facts = await order_facts(platform, order_id)
    validate_problem_parcel(order_id, order.status, order.delivered_at, order.carrier, order.waybill)
    case_id = out_of_area_case_id(order_id)
    return await start_case_run(
        "out-of-area/out-of-area", case_id,
        {"case_id": case_id, "order_id": order_id, "problem": problem.value, "requested_by": requested_by, "note": mask_text(note)},
        tags=["process:out_of_area", f"problem:{problem.value}"],
        same=("problem",),
    )

class OutOfAreaRequest(ProcessRequest):
    order_id: str = cli("--order", "订单号 order id")
    problem: str = cli("--problem", "out_of_area 超区 | blind_area 盲区 | stranded 网点暂停滞留")
    requested_by: str = cli("--requested-by", "the staff id reporting it", "system")
    note: str = cli("--note", "说明 what the carrier said", "")


PROCESS = Process(
    name="out-of-area", section="§1.4", title="Express out-of-area parcels (§1.4) 快递超区", route="out-of-area",
    request=OutOfAreaRequest, opener=open_out_of_area,
    summary="Open a problem-parcel case; the buyer is asked to choose a remedy. A repeat opens nothing new.",
    # the seeded order still on the road, stranded at a suspended outlet (the logistics team calls the buyer)
    demo=(OutOfAreaRequest(order_id="O20261120-006", problem=ParcelProblem.STRANDED.value, requested_by="S011",
                           note="武汉洪山网点暂停派送 the Hongshan outlet in Wuhan suspended service"),),
)
