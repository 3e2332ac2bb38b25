"""The rulebook's decisions as pure functions: who may approve, is a request valid, who pays postage.

Each rule names its section in ``shared/domain/RULES.md``. Nothing here talks to the outside world:
callers pass in the order, the time and the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from aftersales.domain.models import Role
from aftersales.domain.settings import Rules

CENT = Decimal("0.01")


class InvalidRequest(ValueError):
    """A request the rulebook does not allow; ``code`` is stable, the message bilingual."""

    def __init__(self, code: str, message: str):
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message


def parse_amount(raw: Any, field: str = "amount") -> Decimal:
    """Money from user input: a number with at most two decimals, never a float."""
    if isinstance(raw, float):
        raise InvalidRequest("amount_float", f"{field} 必须是十进制字符串 must be a decimal string, not float {raw!r}")
    try:
        amount = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise InvalidRequest("amount_not_numeric", f"{field} 必须是数字 must be a number, got {raw!r}") from None
    if not amount.is_finite():
        raise InvalidRequest("amount_not_numeric", f"{field} 必须是数字 must be a number, got {raw!r}")
    if amount <= 0:
        raise InvalidRequest("amount_not_positive", f"{field} 必须大于 0 must be greater than 0, got {amount}")
    if amount != amount.quantize(CENT):
        raise InvalidRequest("amount_precision", f"{field} 最多两位小数 at most two decimals, got {amount}")
    return amount.quantize(CENT)


# --- §1.3 / §2: approval levels -------------------------------------------------------------

APPROVER_LADDER: tuple[Role, ...] = (Role.AGENT, Role.SUPERVISOR, Role.MANAGER)


def approval_level(amount: Decimal, rules: Rules) -> Role:
    """§1.3 (default limits): agent ≤ 20 CNY, supervisor ≤ 500 CNY, manager above."""
    if amount <= rules.agent_limit:
        return Role.AGENT
    if amount <= rules.supervisor_limit:
        return Role.SUPERVISOR
    return Role.MANAGER


def next_level(role: Role) -> Role:
    """001 §三(二): above one's authority, report to the next level up."""
    if role not in APPROVER_LADDER:
        return Role.SUPERVISOR
    index = APPROVER_LADDER.index(role)
    return APPROVER_LADDER[min(index + 1, len(APPROVER_LADDER) - 1)]


# --- §1.1: return requests -------------------------------------------------------------------


class ReturnKind(StrEnum):
    NO_REASON = "no_reason"  # 7 天无理由 (000 §2.1)
    QUALITY = "quality"  # quality problem: the seller is at fault
    WRONG_ITEM = "wrong_item"  # not as described / wrong item: the seller is at fault
    REFUSED_AT_DELIVERY = "refused_at_delivery"  # refused a short or damaged parcel at the door
    SHORT_SHIPMENT = "short_shipment"  # signed, but items are missing

    @property
    def seller_at_fault(self) -> bool:
        return self is not ReturnKind.NO_REASON


@dataclass(frozen=True)
class OrderFacts:
    """What the rules need to know about an order (from the platform)."""

    order_id: str
    status: str
    paid_amount: Decimal
    already_refunded: Decimal
    delivered_at: datetime | None
    refused_at: datetime | None
    free_shipping: bool
    item_prices: dict[str, Decimal]  # sku -> unit price × quantity


def validate_return_request(
    order: OrderFacts,
    raw_amount: Any,
    kind: ReturnKind,
    now: datetime,
    rules: Rules,
    missing_skus: list[str] | None = None,
) -> Decimal:
    """§1.1: is this return request allowed? Returns the amount as Decimal or raises InvalidRequest."""
    amount = parse_amount(raw_amount)
    if order.status in ("cancelled", "awaiting_payment"):
        raise InvalidRequest("order_not_paid", f"订单 {order.order_id} 状态为 {order.status}，不能退货 order is {order.status}: nothing to return")

    if kind is ReturnKind.REFUSED_AT_DELIVERY:
        # §1.1 refusal: the buyer tells customer service within 24 hours of refusing the parcel.
        if order.refused_at is None:
            raise InvalidRequest("not_refused", f"订单 {order.order_id} 没有拒收记录 the carrier shows no refusal for this order")
        if now - order.refused_at > timedelta(hours=rules.refusal_report_hours):
            raise InvalidRequest("refusal_reported_late", f"拒收须在 {rules.refusal_report_hours} 小时内告知 a refusal must be reported within {rules.refusal_report_hours} h (refused {order.refused_at.isoformat()})")
    else:
        if order.delivered_at is None:
            raise InvalidRequest("not_delivered", f"订单 {order.order_id} 尚未签收 order has not been delivered yet (status {order.status})")
        age = now - order.delivered_at
        if kind is ReturnKind.SHORT_SHIPMENT:
            limit, label = timedelta(hours=rules.refusal_report_hours), f"{rules.refusal_report_hours} h"
        elif kind is ReturnKind.NO_REASON:
            limit, label = timedelta(days=rules.return_no_reason_days), f"{rules.return_no_reason_days} days"
        else:
            limit, label = timedelta(days=rules.return_quality_days), f"{rules.return_quality_days} days"
        if age > limit:
            raise InvalidRequest("out_of_window", f"已超出申请期限 outside the {kind.value} window of {label} after delivery (delivered {order.delivered_at.isoformat()})")

    refundable = order.paid_amount - order.already_refunded
    if amount > refundable:
        raise InvalidRequest("amount_above_paid", f"申请金额 {amount} 超过可退金额 {refundable} amount {amount} is above what can still be refunded ({order.paid_amount} paid, {order.already_refunded} refunded)")

    if kind is ReturnKind.SHORT_SHIPMENT:
        missing = missing_skus or []
        if not missing:
            raise InvalidRequest("missing_items_required", "少件须列出缺少的商品 a short shipment must name the missing items (SKUs)")
        unknown = [sku for sku in missing if sku not in order.item_prices]
        if unknown:
            raise InvalidRequest("unknown_items", f"订单中没有这些商品 not in the order: {', '.join(unknown)}")
        worth = sum((order.item_prices[sku] for sku in missing), Decimal("0"))
        if amount > worth:
            raise InvalidRequest("amount_above_missing", f"金额 {amount} 超过缺件价值 {worth} amount is above the missing items' value {worth}")
    return amount


# --- §1.1: postage ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PostageLine:
    kind: str  # return_postage / outbound_postage
    amount: Decimal
    bearer: str  # seller / buyer
    note: str
    add_to_refund: Decimal  # what this line changes in the buyer's refund


def postage_lines(kind: ReturnKind, free_shipping: bool, return_postage: Decimal, outbound_postage: Decimal) -> list[PostageLine]:
    """§1.1 postage (004 §一): seller at fault pays all extra costs; otherwise the buyer pays the
    return postage; for free-shipping items the outbound postage is split between buyer and seller."""
    if kind.seller_at_fault:
        lines = []
        if return_postage > 0:
            lines.append(PostageLine("return_postage", return_postage, "seller", "卖家责任，退货运费由卖家承担 seller at fault pays return postage", return_postage))
        return lines
    lines = [PostageLine("return_postage", return_postage, "buyer", "无理由退货，退货运费由买家承担 no-reason return: buyer pays return postage", Decimal("0"))]
    if free_shipping and outbound_postage > 0:
        buyer_half = (outbound_postage / 2).quantize(CENT)
        seller_half = outbound_postage - buyer_half
        lines.append(PostageLine("outbound_postage", buyer_half, "buyer", "包邮商品无理由退货，发货运费买卖双方各半 free shipping: outbound postage split, buyer half deducted", -buyer_half))
        lines.append(PostageLine("outbound_postage", seller_half, "seller", "包邮商品无理由退货，发货运费买卖双方各半 free shipping: outbound postage split, seller half", Decimal("0")))
    return lines
