"""Opening a return (§1.1): the request is checked first (nothing is recorded when it is bad),
then one flow run is started for the case (the case id is the idempotency key)."""

from __future__ import annotations

from aftersales.domain.calendar import utcnow
from aftersales.domain.details import ReturnDetails
from aftersales.domain.masking import mask_text
from aftersales.domain.rules import (
    InvalidRequest,
    ReturnKind,
    approval_level,
    check_order_id,
    check_ref,
    check_skus,
    check_text,
    parse_amount,
    return_kind_of,
    shown,
    validate_return_request,
)
from aftersales.domain.settings import get_settings
from aftersales.domain.models import Process, Role
from aftersales.intake.core import NewCase, Opened, open_case
from aftersales.intake.registry import ProcessEntry, ProcessRequest, cli
from aftersales.integrations.platform import Order, RefundApplication, shop_platform
from aftersales.tasks.intake import order_facts


def return_case_id(order_id: str, request_ref: str | None = None) -> str:
    return f"return-{order_id}" + (f"-{request_ref}" if request_ref else "")


async def open_return(order_id: str, amount: str, reason: str = "", kind: ReturnKind | str = ReturnKind.NO_REASON,
                      requested_by: str = "buyer", missing_skus: list[str] | None = None,
                      request_ref: str | None = None) -> Opened:
    """§1.1 step 1 at the door: refuse a bad request at once (nothing is recorded), else start its run."""
    try:
        kind = ReturnKind(kind)
    except ValueError:
        raise InvalidRequest("unknown_kind", f"未知退货类型 unknown return kind {shown(kind)}; one of {', '.join(k.value for k in ReturnKind)}") from None
    order_id = check_order_id(order_id)
    parse_amount(amount)  # the format first: no platform call for an amount that is not money
    reason = check_text(reason, "reason", "退货原因")
    requested_by = check_text(requested_by, "requested_by", "申请人", 64) or "buyer"
    missing_skus = check_skus(missing_skus or [], "missing_sku")
    request_ref = check_ref(request_ref)
    async with shop_platform() as platform:
        order, facts = await order_facts(platform, order_id)
    checked = validate_return_request(facts, amount, kind, utcnow(), get_settings().rules, missing_skus)
    case_id = return_case_id(order_id, request_ref)
    new = NewCase(
        fields=dict(id=case_id, process=Process.RETURN, order_id=order_id, customer_id=order.customer.customer_id,
                    requested_by=requested_by, reason=mask_text(reason), amount=checked,
                    details=ReturnDetails(kind=kind, missing_skus=missing_skus, free_shipping=order.free_shipping,
                                          customer=order.customer.model_dump(mode="json"),
                                          items=[item.model_dump(mode="json") for item in order.items])),
        opened={"kind": kind.value, "amount": checked, "reason": mask_text(reason), "missing_skus": missing_skus},
        terms={"amount": str(checked), "kind": kind.value, "missing_skus": missing_skus}, actor=requested_by,
        notice="return_opened", staff_tags=(Role.AGENT.value,), buyer=True, say=lambda _case: {"kind": kind.value},
    )
    return await open_case(
        "return/return", new,
        {"case_id": case_id, "order_id": order_id, "amount": str(checked), "reason": mask_text(reason),
         "kind": kind.value, "requested_by": requested_by, "missing_skus": missing_skus},
        tags=["process:return", f"level:{approval_level(checked, get_settings().rules).value}", f"kind:{kind.value}"],
    )


def platform_return_case_id(order_id: str, refund_id: str) -> str:
    """A return the buyer applied for at the platform: the platform's refund id makes it one case."""
    return return_case_id(order_id, f"tb{refund_id}")


async def open_platform_return(refund: RefundApplication, order: Order) -> Opened:
    """A buyer's refund at the platform (TOP) becomes a return (goods sent back) or a refund-only
    case, once per refund id. The platform has checked the window and the amount when it took the
    application; here the amount is held to what the order paid, and the case carries the refund's
    id, phase and deadline, on which it is decided."""
    amount = parse_amount(str(refund.amount), "refund_fee")
    if amount > order.paid_amount:
        raise InvalidRequest("refund_above_paid", f"退款 {refund.refund_id} 申请 {amount} 元，超过订单实付 {order.paid_amount} 元 "
                                                  f"refund {refund.refund_id} asks {amount}, more than the order's {order.paid_amount}")
    reason = check_text(" ".join(part for part in (refund.reason, refund.description) if part), "reason", "退货原因")
    kind = return_kind_of(refund.reason)
    case_id = platform_return_case_id(order.order_id, refund.refund_id)
    new = NewCase(
        fields=dict(id=case_id, process=Process.RETURN, order_id=order.order_id, customer_id=order.customer.customer_id,
                    requested_by="buyer", reason=mask_text(reason), amount=amount,
                    details=ReturnDetails(kind=kind, free_shipping=order.free_shipping, platform_refund_id=refund.refund_id,
                                          platform_phase=refund.phase, goods_back=refund.goods_returned,
                                          platform_deadline=refund.deadline, platform_status=refund.status,
                                          platform_modified=refund.modified_at,
                                          customer=order.customer.model_dump(mode="json"),
                                          items=[item.model_dump(mode="json") for item in order.items])),
        opened={"kind": kind.value, "amount": amount, "reason": mask_text(reason), "platform_refund_id": refund.refund_id,
                "goods_back": refund.goods_returned, "platform_deadline": refund.deadline},
        terms={"amount": str(amount), "kind": kind.value, "missing_skus": []}, actor="buyer",
        notice="return_opened", staff_tags=(Role.AGENT.value,), buyer=True, say=lambda _case: {"kind": kind.value},
    )
    return await open_case(
        "return/return", new,
        {"case_id": case_id, "order_id": order.order_id, "amount": str(amount), "reason": mask_text(reason),
         "kind": kind.value, "requested_by": "buyer", "missing_skus": []},
        tags=["process:return", f"level:{approval_level(amount, get_settings().rules).value}", f"kind:{kind.value}", "platform:taobao"],
    )


class ReturnRequest(ProcessRequest):
    order_id: str = cli("--order", "订单号 order id")
    amount: str = cli("--amount", "申请退款金额(元) amount in CNY as a decimal string in plain notation, e.g. 128.00")
    reason: str = cli("--reason", "退货原因 reason", "")
    kind: str = cli("--kind", "no_reason | quality | wrong_item | refused_at_delivery | short_shipment", ReturnKind.NO_REASON.value)
    requested_by: str = cli("--requested-by", "buyer, or the staff id opening it for the buyer", "buyer")
    missing_skus: list[str] = cli("--missing", "缺件 SKU (short_shipment), repeatable", [])
    request_ref: str | None = cli("--request-ref", "platform's return request id, for a second return on one order", None)


PROCESS = ProcessEntry(
    name="return", section="§1.1", title="Returns (§1.1) 退货", route="returns", request=ReturnRequest, opener=open_return,
    summary="Open a return case. A repeated request opens no second case.",
    # one for each approval level
    demo=(ReturnRequest(order_id="O20261120-001", amount="18.00", reason="颜色不喜欢 colour"),
          ReturnRequest(order_id="O20261120-002", amount="128.00", reason="尺码偏小 too small"),
          ReturnRequest(order_id="O20261120-003", amount="899.00", reason="屏幕有坏点 dead pixels", kind=ReturnKind.QUALITY.value)),
)
