"""§1.5 Repair as Prefect tasks: open the repair order, ask the buyer to send the item, book the
costs. The costs and the postage refund go through ``tasks.money.move_money``, exactly once."""

from __future__ import annotations

from decimal import Decimal
from functools import partial

from prefect import task

from aftersales.domain.details import RepairDetails, details_of
from aftersales.domain.models import Case, Role
from aftersales.domain.repair_rules import RepairTerms
from aftersales.domain.settings import get_settings
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope
from aftersales.integrations.platform import shop_platform
from aftersales.tasks.cases import load_case, per_case
from aftersales.tasks.money import Booking, Entry, Moved, Movement, Moves, move, move_money
from aftersales.tasks.notify import notify_in_session, send_pending
from aftersales.tasks.policy import OUTSIDE_EFFECT

# the one money task, under a name that says what moves here
BOOK_REPAIR_COSTS = move_money.with_options(name="book-repair-costs")


def terms_of(case: Case) -> RepairTerms:
    return details_of(case, RepairDetails).terms


@task(name="ask-buyer-to-send-in", cache_key_fn=per_case("send-in"), **OUTSIDE_EFFECT)
async def ask_buyer_to_send_in(case_id: str, quote: Decimal, approved_by: str) -> dict:
    """The repair goes ahead: the buyer gets the address and the terms (free, or the quote)."""
    case = load_case(case_id)
    async with shop_platform(case) as platform:
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
                          item=details_of(case, RepairDetails).item, terms=terms, ship_days=rules.repair_buyer_ship_days, bearer=bearer,
                          return_address=address.text)
    send_pending(case_id)
    return {"quote": str(quote), "bearer": bearer}


async def book_repair_costs(case_id: str, quote: Decimal, approved_by: str, repair_cost: Decimal, postage_back: Decimal,
                            postage_in: Decimal) -> list[Moved]:
    """The repair's costs as ledger lines, once. Inside warranty the seller also refunds the postage
    the buyer paid to send the item in (a postage refund on top of the price, never capped by it)."""
    key = f"repair-{case_id}"
    bearer = terms_of(load_case(case_id)).bearer(quote)
    movements = []
    if bearer == "seller" and postage_in > 0:
        movements.append(Movement(Moves.POSTAGE_REFUND, f"{key}-postage-in", postage_in, "返修寄件运费 postage of sending the item for repair"))
    book = partial(_book_repair_costs, key=key, bearer=bearer, quote=quote, repair_cost=repair_cost, postage_back=postage_back)
    return await move(BOOK_REPAIR_COSTS, case_id, f"repair-costs-{case_id}", movements, approved_by, book)


def _book_repair_costs(case: Case, moved: list[Moved], *, key: str, bearer: str, quote: Decimal, repair_cost: Decimal,
                       postage_back: Decimal) -> Booking:
    """The postage-in refund is ``platform_paid`` at the amount the platform confirmed under its
    reference; the repair cost and the postage back are the shop's own costs, no platform payment."""
    dept = Role.QUALITY.value
    entries = []
    if repair_cost > 0:
        entries.append(Entry(f"{key}-cost", "repair_cost", repair_cost, bearer, f"维修成本 repair cost; quote to the buyer {quote:.2f}",
                             department=dept))
    if postage_back > 0:
        entries.append(Entry(f"{key}-postage-back", "outbound_postage", postage_back, bearer,
                             "返修寄回运费 postage of sending the repaired item back", department=dept))
    refund = moved[0] if moved else None
    if refund is not None:
        entries.append(Entry(f"{key}-postage-in", "return_postage", refund.amount, "seller",
                             "保修期内退还买家寄修运费 in warranty: the buyer's postage refunded", platform_ref=refund.reference,
                             platform_paid=True, department=dept))
    return Booking(entries, "costs-booked", "repair.costs_booked",
                   {"bearer": bearer, "quote": quote, "repair_cost": repair_cost, "postage_back": postage_back,
                    "postage_in_refunded": refund.amount if refund else Decimal("0"), "refund_id": refund.reference if refund else ""})
