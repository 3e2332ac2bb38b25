"""Tasks of the compensation (§1.3): check a request, and pay it once through the platform.

Cash → a platform refund of kind ``compensation`` (on top of the price); a partial refund → a goods
refund (capped at what was paid); a coupon → ``POST /api/coupons``; goods → a re-shipment. Each call
carries the idempotency key ``compensation-<case>``, the task a business cache key and the ledger
line a unique key: paid exactly once, whatever retries or resumes.

Cash and a partial refund are platform refunds: their ledger line is ``platform_paid`` and carries
the amount the platform confirmed under the refund's reference, so finance's platform-paid total
reconciles with the platform's statement. A coupon (a voucher, no money paid) and goods (a
re-shipment) move no money through the platform: their lines stay informational.
"""

from __future__ import annotations

from prefect import task
from sqlmodel import Session

from aftersales.domain.compensation_rules import CompensationForm, CompensationRequest, parse_goods, validate_compensation_request
from aftersales.domain.models import Role, Staff
from aftersales.domain.settings import get_settings
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope
from aftersales.integrations.platform import Order, PlatformClient, RefundKind
from aftersales.tasks.cases import load_case, per_case
from aftersales.tasks.exchange import stock_of
from aftersales.tasks.intake import order_facts
from aftersales.tasks.notify import notify_in_session, send_pending
from aftersales.tasks.policy import OUTSIDE_EFFECT


def staff_role(session: Session, staff_id: str) -> Role | None:
    member = session.get(Staff, staff_id)
    return Role(member.role) if member is not None and member.active else None


async def compensation_request(platform: PlatformClient, order_id: str, form: str, amount: str | None, reason: str,
                               bearer: str, requested_by: str, goods: list[str] | None) -> tuple[Order, CompensationRequest]:
    """Check a compensation request against the order, the staff list and the catalogue."""
    order, facts = await order_facts(platform, order_id)
    wanted = parse_goods(goods) if form == CompensationForm.GOODS.value else []
    catalogue = {}
    for sku, _quantity in wanted:
        level = await stock_of(platform, sku)
        if level is not None:
            catalogue[sku] = (level.unit_price, level.available)
    with session_scope() as session:
        role = staff_role(session, requested_by)
    return order, validate_compensation_request(facts, form, amount, reason, bearer, role, wanted, catalogue)


def request_from_details(case) -> CompensationRequest:
    details = case.details
    return CompensationRequest(CompensationForm(details["form"]), case.amount, details["bearer"],
                               tuple((sku, int(quantity)) for sku, quantity in details.get("goods", [])))


@task(name="pay-compensation", cache_key_fn=per_case("compensation-pay"), **OUTSIDE_EFFECT)
async def pay_compensation(case_id: str, approved_by: str) -> dict:
    """§1.3: give the buyer the approved compensation, once, and write finance's ledger line."""
    case = load_case(case_id)
    request = request_from_details(case)
    key = f"compensation-{case_id}"
    reason = f"补偿 compensation: {case.reason}"[:200]
    rules = get_settings().rules
    # a platform refund is booked at what the platform confirmed; a coupon or goods at their value
    amount, platform_paid = request.amount, False
    async with PlatformClient() as platform:
        if request.form is CompensationForm.CASH:
            paid = await platform.refund(case.order_id, request.amount, reason, case_id, key, RefundKind.COMPENSATION)
            reference, delivery = paid.refund_id, f"款项已退至您的原支付方式 paid to your original payment method ({paid.refund_id})"
            amount, platform_paid = paid.amount, True
        elif request.form is CompensationForm.PARTIAL_REFUND:
            paid = await platform.refund(case.order_id, request.amount, reason, case_id, key, RefundKind.GOODS)
            reference, delivery = paid.refund_id, f"部分货款已原路退回 part of the price paid back to your original payment method ({paid.refund_id})"
            amount, platform_paid = paid.amount, True
        elif request.form is CompensationForm.COUPON:
            coupon = await platform.issue_coupon(case.order_id, request.amount, reason, case_id, key, rules.compensation_coupon_valid_days)
            expires = coupon.expires_at.astimezone(get_settings().tz).date().isoformat()
            reference, delivery = coupon.coupon_id, f"券码 coupon code {coupon.code},有效期至 valid until {expires}"
        else:
            shipment = await platform.reship(case.order_id, request.goods_items(), reason, case_id, key)
            reference, delivery = shipment.reshipment_id, f"商品已寄出 sent with {shipment.carrier},运单号 tracking number {shipment.waybill}"
    with session_scope() as session:
        case = case_store.get_case(session, case_id)
        case_store.add_ledger_line(session, idempotency_key=key, case=case, kind=request.form.ledger_kind, amount=amount,
                                   bearer=request.bearer, approved_by=approved_by, platform_ref=reference, platform_paid=platform_paid,
                                   note=f"{request.form.value}: {case.reason}"[:500])
        if request.form is CompensationForm.GOODS:
            case_store.add_ledger_line(session, idempotency_key=f"{key}-postage", case=case, kind="outbound_postage",
                                       amount=rules.standard_postage, bearer=request.bearer, approved_by=approved_by,
                                       platform_ref=reference, note="补偿商品运费 postage of the goods given as compensation")
        case_store.record_event(session, case_id, "paid", approved_by, "compensation.paid",
                                {"form": request.form.value, "amount": amount, "bearer": request.bearer, "platform_ref": reference})
        notify_in_session(session, case, "paid", "compensation_paid", staff_tags=[Role.FINANCE.value, Role.AGENT.value], buyer=True,
                          compensation_form=request.form.value, delivery=delivery, bearer=request.bearer, approved_by=approved_by,
                          platform_ref=reference)
    send_pending(case_id)
    return {"platform_ref": reference, "amount": str(amount)}
