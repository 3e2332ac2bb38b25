"""§1.7 wrong shipment (错发货, 004 fig. 5.6) as pure rules.

Wrong item, size or quantity sent (串发/错发). Not yet out of the warehouse: re-ship correctly at
once. Out: the buyer chooses re-ship or return; with a direct economic loss or a negative effect
the responsible person is recorded for assessment (记录考核).
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from aftersales.domain.rules import InvalidRequest, OrderFacts


class BuyerChoice(StrEnum):
    RESHIP = "reship"  # the correct items are sent; the wrong ones are picked up at the shop's cost
    RETURN = "return"  # the wrong items are picked up and the price of the ordered ones refunded


def validate_wrong_shipment(order: OrderFacts, skus: list[str]) -> Decimal:
    """The ordered items that were sent wrong; returns their value (the case's amount)."""
    if order.status in ("cancelled", "awaiting_payment"):
        raise InvalidRequest("order_not_paid", f"订单 {order.order_id} 状态为 {order.status}，尚未发货 order is {order.status}: nothing was shipped")
    if not skus:
        raise InvalidRequest("missing_items_required", "请列出发错的订单商品 SKU name the ordered items that were sent wrong (SKUs)")
    unknown = [sku for sku in skus if sku not in order.item_prices]
    if unknown:
        raise InvalidRequest("unknown_items", f"订单中没有这些商品 not in the order: {', '.join(unknown)}")
    if len(set(skus)) != len(skus):
        raise InvalidRequest("duplicate_items", "同一商品只列一次 name each item once")
    return sum((order.item_prices[sku] for sku in skus), Decimal("0"))


def direct_loss(warehouse_left: bool, standard_postage: Decimal) -> Decimal:
    """The extra cost a wrong parcel that left the warehouse causes: the correct parcel's postage
    and the pick-up of the wrong one. Corrected before dispatch, it costs nothing extra."""
    return standard_postage * 2 if warehouse_left else Decimal("0.00")


def needs_assessment(warehouse_left: bool, negative_effect: bool) -> bool:
    """§1.7: a direct economic loss (the parcel left) or a negative effect (e.g. a complaint or a
    bad review) → record the responsible person for assessment."""
    return warehouse_left or negative_effect
