"""§1.2 exchange (换货, 004 fig. 5.2) as pure rules: is the request allowed, what is the price difference.

An exchange is a return whose outcome is a replacement shipment. The windows, the seller's review
and the postage by fault are the return's (§1.1); what is new is the replacement: it must be in the
catalogue, and the price difference between the old and the new item is refunded to the buyer or
charged to them (004 二 “商品退换货的价差处理”).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from aftersales.domain.rules import InvalidRequest, OrderFacts, PostageLine, ReturnKind, postage_lines, validate_return_request, shown
from aftersales.domain.settings import Rules

# Refused at the door and short shipments are not exchanges: they have their own §1.1 branches.
EXCHANGE_KINDS = (ReturnKind.NO_REASON, ReturnKind.QUALITY, ReturnKind.WRONG_ITEM)


class PriceDifference(StrEnum):
    NONE = "none"
    REFUND = "refund"  # the replacement is cheaper: the buyer gets the difference back
    CHARGE = "charge"  # the replacement is dearer: the buyer pays the difference


@dataclass(frozen=True)
class ExchangeTerms:
    """What is exchanged for what, at which prices (unit prices in CNY)."""

    sku: str
    new_sku: str
    quantity: int
    unit_price: Decimal  # what the buyer paid for one old item
    new_unit_price: Decimal  # the catalogue price of one replacement

    @property
    def value(self) -> Decimal:
        """The value of the items sent back: the case's amount (and the refund if it ends as a return)."""
        return self.unit_price * self.quantity

    @property
    def replacement_value(self) -> Decimal:
        return self.new_unit_price * self.quantity

    @property
    def difference(self) -> Decimal:
        """Positive: the buyer pays it; negative: the buyer gets it back."""
        return self.replacement_value - self.value

    @property
    def settlement(self) -> PriceDifference:
        if self.difference > 0:
            return PriceDifference.CHARGE
        if self.difference < 0:
            return PriceDifference.REFUND
        return PriceDifference.NONE

    def as_details(self) -> dict:
        """The terms as the case keeps them (``details.ExchangeDetails``) and the trail shows them."""
        return {"sku": self.sku, "new_sku": self.new_sku, "quantity": self.quantity,
                "unit_price": str(self.unit_price), "new_unit_price": str(self.new_unit_price),
                "difference": str(self.difference), "settlement": self.settlement.value}


def exchange_kind(raw: ReturnKind | str) -> ReturnKind:
    try:
        kind = ReturnKind(raw)
    except ValueError:
        kind = None
    if kind not in EXCHANGE_KINDS:
        allowed = ", ".join(k.value for k in EXCHANGE_KINDS)
        raise InvalidRequest("unknown_kind", f"未知换货类型 unknown exchange kind {shown(raw)}; one of {allowed}")
    return kind


def validate_exchange_request(
    order: OrderFacts,
    ordered: dict[str, tuple[Decimal, int]],  # sku -> (unit price paid, quantity ordered)
    sku: str,
    new_sku: str,
    raw_quantity: int | str,
    new_unit_price: Decimal | None,  # None: the catalogue does not know new_sku
    kind: ReturnKind,
    now: datetime,
    rules: Rules,
) -> ExchangeTerms:
    """§1.2: is this exchange allowed? Returns its terms or raises InvalidRequest (bilingual)."""
    try:
        quantity = int(raw_quantity)
    except (TypeError, ValueError):
        raise InvalidRequest("quantity_not_numeric", f"数量必须是整数 quantity must be a whole number, got {shown(raw_quantity)}") from None
    if quantity < 1:
        raise InvalidRequest("quantity_not_positive", f"数量至少为 1 quantity must be at least 1, got {quantity}")
    if sku not in ordered:
        raise InvalidRequest("unknown_items", f"订单 {order.order_id} 中没有商品 {sku} item {sku} is not in the order")
    unit_price, bought = ordered[sku]
    if quantity > bought:
        raise InvalidRequest("quantity_above_ordered", f"换货数量 {quantity} 超过购买数量 {bought} cannot exchange {quantity}: the order has {bought} of {sku}")
    if new_unit_price is None:
        raise InvalidRequest("unknown_replacement", f"商品库中没有 {new_sku} replacement {new_sku} is not in the shop's catalogue")
    terms = ExchangeTerms(sku=sku, new_sku=new_sku, quantity=quantity, unit_price=unit_price, new_unit_price=new_unit_price)
    # the return's rules hold: paid, delivered, inside the window for the kind, not refunded already
    validate_return_request(order, str(terms.value), kind, now, rules)
    return terms


def exchange_postage(kind: ReturnKind, return_postage: Decimal, seller_at_fault: bool | None = None) -> list[PostageLine]:
    """§1.1 postage for the parcel sent back: the seller at fault refunds it, otherwise the buyer
    bears it. No split of the outbound postage: unlike a return, an exchange keeps the sale. The
    replacement's own postage is always the seller's (``reship_items``)."""
    at_fault = kind.seller_at_fault if seller_at_fault is None else seller_at_fault
    return postage_lines(ReturnKind.QUALITY if at_fault else ReturnKind.NO_REASON, False, return_postage, Decimal("0"))
