"""The rulebook's decisions as pure functions: who may approve, is a request valid, who pays postage.

Each rule names its section in ``docs/rulebook.md``. Nothing here talks to the outside world:
callers pass in the order, the time and the numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from collections.abc import Callable
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


# Money is written in plain decimal notation only: digits, optionally a point and one or two
# decimals ("128", "128.5", "128.00"). No exponent ("1e309", "9e-1"), no inf/nan, no thousands
# separators, no full-width digits. The forms' pattern (``approvals/forms.py``) is the same rule.
MAX_AMOUNT_DIGITS = 10  # ¥9,999,999,999.99 at most; the database column is NUMERIC(14, 2)
MONEY_PATTERN = rf"^[0-9]{{1,{MAX_AMOUNT_DIGITS}}}(\.[0-9]{{1,2}})?$"
_PLAIN_DECIMAL = re.compile(r"^(?P<sign>[+-]?)(?P<whole>[0-9]+)(?:\.(?P<cents>[0-9]+))?$", re.ASCII)
_NON_FINITE = re.compile(r"^[+-]?(?:inf|infinity|nan|snan)[0-9]*$", re.IGNORECASE)
QUOTE_LIMIT = 40


def shown(raw: Any, limit: int = QUOTE_LIMIT, mask: Callable[[str], str] | None = None) -> str:
    """User input quoted in an error message: at most ``limit`` characters, then "…" and the length.

    An error never echoes a whole (possibly huge) input back; control characters are escaped.
    ``mask`` (e.g. ``masking.mask_text``) is applied to the quoted prefix only."""
    text = raw if isinstance(raw, str) else str(raw)
    head = text[:limit]
    quoted = repr(mask(head) if mask else head)
    if len(text) <= limit:
        return quoted
    return f"{quoted[:-1]}…{quoted[-1]} ({len(text)} chars)"


def parse_amount(raw: Any, field: str = "amount", *, allow_zero: bool = False) -> Decimal:
    """Money from user input (CLI, API, forms): a plain decimal string with at most two decimals,
    never a float. The one parser for money; every refusal is an ``InvalidRequest`` with a
    specific code and a bilingual message that quotes at most a short prefix of the input."""
    if isinstance(raw, float):
        raise InvalidRequest("amount_float", f"{field} 必须是十进制字符串 must be a decimal string, not float {shown(raw)}")
    if isinstance(raw, Decimal):
        if not raw.is_finite():
            raise InvalidRequest("amount_not_numeric", f"{field} 必须是有限的数字，不能是 inf/nan must be a number, not infinity or NaN: got {shown(raw)}")
        text = format(raw, "f")
    elif isinstance(raw, int) and not isinstance(raw, bool):
        text = str(raw)
    elif isinstance(raw, str):
        text = raw.strip()
    else:
        raise InvalidRequest("amount_not_numeric", f"{field} 必须是数字，如 128.00 must be a number written like 128.00, got {shown(raw)}")
    match = _PLAIN_DECIMAL.match(text)
    if match is None:
        if _NON_FINITE.match(text):
            raise InvalidRequest("amount_not_numeric", f"{field} 必须是有限的数字，不能是 inf/nan must be a number, not infinity or NaN: got {shown(raw)}")
        if re.match(r"^[+-]?[0-9]*\.?[0-9]+[eE][+-]?[0-9]+$", text, re.ASCII):
            raise InvalidRequest("amount_exponent", f"{field} 不能用科学计数法，请写成 128.00 这样的普通小数 must be plain decimal notation such as 128.00, without an exponent: got {shown(raw)}")
        raise InvalidRequest("amount_not_numeric", f"{field} 必须是数字，如 128.00 must be a number written like 128.00 (digits, one point, no separators), got {shown(raw)}")
    whole, cents = match["whole"].lstrip("0") or "0", match["cents"] or ""
    if len(whole) > MAX_AMOUNT_DIGITS:
        raise InvalidRequest("amount_too_large", f"{field} 超出上限 is too large: at most {'9' * MAX_AMOUNT_DIGITS}.99, got {shown(raw)}")
    if len(cents) > 2:
        raise InvalidRequest("amount_precision", f"{field} 最多两位小数 at most two decimals, got {shown(raw)}")
    amount = Decimal(f"{match['sign']}{whole}.{cents or '0'}").quantize(CENT)
    if amount < 0 or (amount == 0 and not allow_zero):
        limit = "不能小于 0 must not be negative" if allow_zero else "必须大于 0 must be greater than 0"
        raise InvalidRequest("amount_not_positive", f"{field} {limit}, got {amount}")
    return amount


def check_text(value: str | None, field: str, label: str, limit: int = 500, *, required: bool = False) -> str:
    """Free text from a request (a reason, a note): at most ``limit`` characters and no control
    characters (a NUL byte is refused by PostgreSQL). The error says how long it was, never echoes it."""
    text = value or ""
    if not isinstance(text, str):
        raise InvalidRequest(f"{field}_not_text", f"{label}必须是文字 {field} must be text")
    if required and not text.strip():
        raise InvalidRequest(f"{field}_required", f"请填写{label} {field} is required")
    if len(text) > limit:
        raise InvalidRequest(f"{field}_too_long", f"{label}最多 {limit} 字 {field} is at most {limit} characters (got {len(text)})")
    if _CONTROL.search(text):
        raise InvalidRequest(f"{field}_control_chars", f"{label}含有控制字符 {field} contains control characters")
    return text


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ORDER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$", re.ASCII)



def check_id(value: Any, field: str = "order_id", label: str = "订单号", what: str = "the order id") -> str:
    """A platform id (order, review) as the platform writes them (letters, digits, ``-``, ``_``,
    ``.``; at most 40): it becomes part of a case id, a flow-run name and a platform URL."""
    text = value.strip() if isinstance(value, str) else ""
    if not _ORDER_ID.match(text):
        raise InvalidRequest(f"bad_{field}", f"{label}格式不正确 {what} must be 1–40 letters, digits, '-', '_' or '.', got {shown(value)}")
    return text


def check_order_id(order_id: Any) -> str:
    return check_id(order_id)


_SKU = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", re.ASCII)


def check_skus(skus: Any, field: str = "sku", *, limit: int = 50) -> list[str]:
    """Item ids from a request (at most ``limit``, each at most 64 letters, digits, '-', '_', '.')."""
    values = [skus] if isinstance(skus, str) else list(skus or [])
    if len(values) > limit:
        raise InvalidRequest(f"too_many_{field}s", f"商品最多 {limit} 个 at most {limit} items, got {len(values)}")
    checked = []
    for value in values:
        text = value.strip() if isinstance(value, str) else ""
        if not _SKU.match(text):
            raise InvalidRequest(f"bad_{field}", f"商品编码格式不正确 an item id (SKU) must be 1–64 letters, digits, '-', '_' or '.', got {shown(value)}")
        checked.append(text)
    return checked


_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$", re.ASCII)


def check_ref(ref: str | None, field: str = "request_ref", label: str = "申请编号", limit: int = 24) -> str | None:
    """An optional reference that becomes part of a case id (letters, digits, '-', '_'; at most ``limit``)."""
    text = (ref or "").strip()
    if not text:
        return None
    if len(text) > limit or not _REF.match(text):
        raise InvalidRequest(f"bad_{field}", f"{label}只能含字母、数字、'-'、'_'，最多 {limit} 位 {field} must be at most {limit} letters, digits, '-' or '_', got {shown(ref)}")
    return text


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


def return_kind_of(platform_reason: str) -> ReturnKind:
    """The §1.1 kind of a return the buyer applied for at the platform, from the reason they chose
    there: a quality fault or a wrong/not-as-described item is the seller's (who then pays the
    return postage); anything else is a no-reason return."""
    if re.search(r"质量|破损|损坏|瑕疵|坏了|故障|quality|damaged|broken", platform_reason, re.IGNORECASE):
        return ReturnKind.QUALITY
    if re.search(r"发错|错发|少件|不符|描述|wrong|not as described", platform_reason, re.IGNORECASE):
        return ReturnKind.WRONG_ITEM
    return ReturnKind.NO_REASON


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


def declared_return_postage(declared: Decimal, entered_by_staff: bool, standard_postage: Decimal, refunded: bool = True) -> Decimal:
    """The return postage the shop goes by: what the buyer declared through the platform. When the
    seller refunds it (``refunded``), up to the standard postage (nobody has seen a receipt); more
    only when a staff member entered it with their one-time code (they saw the receipt)."""
    return declared if entered_by_staff or not refunded else min(declared, standard_postage)


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


def refund_split(goods_amount: Decimal, postage: list[PostageLine]) -> tuple[Decimal, Decimal]:
    """What the platform is asked to refund for goods (less the buyer's shares) and, separately,
    the postage the seller owes the buyer."""
    goods = goods_amount + sum((line.add_to_refund for line in postage if line.add_to_refund < 0), Decimal("0"))
    owed_postage = sum((line.add_to_refund for line in postage if line.add_to_refund > 0), Decimal("0"))
    return goods, owed_postage


def refund_explained(goods_amount: Decimal, postage: list[PostageLine]) -> str:
    """Why the refund differs from the goods' price, for the inspection form and the buyer's
    message ("" when it does not): ¥128.00 − ¥6.00 (the rule) = ¥122.00."""
    goods, owed_postage = refund_split(goods_amount, postage)
    changes = [line for line in postage if line.add_to_refund != 0]
    if not changes:
        return ""
    parts = [f"¥{goods_amount:.2f}"] + [f"{'+' if line.add_to_refund > 0 else '−'} ¥{abs(line.add_to_refund):.2f}（{line.note}）" for line in changes]
    return " ".join(parts) + f" = ¥{goods + owed_postage:.2f}"
