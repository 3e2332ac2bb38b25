"""Registering a dispute (§1.8): the order must exist on the platform and have been paid; bad input
is refused and nothing is recorded; the buyer's contact details go into the case database."""

from __future__ import annotations

from aftersales.domain.calendar import business_calendar, shop_time, utcnow
from aftersales.domain.dispute_rules import REASON_LABEL, check_claim, check_order_for_dispute, check_reason
from aftersales.domain.rules import InvalidRequest, check_order_id, check_ref, check_text, parse_amount
from aftersales.domain.settings import get_settings
from aftersales.domain.models import Role
from aftersales.intake.core import NewCase, Opened, open_case
from aftersales.intake.registry import ProcessEntry, ProcessRequest, cli
from aftersales.integrations.platform import OrderNotFound, shop_platform
from aftersales.tasks.dispute import case_fields


def dispute_case_id(order_id: str, platform_ref: str | None = None) -> str:
    return f"dispute-{order_id}" + (f"-{platform_ref}" if platform_ref else "")


async def open_dispute(order_id: str, reason: str, buyer_statement: str, *, platform_ref: str | None = None,
                       claimed_amount: str | None = None, registered_by: str = "S010") -> Opened:
    """§1.8 registration: the order must exist on the platform and have been paid; bad input is
    refused at once and nothing is recorded; else the dispute's run starts."""
    checked_reason = check_reason(reason)
    order_id = check_order_id(order_id)
    statement = (buyer_statement or "").strip()
    if not statement:
        raise InvalidRequest("statement_required", "请填写买家的维权理由 the buyer's statement is required")
    statement = check_text(statement, "statement", "买家陈述", 1000)
    ref = check_ref(platform_ref, "platform_ref", "平台维权编号")
    registered_by = check_text(registered_by, "registered_by", "维权专员工号", 64) or "S010"
    if claimed_amount is not None and str(claimed_amount).strip():
        parse_amount(claimed_amount, "claimed_amount")  # the format before the platform call
    async with shop_platform() as platform:
        try:
            order = await platform.get_order(order_id)
        except OrderNotFound:
            raise InvalidRequest("unknown_order", f"订单 {order_id} 不存在 order {order_id} not found on the platform: a dispute needs its original sales order") from None
    check_order_for_dispute(order.order_id, order.status, order.paid_amount)
    claimed = check_claim(claimed_amount, order.paid_amount)
    case_id = dispute_case_id(order.order_id, ref)
    reply_due = business_calendar().add_days(utcnow(), get_settings().rules.dispute_reply_days)
    dispute = {
        "order_id": order.order_id, "reason": checked_reason.value, "reason_label": REASON_LABEL[checked_reason],
        "buyer_statement": statement, "platform_ref": ref, "claimed_amount": str(claimed), "registered_by": registered_by,
        "customer": order.customer.model_dump(mode="json"), "items": [item.model_dump(mode="json") for item in order.items],
        "reply_due": shop_time(reply_due),
    }
    # the buyer's contact details stay in the case database; the run gets the case id only
    new = NewCase(
        fields=case_fields(case_id, dispute), opened=dispute,
        terms={"reason": dispute["reason"], "claimed_amount": dispute["claimed_amount"]}, actor=registered_by,
        notice="dispute_registered", staff_tags=(Role.DISPUTE.value,), buyer=True,
        say=lambda _case: {"dispute_reason": dispute["reason_label"], "buyer_statement": statement,
                           "platform_ref": ref or "", "reply_due": dispute["reply_due"]},
    )
    return await open_case("dispute/dispute", new, {"case_id": case_id}, tags=["process:dispute", f"reason:{checked_reason.value}"])


class DisputeRequest(ProcessRequest):
    order_id: str = cli("--order", "原销售订单号 the original sales order (must exist on the platform)")
    reason: str = cli("--reason", "not_as_described | quality | not_received | wrong_item | counterfeit | service | other")
    buyer_statement: str = cli("--statement", "买家的维权理由 the buyer's reasons")
    platform_ref: str | None = cli("--platform-ref", "平台维权编号 the platform's dispute id", None)
    claimed_amount: str | None = cli("--amount", "涉及金额(元) amount claimed, CNY", None)
    registered_by: str = cli("--registered-by", "维权专员工号 the dispute specialist's staff id", "S010")


PROCESS = ProcessEntry(
    name="dispute", section="§1.8", title="Disputes (§1.8) 维权", route="disputes", request=DisputeRequest, opener=open_dispute,
    summary="Register a dispute against its order; it waits for the shop's reply.",
    demo=(DisputeRequest(order_id="O20261120-004", reason="not_as_described", platform_ref="WQ20261121001", claimed_amount="300.00",
                         buyer_statement="净化器噪音远大于页面标注的 35 分贝 much louder than the 35 dB listed"),),
)
