"""What the rules need to know about an order, read from the platform and the carrier."""

from __future__ import annotations

from decimal import Decimal

from aftersales.domain.rules import InvalidRequest, OrderFacts
from aftersales.integrations.platform import (
    CarrierClient,
    NoTrackingRecord,
    Order,
    OrderNotFound,
    RefundKind,
    ShopPlatform,
    TrackingResult,
)

REFUSED_STATE = 14  # Kuaidi100 state 拒签: the recipient refused the parcel (Kuaidi100)


def signed_for_at(tracking: TrackingResult | None):
    """When the carrier recorded the signature (Kuaidi100 3xx), if it did: the delivery time of an
    order whose platform gives none (TOP)."""
    if tracking is None:
        return None
    return next((e.time for e in tracking.events if (e.status_code or "").startswith("3")), None)


def refused_at(tracking: TrackingResult | None):
    """When the carrier recorded the refusal at the door, if it did."""
    if tracking is None:
        return None
    times = [e.time for e in tracking.events if e.status_code == str(REFUSED_STATE) or (e.status or "").startswith("拒签")]
    if not times and tracking.state == REFUSED_STATE and tracking.latest is not None:
        times = [tracking.latest.time]
    return max(times) if times else None


async def order_facts(platform: ShopPlatform, order_id: str) -> tuple[Order, OrderFacts]:
    """Fetch the order, its refunds so far and (for a shipped parcel) its tracking."""
    try:
        order = await platform.get_order(order_id)
    except OrderNotFound:
        raise InvalidRequest("unknown_order", f"订单 {order_id} 不存在 order {order_id} not found on the platform") from None
    refunds = await platform.list_refunds(order_id)
    tracking = None
    if order.waybill and order.carrier and order.delivered_at is None:
        async with CarrierClient() as carrier:
            try:
                tracking = await carrier.query(order.carrier, order.waybill, phone=order.customer.phone)
            except NoTrackingRecord:
                tracking = None  # nothing scanned yet: no refusal either
    facts = OrderFacts(
        order_id=order.order_id,
        status=order.status,
        paid_amount=order.paid_amount,
        already_refunded=sum((r.amount for r in refunds if r.kind == RefundKind.GOODS), Decimal("0")),
        delivered_at=order.delivered_at or signed_for_at(tracking),
        refused_at=refused_at(tracking),
        free_shipping=order.free_shipping,
        item_prices={item.sku: item.unit_price * item.quantity for item in order.items},
    )
    return order, facts
