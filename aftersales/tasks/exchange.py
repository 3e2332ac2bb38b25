"""Tasks of the exchange (§1.2): read the terms, promise the replacement, settle the price difference.

The replacement itself is shipped with ``tasks.money.reship_items`` and a refund instead of it with
``tasks.money.refund_buyer``: the same three guards (platform idempotency key, business cache key,
unique ledger key) hold for the price difference here.
"""

from __future__ import annotations

from decimal import Decimal

from prefect import task

from aftersales.domain.calendar import utcnow
from aftersales.domain.exchange_rules import ExchangeTerms, PriceDifference, validate_exchange_request
from aftersales.domain.models import Role
from aftersales.domain.rules import PostageLine, ReturnKind
from aftersales.domain.settings import get_settings
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope
from aftersales.integrations.platform import Order, OrderNotFound, PlatformClient, RefundKind, StockLevel
from aftersales.tasks.cases import load_case, per_case
from aftersales.tasks.intake import order_facts
from aftersales.tasks.money import _shares
from aftersales.tasks.notify import notify_in_session, send_pending
from aftersales.tasks.policy import OUTSIDE_EFFECT


async def stock_of(platform: PlatformClient, sku: str) -> StockLevel | None:
    """The catalogue's entry for ``sku``; None when the catalogue does not know it."""
    try:
        return await platform.get_stock(sku)
    except OrderNotFound:  # the platform answers 404 for an unknown SKU too
        return None


async def exchange_terms(platform: PlatformClient, order_id: str, sku: str, new_sku: str, quantity: int | str,
                         kind: ReturnKind) -> tuple[Order, ExchangeTerms, StockLevel | None]:
    """Check an exchange request against the order and the catalogue (raises InvalidRequest)."""
    order, facts = await order_facts(platform, order_id)
    replacement = await stock_of(platform, new_sku or sku)
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
    terms = ExchangeTerms.from_details(case.details)
    async with PlatformClient() as platform:
        level = await stock_of(platform, terms.new_sku)
        address = await platform.get_return_address(case.order_id)
    in_stock = level is not None and level.can_ship(terms.quantity)
    rules = get_settings().rules
    with session_scope() as session:
        case_store.record_event(session, case_id, "agreed", agreed_by, "exchange.agreed",
                                {"by_deadline": by_deadline, "replacement_in_stock": in_stock,
                                 "available": level.available if level else 0, "return_address": address.model_dump(mode="json")})
        case = case_store.set_stage(session, case_id, "buyer-shipment")
        context = dict(return_address=f"{address.name} {address.phone} {address.address} {address.postcode}",
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
    terms = ExchangeTerms.from_details(case.details)
    async with PlatformClient() as platform:
        level = await stock_of(platform, terms.new_sku)
    in_stock = level is not None and level.can_ship(terms.quantity)
    with session_scope() as session:
        case_store.record_event(session, case_id, "replacement-stock", "system", "exchange.stock_checked",
                                {"sku": terms.new_sku, "available": level.available if level else 0, "in_stock": in_stock})
    return in_stock


@task(name="settle-price-difference", cache_key_fn=per_case("exchange-money"), **OUTSIDE_EFFECT)
async def settle_price_difference(case_id: str, approved_by: str, postage: list[PostageLine]) -> dict:
    """§1.2 price difference: charge the buyer when the replacement costs more, refund them when it
    costs less; and the return postage by fault (§1.1: the seller refunds it when at fault).

    Each platform refund is a ``platform_paid`` line at the amount the platform confirmed under its
    reference: the refunded difference, and the postage lines added to the postage refund (their
    amounts add up to what the platform paid). A charged difference is money the platform collects
    from the buyer, not a payment: it stays an informational line under the charge's reference, and
    so does postage the buyer bears."""
    case = load_case(case_id)
    terms = ExchangeTerms.from_details(case.details)
    difference = abs(terms.difference)
    reason = f"换货差价 exchange price difference {terms.sku} → {terms.new_sku}"
    refs: dict[str, str] = {}
    refunded: dict[str, Decimal] = {}  # what the platform confirmed, by refund
    owed_postage = sum((line.add_to_refund for line in postage if line.add_to_refund > 0), Decimal("0"))
    async with PlatformClient() as platform:
        if terms.settlement is PriceDifference.CHARGE:
            refs["difference"] = (await platform.charge(case.order_id, difference, reason, case_id, f"charge-{case_id}-price-difference")).charge_id
        elif terms.settlement is PriceDifference.REFUND:
            refund = await platform.refund(case.order_id, difference, reason, case_id, f"refund-{case_id}-price-difference")
            refs["difference"], refunded["difference"] = refund.refund_id, refund.amount
        if owed_postage > 0:
            refund = await platform.refund(case.order_id, owed_postage, "换货退货运费 return postage of the exchange", case_id,
                                           f"refund-{case_id}-exchange-postage", RefundKind.POSTAGE)
            refs["postage"], refunded["postage"] = refund.refund_id, refund.amount
    postage_shares = _shares(refunded["postage"], [line.add_to_refund for line in postage if line.add_to_refund > 0]) if "postage" in refunded else []
    with session_scope() as session:
        case = case_store.get_case(session, case_id)
        if terms.settlement is not PriceDifference.NONE:
            charged = terms.settlement is PriceDifference.CHARGE
            case_store.add_ledger_line(session, idempotency_key=f"exchange-{case_id}-price-difference", case=case, kind="price_difference",
                                       amount=refunded.get("difference", difference), bearer="buyer" if charged else "seller",
                                       approved_by=approved_by, platform_ref=refs["difference"], platform_paid="difference" in refunded,
                                       note=("买家补差价 the buyer pays the difference" if charged else "差价退还买家 the difference refunded to the buyer") + f" {terms.sku} → {terms.new_sku}")
        for index, line in enumerate(postage):
            paid_share = line.add_to_refund > 0 and bool(postage_shares)
            case_store.add_ledger_line(session, idempotency_key=f"exchange-{case_id}-{line.kind}-{line.bearer}-{index}", case=case, kind=line.kind,
                                       amount=postage_shares.pop(0) if paid_share else line.amount, bearer=line.bearer, approved_by=approved_by,
                                       platform_ref=refs["postage"] if paid_share else "", platform_paid=paid_share, note=line.note)
        case_store.record_event(session, case_id, "price-difference", approved_by, "exchange.price_difference_settled",
                                {"settlement": terms.settlement.value, "difference": refunded.get("difference", difference),
                                 "postage_refunded": refunded.get("postage", Decimal("0")), "platform_refs": refs})
        if terms.settlement is not PriceDifference.NONE:
            notify_in_session(session, case, "price-difference", "exchange_price_difference", staff_tags=[Role.FINANCE.value], buyer=True,
                              settlement=terms.settlement.value, difference=f"{difference:.2f}", platform_ref=refs["difference"])
    send_pending(case_id)
    return {"settlement": terms.settlement.value, "difference": str(difference), "refs": refs}
