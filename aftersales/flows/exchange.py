"""Exchange (换货) — rulebook §1.2 (004 fig. 5.2; 004 二 “商品退换货的价差处理”).

As the return (§1.1), but the outcome is a replacement shipment:

1. the buyer asks to exchange an item for another (size, colour …); checked against the order, the
   return windows and the catalogue;
2. the seller agrees or refuses within 5 days — on timeout the platform agrees;
3. the replacement's stock is checked before it is promised: in stock → the buyer gets the return
   address and the promise; out of stock → the buyer is told and offered a refund instead (sending
   the item back accepts it; not sending it lets the request close after 7 days);
4. the buyer ships within 7 days — otherwise the request closes;
5. the seller confirms receipt within 10 days — otherwise the system refunds automatically (the
   platform's rule for returns holds for exchanges too);
6. the warehouse inspects: pass (the replacement ships) or fail (no exchange), 2 working days → pass;
7. the stock is checked again; the price difference is charged or refunded, the replacement shipped
   once; sold out in the meantime → the item's price is refunded and the seller bears the postage.

Ledger: the replacement (seller), its postage (seller), the price difference (buyer when charged,
seller when refunded), the return postage by fault as in §1.1.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from functools import partial

from prefect import flow

from aftersales.approvals.exchange_forms import ExchangeInspection, ExchangeInspectionResult
from aftersales.approvals.forms import ReviewDecision
from aftersales.approvals.waits import Decision, WaitSpec, await_decision
from aftersales.domain.calendar import business_calendar
from aftersales.domain.details import ExchangeDetails, details_of
from aftersales.domain.exchange_rules import exchange_postage
from aftersales.domain.models import Case, CaseStatus, Role
from aftersales.domain.outcomes import Outcome
from aftersales.domain.rules import ReturnKind, declared_return_postage
from aftersales.domain.settings import get_settings
from aftersales.flows.returns import buyer_shipment, goods_come_back
from aftersales.flows.returns import seller_review as return_seller_review
from aftersales.flows.returns import receipt_confirmation as return_receipt
from aftersales.tasks.cases import close_case, load_case, open_case
from aftersales.tasks.exchange import promise_replacement, replacement_in_stock, settle_price_difference
from aftersales.tasks.money import refund_buyer, reship_items
from aftersales.tasks.recovery import CASE_RUN


@flow(name="exchange", **CASE_RUN)
async def exchange_flow(case_id: str, order_id: str, sku: str, new_sku: str = "", quantity: int = 1,
                        kind: ReturnKind = ReturnKind.NO_REASON, reason: str = "", requested_by: str = "buyer") -> str:
    """A buyer's exchange request, from application to the replacement shipment (§1.2)."""
    from prefect.runtime import flow_run

    await open_case(case_id, flow_run.id)  # §1.2 step 1: checked and recorded at the door
    case = load_case(case_id)
    if case.status == CaseStatus.CLOSED:
        return case.outcome or "closed"
    terms = details_of(case, ExchangeDetails).terms

    review = await await_decision(case, seller_review(case))
    if review.data.decision == ReviewDecision.REFUSE:
        return await close_case(case_id, Outcome.REFUSED, review.actor, notify="exchange_refused", staff_tags=[Role.AGENT.value], note=review.data.note)
    promise = await promise_replacement(case_id, review.actor, review.by_deadline)

    in_stock = promise["in_stock"]
    back = await goods_come_back(case, buyer_ships(case, review), postage_paid_back, "case_closed",
                                 receipt_of=partial(confirm_receipt, in_stock=in_stock), refund_unconfirmed=False)
    if isinstance(back, str):
        return back
    shipment, receipt, postage = back

    if receipt.by_deadline:
        # nobody confirmed the parcel in time: taken as received and as it was sent back — the buyer
        # asked for a replacement, not a refund (unless it was out of stock when agreed)
        actor = "system"
    else:
        inspection = await await_decision(case, inspect_goods(case, receipt, in_stock))
        if inspection.data.result == ExchangeInspectionResult.FAIL and not inspection.by_deadline:
            return await close_case(case_id, Outcome.INSPECTION_FAILED, inspection.actor, notify="exchange_refused", staff_tags=[Role.AGENT.value], note=inspection.data.note)
        actor = inspection.actor

    if not in_stock:
        # the buyer took the refund offered when the replacement was out of stock
        await refund_buyer(case_id, "refund", case.amount, actor, "换货缺货，改为退款 replacement out of stock: refunded instead", postage)
        return await close_case(case_id, Outcome.REFUNDED_OUT_OF_STOCK, actor, notify="case_closed")
    if not await replacement_in_stock(case_id):
        # promised, but sold out while the parcel travelled: the shop cannot keep its word, so it
        # refunds and bears the return postage whatever the reason for the exchange
        await refund_buyer(case_id, "refund", case.amount, actor, "换货商品售罄，改为退款 replacement sold out: refunded instead",
                           postage_paid_back(case, shipment, seller_at_fault=True))
        return await close_case(case_id, Outcome.REFUNDED_OUT_OF_STOCK, actor, notify="exchange_out_of_stock_refund",
                                staff_tags=[Role.AGENT.value, Role.SUPERVISOR.value], new_sku=terms.new_sku)

    await settle_price_difference(case_id, actor, postage)
    await reship_items(case_id, "replacement", [{"sku": terms.new_sku, "quantity": terms.quantity}], terms.replacement_value,
                       actor, f"换货发出 replacement for {terms.sku}")
    return await close_case(case_id, Outcome.EXCHANGED, actor, notify="case_closed")


# --- the waits of §1.2: the return's, with the exchange's words ----------------------------------


def seller_review(case: Case) -> WaitSpec:
    return replace(return_seller_review(case), title="换货审核 Exchange review")


def buyer_ships(case: Case, review: Decision) -> WaitSpec:
    return replace(buyer_shipment(case, review), title="等待买家寄回换货商品 Waiting for the buyer to send the item back")


def confirm_receipt(case: Case, shipment: Decision, in_stock: bool) -> WaitSpec:
    days = get_settings().rules.receipt_confirm_days
    zh, en = (("视为已收到并发出换货（届时售罄则退款）", "taken as received, the replacement ships (sold out by then: the refund is paid)") if in_stock else
              ("视为已收到并退款（换货商品缺货）", "taken as received, the refund is paid (the replacement is out of stock)"))
    return replace(return_receipt(case, shipment), title="确认收到换货退回的商品 Confirm the item sent back for an exchange arrived",
                   default_action=f"{days} 天未确认收货，{zh} not confirmed in {days} days: {en}")


def inspect_goods(case: Case, receipt: Decision, in_stock: bool = True) -> WaitSpec:
    rules = get_settings().rules
    days = rules.inspection_working_days
    # what passing means for this case: the replacement ships, or (out of stock when agreed) the refund is paid
    zh, en = (("视为通过并发出换货（届时售罄则退款）", "passes, the replacement ships (sold out by then: the refund is paid)") if in_stock else
              ("视为通过并退款（换货商品缺货）", "passes, the refund is paid (the replacement is out of stock)"))
    return WaitSpec(
        step="inspection",
        title="换货验货 Inspect the goods sent back for an exchange",
        form=ExchangeInspection,
        deadline=business_calendar().add_working_days(receipt.answered_at, rules.inspection_working_days),
        default_action=f"{days} 个工作日未验货，{zh} not inspected in {days} working days: {en}",
        default_input={"result": ExchangeInspectionResult.PASS.value, "note": "超时视为通过 passed at the deadline"},
        addressed_to=Role.WAREHOUSE.value,
        check=lambda form: "不通过须写验货说明 a fail needs an inspection note" if form.result == ExchangeInspectionResult.FAIL and not form.note.strip() else None,
    )


def postage_paid_back(case: Case, shipment: Decision, seller_at_fault: bool | None = None) -> list:
    """§1.1 postage of the parcel sent back, by fault."""
    kind = details_of(case, ExchangeDetails).kind
    declared = Decimal(shipment.data.return_postage) if not shipment.by_deadline else Decimal("0")
    paid = declared_return_postage(declared, bool(shipment.data.staff_id), get_settings().rules.standard_postage,
                                   refunded=kind.seller_at_fault if seller_at_fault is None else seller_at_fault)
    return exchange_postage(kind, paid, seller_at_fault)


# --- running it ------------------------------------------------------------------------------------


def deployments(schedule) -> list:
    return [
        exchange_flow.to_deployment(
            name="exchange", tags=["process:exchange"],
            description="§1.2 换货 Exchange: one run per case, named after the case. Opened by `aftersales exchange open`.",
        )
    ]
