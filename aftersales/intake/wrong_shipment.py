"""Opening a wrong shipment (§1.7): the report is checked first (nothing is recorded when it is
bad), then one flow run is started for the case (the case id is the idempotency key)."""

from __future__ import annotations

from aftersales.domain.masking import mask_text
from aftersales.domain.rules import check_order_id, check_ref, check_skus, check_text
from aftersales.intake.core import Opened, start_case_run
from aftersales.integrations.platform import PlatformClient
from aftersales.tasks.wrong_shipment import wrong_shipment_facts


def wrong_shipment_case_id(order_id: str, request_ref: str | None = None) -> str:
    return f"wrong-shipment-{order_id}" + (f"-{request_ref}" if request_ref else "")


async def open_wrong_shipment(order_id: str, skus: list[str], reason: str = "", requested_by: str = "buyer",
                              negative_effect: bool = False, request_ref: str | None = None) -> Opened:
    """§1.7 at the door: refuse a bad report at once (nothing is recorded), else start its run."""
    order_id = check_order_id(order_id)
    skus = check_skus(list(skus))
    reason = check_text(reason, "reason", "错发说明")
    requested_by = check_text(requested_by, "requested_by", "报告人", 64) or "buyer"
    request_ref = check_ref(request_ref)
    async with PlatformClient() as platform:
        order, _facts, _value = await wrong_shipment_facts(platform, order_id, list(skus))
    case_id = wrong_shipment_case_id(order_id, request_ref)
    return await start_case_run(
        "wrong-shipment/wrong-shipment", case_id,
        {"case_id": case_id, "order_id": order_id, "skus": list(skus), "reason": mask_text(reason), "requested_by": requested_by,
         "negative_effect": negative_effect},
        tags=["process:wrong_shipment", f"warehouse-left:{str(order.warehouse_left).lower()}"],
        same=("skus",),
    )
