"""§1.5 Repair as Prefect tasks: open the repair order, ask the buyer to send the item, book the
costs. Money moves once: platform idempotency key, business cache key, unique ledger key."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from prefect import task

from aftersales.domain.models import Case, Role
from aftersales.domain.repair_rules import RepairScope, RepairTerms
from aftersales.domain.settings import get_settings
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope
from aftersales.integrations.platform import PlatformClient, RefundKind
from aftersales.tasks.cases import load_case, per_case
from aftersales.tasks.notify import notify_in_session, send_pending
from aftersales.tasks.policy import OUTSIDE_EFFECT


def terms_of(case: Case) -> RepairTerms:
    return RepairTerms(in_warranty=case.details["in_warranty"], warranty_ends=datetime.fromisoformat(case.details["warranty_ends"]),
                       scope=RepairScope(case.details["scope"]))


@task(name="ask-buyer-to-send-in", cache_key_fn=per_case("send-in"), **OUTSIDE_EFFECT)
async def ask_buyer_to_send_in(case_id: str, quote: Decimal, approved_by: str) -> dict:
    """The repair goes ahead: the buyer gets the address and the terms (free, or the quote)."""
    case = load_case(case_id)
    async with PlatformClient() as platform:
        address = await platform.get_return_address(case.order_id)
    rules = get_settings().rules
    bearer = terms_of(case).bearer(quote)
    if bearer == "seller":
        terms = "本次维修免费，寄修运费由本店承担（请保留运费凭证）。The repair is free of charge; we bear the postage both ways (keep your postage receipt)."
    else:
        terms = f"维修报价 ¥{quote:.2f}（含来回运费），寄出即表示接受报价。The quote is CNY {quote:.2f} incl. postage both ways; sending the item accepts it."
    with session_scope() as session:
        case_store.record_event(session, case_id, "send-in", approved_by, "repair.agreed",
                                {"quote": quote, "bearer": bearer, "return_address": address.model_dump(mode="json")})
        case = case_store.set_stage(session, case_id, "buyer-ships")
        notify_in_session(session, case, "send-in", "repair_send_in", staff_tags=[Role.WAREHOUSE.value], buyer=True,
                          item=case.details["item"], terms=terms, ship_days=rules.repair_buyer_ship_days, bearer=bearer,
                          return_address=f"{address.name} {address.phone} {address.address} {address.postcode}")
    send_pending(case_id)
    return {"quote": str(quote), "bearer": bearer}


@task(name="book-repair-costs", cache_key_fn=per_case("repair-costs"), **OUTSIDE_EFFECT)
async def book_repair_costs(case_id: str, quote: Decimal, approved_by: str, repair_cost: Decimal, postage_back: Decimal,
                            postage_in: Decimal) -> dict:
    """The repair's costs as ledger lines, once. Inside warranty the seller also refunds the postage
    the buyer paid to send the item in (a postage refund on top of the price, never capped by it):
    that line is ``platform_paid`` at the amount the platform confirmed under its reference; the
    repair cost and the postage back are the shop's own costs, no platform payment."""
    case = load_case(case_id)
    bearer = terms_of(case).bearer(quote)
    key = f"repair-{case_id}"
    refund_ref, refunded = "", Decimal("0")
    if bearer == "seller" and postage_in > 0:
        async with PlatformClient() as platform:
            refund = await platform.refund(case.order_id, postage_in, "返修寄件运费 postage of sending the item for repair",
                                           case_id, f"{key}-postage-in", RefundKind.POSTAGE)
        refund_ref, refunded = refund.refund_id, refund.amount
    with session_scope() as session:
        case = case_store.get_case(session, case_id)
        dept = Role.QUALITY.value
        if repair_cost > 0:
            case_store.add_ledger_line(session, idempotency_key=f"{key}-cost", case=case, kind="repair_cost", amount=repair_cost,
                                       bearer=bearer, approved_by=approved_by, responsible_department=dept,
                                       note=f"维修成本 repair cost; quote to the buyer {quote:.2f}")
        if postage_back > 0:
            case_store.add_ledger_line(session, idempotency_key=f"{key}-postage-back", case=case, kind="outbound_postage",
                                       amount=postage_back, bearer=bearer, approved_by=approved_by, responsible_department=dept,
                                       note="返修寄回运费 postage of sending the repaired item back")
        if refund_ref:
            case_store.add_ledger_line(session, idempotency_key=f"{key}-postage-in", case=case, kind="return_postage",
                                       amount=refunded, bearer="seller", approved_by=approved_by, platform_ref=refund_ref,
                                       platform_paid=True, responsible_department=dept, note="保修期内退还买家寄修运费 in warranty: the buyer's postage refunded")
        case_store.record_event(session, case_id, "costs-booked", approved_by, "repair.costs_booked",
                                {"bearer": bearer, "quote": quote, "repair_cost": repair_cost, "postage_back": postage_back,
                                 "postage_in_refunded": refunded, "refund_id": refund_ref})
    send_pending(case_id)
    return {"bearer": bearer, "refund_id": refund_ref}
