"""Tasks of the exchange (§1.2): read the terms, promise the replacement, settle the price difference.

The replacement itself is shipped with ``tasks.money.reship_items`` and a refund instead of it with
``tasks.money.refund_buyer``; the price difference is declared here and moves through the same
``tasks.money.move_money``, exactly once.
"""

from __future__ import annotations

from decimal import Decimal
from functools import partial

from prefect import task

from aftersales.domain.calendar import utcnow
from aftersales.domain.details import ExchangeDetails, details_of
from aftersales.domain.exchange_rules import ExchangeTerms, PriceDifference, validate_exchange_request
from aftersales.domain.models import Case, Role
from aftersales.domain.rules import InvalidRequest, PostageLine, ReturnKind
from aftersales.domain.settings import get_settings
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope
from aftersales.integrations.platform import NotOffered, Order, OrderNotFound, ShopPlatform, StockLevel, shop_platform
from aftersales.tasks.cases import load_case, per_case
from aftersales.tasks.intake import order_facts
from aftersales.tasks.money import Booking, Entry, Moved, Movement, Moves, confirmed_shares, move, move_money
from aftersales.tasks.notify import notify_in_session, send_pending
from aftersales.tasks.policy import OUTSIDE_EFFECT

# the one money task, under a name that says what moves here
SETTLE_PRICE_DIFFERENCE = move_money.with_options(name="settle-price-difference")


async def stock_of(platform: ShopPlatform, sku: str, *, priced: bool = False) -> StockLevel | None:
    """The catalogue's entry for ``sku``; None when the catalogue does not know it, or the platform
    keeps no catalogue (TOP: the stock is in the warehouse's system; the warehouse ships by hand)."""
    try:
        return await platform.get_stock(sku)
    except OrderNotFound:  # the platform answers 404 for an unknown SKU too
        return None
    except NotOffered:
        if priced:  # the replacement's price is needed, and only a catalogue has it
            raise InvalidRequest("no_catalogue", f"平台不提供商品库，无法确定 {sku} 的价格：请在千牛处理换货 the platform keeps no "
                                                 f"catalogue to price {sku}: handle this exchange in Qianniu") from None
        return None


async def exchange_terms(platform: ShopPlatform, order_id: str, sku: str, new_sku: str, quantity: int | str,
                         kind: ReturnKind) -> tuple[Order, ExchangeTerms, StockLevel | None]:
    """Check an exchange request against the order and the catalogue (raises InvalidRequest)."""
    order, facts = await order_facts(platform, order_id)
    replacement = await stock_of(platform, new_sku or sku, priced=True)
    ordered = {item.sku: (item.unit_price, item.quantity) for item in order.items}
    terms = validate_exchange_request(facts, ordered, sku, new_sku or sku, quantity,
                                      replacement.unit_price if replacement else None, kind, utcnow(), get_settings().rules)
    return order, terms, replacement


@task(name="promise-replacement", cache_key_fn=per_case("exchange-promise"), **OUTSIDE_EFFECT)
async def promise_replacement(case_id: str, agreed_by: str, by_deadline: bool) -> dict:
    """§1.2 after agreement: check the replacement's stock before promising it, then send the buyer
    the return address — with the promise, or (out of stock) with a refund offered instead.

    Decided once (business cache key): a resumed run keeps the promise it made."""
    case = load_case(case_id)
    terms = details_of(case, ExchangeDetails).terms
    async with shop_platform(case) as platform:
        level = await stock_of(platform, terms.new_sku)
        address = await platform.get_return_address(case.order_id)
    in_stock = level is not None and level.can_ship(terms.quantity)
    rules = get_settings().rules
    with session_scope() as session:
        case_store.record_event(session, case_id, "agreed", agreed_by, "exchange.agreed",
                                {"by_deadline": by_deadline, "replacement_in_stock": in_stock,
                                 "available": level.available if level else 0, "return_address": address.model_dump(mode="json")})
        case = case_store.set_stage(session, case_id, "buyer-shipment")
        context = dict(return_address=address.text,
                       ship_days=rules.buyer_ship_days, new_sku=terms.new_sku, new_name=level.name if level else terms.new_sku)
        if in_stock:
            notify_in_session(session, case, "agreed", "exchange_agreed", buyer=True, settlement=terms.settlement.value,
                              difference=f"{abs(terms.difference):.2f}", **context)
        else:
            notify_in_session(session, case, "agreed", "exchange_out_of_stock", staff_tags=[Role.AGENT.value], buyer=True, **context)
    send_pending(case_id)
    return {"in_stock": in_stock}


@task(name="replacement-in-stock", cache_key_fn=per_case("exchange-ship-decision"), **OUTSIDE_EFFECT)
async def replacement_in_stock(case_id: str) -> bool:
    """Is the replacement still there now that the goods are back? Decided once, so a resumed run
    does not change its mind after the last piece has gone into our own parcel."""
    case = load_case(case_id)
    terms = details_of(case, ExchangeDetails).terms
    async with shop_platform(case) as platform:
        level = await stock_of(platform, terms.new_sku)
    in_stock = level is not None and level.can_ship(terms.quantity)
    with session_scope() as session:
        case_store.record_event(session, case_id, "replacement-stock", "system", "exchange.stock_checked",
                                {"sku": terms.new_sku, "available": level.available if level else 0, "in_stock": in_stock})
    return in_stock


async def settle_price_difference(case_id: str, approved_by: str, postage: list[PostageLine]) -> list[Moved]:
    """§1.2 price difference: charge the buyer when the replacement costs more, refund them when it
    costs less; and the return postage by fault (§1.1: the seller refunds it when at fault)."""
    terms = details_of(load_case(case_id), ExchangeDetails).terms
    difference = abs(terms.difference)
    reason = f"换货差价 exchange price difference {terms.sku} → {terms.new_sku}"
    movements = []
    if terms.settlement is PriceDifference.CHARGE:
        movements.append(Movement(Moves.CHARGE, f"charge-{case_id}-price-difference", difference, reason))
    elif terms.settlement is PriceDifference.REFUND:
        movements.append(Movement(Moves.REFUND, f"refund-{case_id}-price-difference", difference, reason))
    owed_postage = sum((line.add_to_refund for line in postage if line.add_to_refund > 0), Decimal("0"))
    if owed_postage > 0:
        movements.append(Movement(Moves.POSTAGE_REFUND, f"refund-{case_id}-exchange-postage", owed_postage,
                                  "换货退货运费 return postage of the exchange"))
    book = partial(_book_price_difference, terms=terms, postage=postage)
    return await move(SETTLE_PRICE_DIFFERENCE, case_id, f"exchange-money-{case_id}", movements, approved_by, book)


def _book_price_difference(case: Case, moved: list[Moved], *, terms: ExchangeTerms, postage: list[PostageLine]) -> Booking:
    """Each platform refund is a ``platform_paid`` line at the amount the platform confirmed under
    its reference: the refunded difference, and the postage lines added to the postage refund (their
    amounts add up to what the platform paid). A charged difference is money the platform collects
    from the buyer, not a payment: it stays an informational line under the charge's reference, and
    so does postage the buyer bears."""
    difference = abs(terms.difference)
    settled = next((m for m in moved if m.movement.moves in (Moves.CHARGE, Moves.REFUND)), None)
    postage_refund = next((m for m in moved if m.movement.moves is Moves.POSTAGE_REFUND), None)
    refs = {name: m.reference for name, m in (("difference", settled), ("postage", postage_refund)) if m is not None}
    owed = [line.add_to_refund for line in postage if line.add_to_refund > 0]
    shares = confirmed_shares(postage_refund.amount, owed) if postage_refund else []
    entries = []
    if settled is not None:
        charged = settled.movement.moves is Moves.CHARGE
        entries.append(Entry(f"exchange-{case.id}-price-difference", "price_difference", settled.amount if not charged else difference,
                             "buyer" if charged else "seller",
                             ("买家补差价 the buyer pays the difference" if charged else "差价退还买家 the difference refunded to the buyer")
                             + f" {terms.sku} → {terms.new_sku}", platform_ref=settled.reference, platform_paid=settled.paid_to_buyer))
    for index, line in enumerate(postage):
        paid_share = line.add_to_refund > 0 and bool(shares)
        entries.append(Entry(f"exchange-{case.id}-{line.kind}-{line.bearer}-{index}", line.kind, shares.pop(0) if paid_share else line.amount,
                             line.bearer, line.note, platform_ref=refs["postage"] if paid_share else "", platform_paid=paid_share))
    refunded_difference = settled.amount if settled is not None and settled.paid_to_buyer else difference
    booking = Booking(entries, "price-difference", "exchange.price_difference_settled",
                      {"settlement": terms.settlement.value, "difference": refunded_difference,
                       "postage_refunded": postage_refund.amount if postage_refund else Decimal("0"), "platform_refs": refs})
    if settled is not None:
        booking.notice, booking.staff_tags, booking.buyer = "exchange_price_difference", [Role.FINANCE.value], True
        booking.context = dict(settlement=terms.settlement.value, difference=f"{difference:.2f}", platform_ref=settled.reference)
    return booking
