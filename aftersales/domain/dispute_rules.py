"""Disputes / rights protection (维权) — rulebook §1.8 (004 fig. 5.8; 000 §5.1.3): the pure rules.

A dispute is registered against an order that exists and was paid; it closes only with the
responsible department, the responsible person and the penalty/assessment, and its root cause
(disputes are read as symptoms of management gaps). The daily register covers one local day.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from aftersales.domain.rules import InvalidRequest, parse_amount, shown


class DisputeReason(StrEnum):
    """The buyer's reason as the platform files it (000 §5.1.3: item not as described, …)."""

    NOT_AS_DESCRIBED = "not_as_described"
    QUALITY = "quality"
    NOT_RECEIVED = "not_received"
    WRONG_ITEM = "wrong_item"
    COUNTERFEIT = "counterfeit"
    SERVICE = "service"
    OTHER = "other"


REASON_LABEL = {
    DisputeReason.NOT_AS_DESCRIBED: "描述不符 not as described", DisputeReason.QUALITY: "质量问题 quality",
    DisputeReason.NOT_RECEIVED: "未收到货 not received", DisputeReason.WRONG_ITEM: "错发 wrong item",
    DisputeReason.COUNTERFEIT: "假冒 counterfeit", DisputeReason.SERVICE: "服务 service", DisputeReason.OTHER: "其他 other",
}


def check_reason(raw: object) -> DisputeReason:
    try:
        return DisputeReason(str(raw).strip())
    except ValueError:
        raise InvalidRequest("bad_reason", f"未知维权原因 unknown dispute reason {shown(raw)}; one of {', '.join(r.value for r in DisputeReason)}") from None


def check_order_for_dispute(order_id: str, status: str, paid_amount: Decimal) -> None:
    """§1.8: a dispute is linked to the original sales order; an unpaid order has nothing to dispute."""
    if status in ("awaiting_payment", "cancelled") and paid_amount <= 0:
        raise InvalidRequest("order_not_paid", f"订单 {order_id} 未付款({status})，不能登记维权 order {order_id} was never paid ({status}): nothing to dispute")


def check_claim(raw: object | None, paid_amount: Decimal) -> Decimal:
    """The amount the buyer claims (optional): at most what was paid."""
    if raw is None or str(raw).strip() == "":
        return Decimal("0.00")
    amount = parse_amount(raw, "claimed_amount")
    if amount > paid_amount:
        raise InvalidRequest("claim_above_paid", f"维权金额 {amount} 超过订单实付 {paid_amount} the claimed amount is above what was paid ({paid_amount})")
    return amount


class DisputeResult(StrEnum):
    """How the dispute ended; the values are case outcomes the statistics know (002 §7.1)."""

    SETTLED = "settled"  # agreed with the buyer
    REFUNDED = "refunded"  # the platform ruled for the buyer; the buyer was refunded
    REJECTED = "rejected"  # the platform rejected the buyer's claim
    WITHDRAWN = "withdrawn"  # the buyer withdrew


class Department(StrEnum):
    WAREHOUSE = "warehouse"
    QUALITY = "quality"
    LOGISTICS = "logistics"
    AFTER_SALES = "after_sales"
    CUSTOMER_SERVICE = "customer_service"
    PURCHASING = "purchasing"
    OPERATIONS = "operations"  # listings, descriptions, pricing
    NONE = "none"  # nobody in the shop: only when the buyer's claim was not upheld


class RootCause(StrEnum):
    PRODUCT_QUALITY = "product_quality"
    DESCRIPTION = "description"  # listing, photos, size chart
    PACKING_SHIPPING = "packing_shipping"
    CARRIER = "carrier"
    SERVICE = "service"
    PROCESS = "process"
    BUYER = "buyer"  # unreasonable or malicious claim
    OTHER = "other"


class Closing(BaseModel):
    """§1.8: how a dispute ended and who was responsible: what the closing form decides, checked by
    ``closing_problem`` and kept in the case's details (``details.DisputeDetails.closing``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    result: DisputeResult
    final_explanation: str
    handling_opinion: str
    responsible_department: Department
    responsible_person: str
    penalty: str
    root_cause: RootCause
    root_cause_detail: str


def closing_problem(closing: Closing) -> str | None:
    """§1.8: no closing without responsible department, responsible person and penalty/assessment,
    and without the final explanation, handling opinion and root cause. Returns what is missing."""
    missing = [label for value, label in (
        (closing.final_explanation, "最终说明 final explanation"),
        (closing.handling_opinion, "处理意见 handling opinion"),
        (closing.responsible_person, "责任人 responsible person"),
        (closing.penalty, "处罚/考核结果 penalty or assessment"),
        (closing.root_cause_detail, "根本原因说明 root cause"),
    ) if not value.strip()]
    if missing:
        return "结案须填写 closing needs: " + "; ".join(missing)
    if closing.responsible_department == Department.NONE and closing.result not in (DisputeResult.REJECTED, DisputeResult.WITHDRAWN):
        return "买家诉求成立时须指定责任部门 the buyer's claim was upheld: name the responsible department (not 'none')"
    return None


def register_window(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """One local day of the daily register, as aware datetimes [start, end)."""
    start = datetime.combine(day, time.min, tzinfo=tz)
    return start, start + timedelta(days=1)


def yesterday(now: datetime, tz: ZoneInfo) -> date:
    return now.astimezone(tz).date() - timedelta(days=1)
