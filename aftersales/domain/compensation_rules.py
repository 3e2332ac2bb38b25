"""§1.3 compensation (补偿, 004 fig. 5.3) as pure rules: what may be offered, and who must approve it.

Cash, part of the price, a coupon or goods settle a problem. An agent gives up to ``agent_limit``
(20 CNY) alone; above it every level up to the one whose limit covers the amount approves in turn
(001 §三(二) “超出权限需上报上级”, “重大或复杂问题,需启动多级审批流程”): up to ``supervisor_limit``
(500 CNY) the supervisor, above it the supervisor and then the manager.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from aftersales.domain.models import Role
from aftersales.domain.rules import InvalidRequest, OrderFacts, approval_level, check_skus, parse_amount, shown
from aftersales.domain.settings import Rules


class CompensationForm(StrEnum):
    CASH = "cash"  # money on top of the price (platform refund of kind "compensation")
    PARTIAL_REFUND = "partial_refund"  # part of the price back (a goods refund, capped at what was paid)
    COUPON = "coupon"  # a shop coupon
    GOODS = "goods"  # goods shipped to the buyer (e.g. a gift or a spare part)

    @property
    def ledger_kind(self) -> str:
        return {CompensationForm.COUPON: "coupon", CompensationForm.GOODS: "goods"}.get(self, "compensation")


# who carries the cost in finance's ledger (the carrier after a lost parcel, a supplier for a defect …)
BEARERS = ("seller", "carrier", "platform", "supplier")


def approval_chain(amount: Decimal, rules: Rules) -> list[Role]:
    """§1.3: the approvals a compensation needs, in order; empty within an agent's own limit."""
    level = approval_level(amount, rules)
    if level is Role.AGENT:
        return []
    if level is Role.SUPERVISOR:
        return [Role.SUPERVISOR]
    return [Role.SUPERVISOR, Role.MANAGER]


def next_approver(level: Role) -> Role | None:
    """Whom a level's unanswered approval goes to; None at the top (the manager)."""
    return {Role.SUPERVISOR: Role.MANAGER}.get(level)


@dataclass(frozen=True)
class CompensationRequest:
    form: CompensationForm
    amount: Decimal
    bearer: str
    goods: tuple[tuple[str, int], ...] = ()  # (sku, quantity) for goods

    def goods_items(self) -> list[dict[str, Any]]:
        return [{"sku": sku, "quantity": quantity} for sku, quantity in self.goods]


def parse_goods(raw: list[str] | None) -> list[tuple[str, int]]:
    """``["GIFT-MUG", "SK-SPT-3P:2"]`` → ``[("GIFT-MUG", 1), ("SK-SPT-3P", 2)]``."""
    goods = []
    for entry in raw or []:
        sku, _, count = str(entry).partition(":")
        try:
            quantity = int(count) if count else 1
        except ValueError:
            raise InvalidRequest("quantity_not_numeric", f"数量必须是整数 quantity of {shown(sku)} must be a whole number, got {shown(count)}") from None
        if not sku.strip() or quantity < 1:
            raise InvalidRequest("bad_goods", f"商品写法为 SKU 或 SKU:数量 goods are written SKU or SKU:quantity, got {shown(entry)}")
        goods.append((check_skus(sku.strip(), "goods_sku")[0], quantity))
    return goods


def validate_compensation_request(
    order: OrderFacts,
    raw_form: str,
    raw_amount: Any,
    reason: str,
    bearer: str,
    requester_role: Role | None,
    goods: list[tuple[str, int]],
    catalogue: dict[str, tuple[Decimal, int]],  # sku -> (unit price, available) for the goods asked for
) -> CompensationRequest:
    """§1.3: is this compensation allowed? Returns it (amount as Decimal) or raises InvalidRequest."""
    try:
        form = CompensationForm(raw_form)
    except ValueError:
        allowed = ", ".join(f.value for f in CompensationForm)
        raise InvalidRequest("unknown_form", f"未知补偿方式 unknown compensation form {shown(raw_form)}; one of {allowed}") from None
    if requester_role is None:
        raise InvalidRequest("unknown_staff", "补偿由客服发起，须填写有效工号 a compensation is opened by a staff member: give a valid staff id")
    if not reason.strip():
        raise InvalidRequest("reason_required", "请写明补偿原因 say what problem the compensation settles")
    if bearer not in BEARERS:
        raise InvalidRequest("unknown_bearer", f"未知承担方 unknown bearer {shown(bearer)}; one of {', '.join(BEARERS)}")
    if order.status in ("cancelled", "awaiting_payment"):
        raise InvalidRequest("order_not_paid", f"订单 {order.order_id} 状态为 {order.status}，不能补偿 order is {order.status}: nothing to compensate")

    if form is CompensationForm.GOODS:
        if not goods:
            raise InvalidRequest("goods_required", "商品补偿须列出商品 SKU compensation in goods must name the goods (SKUs)")
        unknown = [sku for sku, _ in goods if sku not in catalogue]
        if unknown:
            raise InvalidRequest("unknown_items", f"商品库中没有 not in the shop's catalogue: {', '.join(unknown)}")
        short = [sku for sku, quantity in goods if catalogue[sku][1] < quantity]
        if short:
            raise InvalidRequest("out_of_stock", f"库存不足 out of stock: {', '.join(short)}")
        value = sum((catalogue[sku][0] * quantity for sku, quantity in goods), Decimal("0"))
        if raw_amount not in (None, ""):
            given = parse_amount(raw_amount)
            if given != value:
                raise InvalidRequest("amount_mismatch", f"金额 {given} 与商品价值 {value} 不符 amount {given} differs from the goods' value {value}")
        return CompensationRequest(form, value, bearer, tuple(goods))

    if raw_amount in (None, ""):
        raise InvalidRequest("amount_required", "请填写补偿金额 give the amount (CNY)")
    amount = parse_amount(raw_amount)
    if form is CompensationForm.PARTIAL_REFUND:
        refundable = order.paid_amount - order.already_refunded
        if amount > refundable:
            raise InvalidRequest("amount_above_paid", f"部分退款 {amount} 超过可退金额 {refundable} a partial refund of {amount} is above what can still be refunded ({refundable})")
    return CompensationRequest(form, amount, bearer)
