"""Opening a repair order (§1.5): refuse a bad request at once (nothing is recorded), else start
its run. One repair order per order and item: a repeated request finds it already open."""

from __future__ import annotations

from aftersales.domain.calendar import utcnow
from aftersales.domain.masking import mask_text
from aftersales.domain.repair_rules import RepairScope, parse_scope, validate_repair_request
from aftersales.domain.rules import check_order_id, check_skus, check_text
from aftersales.domain.settings import get_settings
from aftersales.intake.core import Opened, start_case_run
from aftersales.integrations.platform import PlatformClient
from aftersales.tasks.intake import order_facts


def repair_case_id(order_id: str, sku: str) -> str:
    return f"repair-{order_id}-{sku}"


async def open_repair(order_id: str, sku: str, fault: str, scope: RepairScope | str = RepairScope.IN_SCOPE,
                      requested_by: str = "S001") -> Opened:
    scope = parse_scope(scope)
    order_id = check_order_id(order_id)
    sku = check_skus(sku)[0]
    fault = check_text(fault, "fault", "故障描述")
    requested_by = check_text(requested_by, "requested_by", "录入人工号", 64)
    async with PlatformClient() as platform:
        order, _facts = await order_facts(platform, order_id)
    terms = validate_repair_request(order_id, order.status, order.delivered_at, {i.sku for i in order.items}, sku, fault,
                                    scope, utcnow(), get_settings().rules)
    case_id = repair_case_id(order_id, sku)
    return await start_case_run(
        "repair/repair", case_id,
        {"case_id": case_id, "order_id": order_id, "sku": sku, "fault": mask_text(fault), "scope": scope.value, "requested_by": requested_by},
        tags=["process:repair", "warranty:in" if terms.in_warranty else "warranty:out", f"scope:{scope.value}"],
        same=("scope",),
    )
