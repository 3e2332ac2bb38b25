"""Opening a wrong shipment (§1.7): the report is checked first (nothing is recorded when it is
bad), then one flow run is started for the case (the case id is the idempotency key)."""

from __future__ import annotations

from aftersales.domain.details import WrongShipmentDetails
from aftersales.domain.masking import mask_text
from aftersales.domain.rules import check_order_id, check_ref, check_skus, check_text
from aftersales.domain.models import Process, Role
from aftersales.intake.core import NewCase, Opened, open_case
from aftersales.intake.registry import ProcessEntry, ProcessRequest, cli
from aftersales.integrations.platform import shop_platform
from aftersales.tasks.wrong_shipment import items_text, wrong_shipment_facts


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
    async with shop_platform() as platform:
        order, _facts, value = await wrong_shipment_facts(platform, order_id, list(skus))
    case_id = wrong_shipment_case_id(order_id, request_ref)
    reason = mask_text(reason)
    new = NewCase(
        fields=dict(id=case_id, process=Process.WRONG_SHIPMENT, order_id=order_id, customer_id=order.customer.customer_id,
                    requested_by=requested_by, reason=reason, amount=value,
                    details=WrongShipmentDetails(skus=skus, warehouse_left=order.warehouse_left, negative_effect=negative_effect,
                                                 customer=order.customer.model_dump(mode="json"),
                                                 items=[item.model_dump(mode="json") for item in order.items])),
        # whether the parcel has left the warehouse decides the way (§1.7)
        opened={"skus": skus, "warehouse_left": order.warehouse_left, "negative_effect": negative_effect, "reason": reason},
        terms={"skus": list(skus)}, actor=requested_by,
        notice="wrong_shipment_opened", staff_tags=(Role.WAREHOUSE.value, Role.AGENT.value),
        say=lambda case: {"items": items_text(case), "warehouse_left": "是 yes" if order.warehouse_left else "否 no"},
    )
    return await open_case(
        "wrong-shipment/wrong-shipment", new,
        {"case_id": case_id, "order_id": order_id, "skus": list(skus), "reason": reason, "requested_by": requested_by,
         "negative_effect": negative_effect},
        tags=["process:wrong_shipment", f"warehouse-left:{str(order.warehouse_left).lower()}"],
    )


class WrongShipmentRequest(ProcessRequest):
    order_id: str = cli("--order", "订单号 order id")
    skus: list[str] = cli("--sku", "发错的订单商品 SKU an ordered item that was sent wrong, repeatable")
    reason: str = cli("--reason", "情况说明 what was sent instead", "")
    requested_by: str = cli("--requested-by", "buyer, or the staff id reporting it", "buyer")
    negative_effect: bool = cli("--negative-effect", "造成负面影响 (complaint, bad review): the assessment is recorded", False)
    request_ref: str | None = cli("--request-ref", "a reference, for a second report on one order", None)


PROCESS = ProcessEntry(
    name="wrong-shipment", section="§1.7", title="Wrong shipments (§1.7) 错发货", route="wrong-shipments",
    request=WrongShipmentRequest, opener=open_wrong_shipment,
    summary="Report a wrong shipment. Not yet dispatched: corrected at once; dispatched: the buyer chooses.",
    # pillows sent in the wrong size after dispatch (the buyer chooses); notebooks caught before dispatch
    demo=(WrongShipmentRequest(order_id="O20261120-002", skus=["PL-MEM-60"], reason="收到 70cm 枕头，订的是 60cm received 70 cm pillows, ordered 60 cm"),
          WrongShipmentRequest(order_id="O20261120-007", skus=["BK-NOTE-A5"], requested_by="S004",
                               reason="打包复核发现拣错颜色 packing check found the wrong colour")),
)
