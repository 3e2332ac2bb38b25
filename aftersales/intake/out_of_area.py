"""Opening an express out-of-area case (§1.4): refuse a bad report at once, else start its run.

Called by the CLI (`aftersales out-of-area open`), and by a tracking poller when the carrier
reports state 2 (疑难) with an out-of-area, blind-area or stranded detail (CARRIERS.md).
"""

from __future__ import annotations

from aftersales.domain.masking import mask_text
from aftersales.domain.out_of_area_rules import ParcelProblem, parse_problem, validate_problem_parcel
from aftersales.domain.rules import check_order_id, check_text
from aftersales.intake.core import Opened, start_case_run
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
