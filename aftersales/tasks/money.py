"""Money and goods that move, each exactly once: refunds (``refund_buyer``), re-shipments
(``reship_items``) and compensation in every form (``pay_compensation``: the compensation process,
a review's offer, a complaint's remedy).

Three guards, from the inside out: the platform call carries an idempotency key derived from case
and step (a retried HTTP call or task is answered with the first result); the task's business cache
key skips it on a resumed run; the ledger line has the same key as a unique column. Then, in the
same transaction as the ledger line, the case event and the messages — so finance's ledger, the
trail and what the buyer was told cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from prefect import task

from aftersales.domain.compensation_rules import CompensationForm
from aftersales.domain.rules import PostageLine
from aftersales.domain.settings import get_settings
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope
from aftersales.integrations.platform import PlatformClient, Refund, RefundKind
from aftersales.tasks.cases import load_case
from aftersales.tasks.notify import notify_in_session, send_pending
from aftersales.tasks.policy import OUTSIDE_EFFECT


def _per_case_step(prefix: str):
    def key(_context, parameters) -> str:
        return f"{prefix}-{parameters['case_id']}-{parameters['step']}"

    return key


@task(name="refund-buyer", cache_key_fn=_per_case_step("refund"), **OUTSIDE_EFFECT)
async def refund_buyer(case_id: str, step: str, goods_amount: Decimal, approved_by: str, reason: str,
                       postage: list[PostageLine] | None = None) -> dict:
    """Refund the buyer once: the goods (less any postage share of theirs), and separately the
    postage the rulebook puts on the seller — the platform caps goods refunds at the price paid.

    The ledger records what the platform confirmed: the refund line's amount is the platform's
    refund amount under its reference (for a free-shipping no-reason return, the price less the
    buyer's half of the outbound postage), and each platform refund is one ``platform_paid`` line,
    so finance's platform-paid total reconciles with the platform's statement. The postage lines
    that moved no money (the buyer's return postage, the buyer's deducted half, the seller's half)
    stay as informational lines with their bearer; they name the refund in the note, not as their
    platform reference, so the lines under a reference add up to what the platform paid."""
    postage = postage or []
    goods = goods_amount + sum((line.add_to_refund for line in postage if line.add_to_refund < 0), Decimal("0"))
    owed_postage = sum((line.add_to_refund for line in postage if line.add_to_refund > 0), Decimal("0"))
    key = f"refund-{case_id}-{step}"
    case = load_case(case_id)
    paid: dict[str, Refund] = {}
    async with PlatformClient() as platform:
        if goods > 0:
            paid["goods"] = await platform.refund(case.order_id, goods, reason, case_id, key)
        if owed_postage > 0:
            paid["postage"] = await platform.refund(case.order_id, owed_postage, f"{reason}（运费 postage）", case_id, f"{key}-postage", RefundKind.POSTAGE)
    refs = {name: refund.refund_id for name, refund in paid.items()}
    goods_paid = paid["goods"].amount if "goods" in paid else Decimal("0.00")
    postage_paid = paid["postage"].amount if "postage" in paid else Decimal("0.00")
    # the postage refund covers the lines that add to the refund; their amounts add up to what the
    # platform confirmed (one line in practice: the seller-at-fault return postage)
    postage_shares = _shares(postage_paid, [line.add_to_refund for line in postage if line.add_to_refund > 0]) if "postage" in paid else []
    with session_scope() as session:
        case = case_store.get_case(session, case_id)
        case_store.add_ledger_line(session, idempotency_key=key, case=case, kind="refund", amount=goods_paid, bearer="seller",
                                   approved_by=approved_by, platform_ref=refs.get("goods", ""), platform_paid="goods" in paid,
                                   note=reason if "goods" in paid else f"{reason}（平台未退款 nothing refunded by the platform）")
        for index, line in enumerate(postage):
            line_key = f"{key}-{line.kind}-{line.bearer}-{index}"
            if line.add_to_refund > 0 and postage_shares:
                case_store.add_ledger_line(session, idempotency_key=line_key, case=case, kind=line.kind, amount=postage_shares.pop(0),
                                           bearer=line.bearer, approved_by=approved_by, platform_ref=refs["postage"], platform_paid=True,
                                           note=line.note)
                continue
            case_store.add_ledger_line(session, idempotency_key=line_key, case=case, kind=line.kind, amount=line.amount,
                                       bearer=line.bearer, approved_by=approved_by, note=_informational_note(line, refs.get("goods", "")))
        total = goods_paid + postage_paid
        case_store.record_event(session, case_id, f"{step}:refunded", approved_by, "refund.paid",
                                {"amount": total, "goods_amount": goods_paid, "postage": postage_paid, "platform_refs": refs,
                                 "requested": {"goods": goods, "postage": owed_postage}, "reason": reason})
        notify_in_session(session, case, f"{step}:refunded", "refund_paid", staff_tags=["finance"], buyer=True,
                          refund_amount=f"{total:.2f}", reason=reason)
    send_pending(case_id)
    return {"refunds": refs, "amount": str(total)}


def _shares(confirmed: Decimal, asked: list[Decimal]) -> list[Decimal]:
    """Split what the platform confirmed over the lines it pays: each line as asked, the last one
    taking any difference, so the lines add up to the platform's amount exactly."""
    shares = list(asked[:-1])
    return shares + [confirmed - sum(shares, Decimal("0"))] if asked else []


def _informational_note(line: PostageLine, goods_ref: str) -> str:
    """The note of a postage line that moved no money through the platform."""
    if not goods_ref:
        suffix = "（无平台退款 no platform refund）"
    elif line.add_to_refund < 0:
        suffix = f"（已从退款 {goods_ref} 中扣除 deducted from refund {goods_ref}）"
    else:
        suffix = f"（关联退款 refund {goods_ref}）"
    return f"{line.note}{suffix}"[:500]


@task(name="reship-items", cache_key_fn=_per_case_step("reship"), **OUTSIDE_EFFECT)
async def reship_items(case_id: str, step: str, items: list[dict], value: Decimal, approved_by: str, reason: str) -> dict:
    """Re-ship goods once; the goods and the postage are the seller's cost (§1.1)."""
    key = f"reship-{case_id}-{step}"
    case = load_case(case_id)
    async with PlatformClient() as platform:
        shipment = await platform.reship(case.order_id, items, reason, case_id, key)
    with session_scope() as session:
        case = case_store.get_case(session, case_id)
        case_store.add_ledger_line(session, idempotency_key=key, case=case, kind="reshipment", amount=value, bearer="seller",
                                   approved_by=approved_by, platform_ref=shipment.reshipment_id, note=reason)
        case_store.add_ledger_line(session, idempotency_key=f"{key}-postage", case=case, kind="outbound_postage",
                                   amount=get_settings().rules.standard_postage, bearer="seller", approved_by=approved_by,
                                   platform_ref=shipment.reshipment_id, note="补发运费 postage of the re-shipment")
        case_store.record_event(session, case_id, f"{step}:reshipped", approved_by, "goods.reshipped",
                                {"items": items, "carrier": shipment.carrier, "waybill": shipment.waybill})
        notify_in_session(session, case, f"{step}:reshipped", "reshipped", staff_tags=["warehouse"], buyer=True,
                          carrier=shipment.carrier, waybill=shipment.waybill)
    send_pending(case_id)
    return {"reshipment_id": shipment.reshipment_id, "waybill": shipment.waybill}


@dataclass(frozen=True)
class Compensation:
    """A compensation to give, in one of §1.3's forms, and how finance books it."""

    form: CompensationForm  # cash | partial_refund | coupon | goods
    amount: Decimal  # for goods: their value (nothing is paid)
    bearer: str  # who carries the cost in the ledger
    reason: str  # on the platform's record
    note: str  # on the ledger line
    ledger_kind: str  # what finance books it as (see the callers: finance has yet to agree one kind for goods)
    goods: tuple[tuple[str, int], ...] = ()  # (sku, quantity) for goods
    department: str = ""  # the responsible department, when one is known


def _per_case_optional_step(_context, parameters) -> str:
    return f"compensation-{parameters['case_id']}" + (f"-{parameters['step']}" if parameters["step"] else "")


@task(name="pay-compensation", cache_key_fn=_per_case_optional_step, **OUTSIDE_EFFECT)
async def pay_compensation(case_id: str, step: str, compensation: Compensation, approved_by: str, notice: str,
                           staff_tags: list[str], context: dict[str, Any] | None = None) -> dict:
    """Give the approved compensation once (key ``compensation-<case>[-<step>]``: one per case, or
    one per step where a case may compensate more than once) and write finance's ledger line.

    Cash → a platform refund of kind ``compensation`` (on top of the price); a partial refund → a
    goods refund (capped at what was paid); both are ``platform_paid`` lines at the amount the
    platform confirmed under its reference, so the platform-paid total reconciles with the
    platform's statement. A coupon (a voucher) and goods (a re-shipment, plus its postage line)
    move no money through the platform: their lines stay informational."""
    key = f"compensation-{case_id}" + (f"-{step}" if step else "")
    case = load_case(case_id)
    amount, platform_paid, detail = compensation.amount, False, ""
    async with PlatformClient() as platform:
        if compensation.form in (CompensationForm.CASH, CompensationForm.PARTIAL_REFUND):
            kind = RefundKind.COMPENSATION if compensation.form is CompensationForm.CASH else RefundKind.GOODS
            paid = await platform.refund(case.order_id, compensation.amount, compensation.reason, case_id, key, kind)
            reference, amount, platform_paid = paid.refund_id, paid.amount, True
            delivery = (f"款项已退至您的原支付方式 paid to your original payment method ({paid.refund_id})"
                        if compensation.form is CompensationForm.CASH else
                        f"部分货款已原路退回 part of the price paid back to your original payment method ({paid.refund_id})")
        elif compensation.form is CompensationForm.COUPON:
            coupon = await platform.issue_coupon(case.order_id, compensation.amount, compensation.reason, case_id, key,
                                                 get_settings().rules.compensation_coupon_valid_days)
            expires = coupon.expires_at.astimezone(get_settings().tz).date().isoformat()
            reference, delivery = coupon.coupon_id, f"券码 coupon code {coupon.code},有效期至 valid until {expires}"
        else:
            items = [{"sku": sku, "quantity": quantity} for sku, quantity in compensation.goods]
            shipment = await platform.reship(case.order_id, items, compensation.reason, case_id, key)
            reference, detail = shipment.reshipment_id, f"{shipment.carrier} {shipment.waybill}"
            delivery = f"商品已寄出 sent with {shipment.carrier},运单号 tracking number {shipment.waybill}"
    with session_scope() as session:
        case = case_store.get_case(session, case_id)
        case_store.add_ledger_line(session, idempotency_key=key, case=case, kind=compensation.ledger_kind, amount=amount,
                                   bearer=compensation.bearer, approved_by=approved_by, platform_ref=reference, platform_paid=platform_paid,
                                   note=compensation.note[:500], responsible_department=compensation.department)
        if compensation.form is CompensationForm.GOODS:
            case_store.add_ledger_line(session, idempotency_key=f"{key}-postage", case=case, kind="outbound_postage",
                                       amount=get_settings().rules.standard_postage, bearer=compensation.bearer, approved_by=approved_by,
                                       platform_ref=reference, responsible_department=compensation.department,
                                       note="补偿商品运费 postage of the goods given as compensation")
        event = f"{step}:paid" if step else "paid"
        case_store.record_event(session, case_id, event, approved_by, "compensation.paid",
                                {"form": compensation.form.value, "amount": amount, "bearer": compensation.bearer, "platform_ref": reference,
                                 "goods": [list(g) for g in compensation.goods]})
        notify_in_session(session, case, event, notice, staff_tags=staff_tags, buyer=True, compensation_form=compensation.form.value,
                          paid_amount=amount, delivery=delivery, detail=detail, bearer=compensation.bearer, approved_by=approved_by,
                          platform_ref=reference, department=compensation.department, **(context or {}))
    send_pending(case_id)
    return {"platform_ref": reference, "amount": str(amount)}
