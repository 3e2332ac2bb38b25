"""Tasks of the wrong shipment (§1.7): check the report, then put it right once — re-ship the correct
items (stock permitting) or refund them — with the costs on the seller, charged to the warehouse."""

from __future__ import annotations

from decimal import Decimal
from functools import partial

from prefect import task

from aftersales.domain.details import WrongShipmentDetails, details_of
from aftersales.domain.models import Role
from aftersales.domain.outcomes import Outcome
from aftersales.domain.rules import OrderFacts
from aftersales.domain.settings import get_settings
from aftersales.domain.wrong_shipment_rules import BuyerChoice, validate_wrong_shipment
from aftersales.integrations.platform import Order, ShopPlatform, shop_platform
from aftersales.tasks.cases import load_case, per_case
from aftersales.tasks.exchange import stock_of
from aftersales.tasks.intake import order_facts
from aftersales.tasks.money import Booking, Entry, Moved, Movement, Moves, move, move_money
from aftersales.tasks.policy import OUTSIDE_EFFECT

DEPARTMENT = "warehouse"  # 串发/错发 is a picking and packing fault; the supervisor may name another

# the one money task, under a name that says what moves here
PUT_IT_RIGHT = move_money.with_options(name="put-wrong-shipment-right")


async def wrong_shipment_facts(platform: ShopPlatform, order_id: str, skus: list[str]) -> tuple[Order, OrderFacts, Decimal]:
    order, facts = await order_facts(platform, order_id)
    return order, facts, validate_wrong_shipment(facts, skus)


def items_text(case) -> str:
    details = details_of(case, WrongShipmentDetails)
    names = details.names()
    return ", ".join(f"{names.get(sku, sku)} ({sku})" for sku in details.skus)


@task(name="correct-items-in-stock", cache_key_fn=per_case("wrong-shipment-stock"), **OUTSIDE_EFFECT)
async def correct_items_in_stock(case_id: str) -> bool:
    """Are all the correct items there to ship? Decided once, so a resumed run keeps its choice.
    A SKU the catalogue does not track is taken as available: the warehouse ships it."""
    case = load_case(case_id)
    items = ordered_items(case)
    async with shop_platform(case) as platform:
        for sku, quantity in items:
            level = await stock_of(platform, sku)
            if level is not None and not level.can_ship(quantity):
                return False
    return True


def ordered_items(case) -> tuple[tuple[str, int], ...]:
    """The items the buyer ordered and did not get, with the ordered quantities."""
    details = details_of(case, WrongShipmentDetails)
    ordered = {line.sku: line.quantity for line in details.items}
    return tuple((sku, ordered[sku]) for sku in details.skus)


async def put_it_right(case_id: str, choice: BuyerChoice, approved_by: str) -> Outcome:
    """Re-ship the correct items (if all are in stock) or refund them; once per case."""
    case = load_case(case_id)
    reship = choice is BuyerChoice.RESHIP and await correct_items_in_stock(case_id)
    key = f"wrong-shipment-{case_id}"
    if reship:
        outcome = Outcome.RESHIPPED_CORRECT_ITEMS if details_of(case, WrongShipmentDetails).warehouse_left else Outcome.CORRECTED_BEFORE_DISPATCH
        movement = Movement(Moves.PARCEL, key, case.amount, "错发货改发正确商品 wrong shipment: the right items", items=ordered_items(case))
    else:
        outcome = Outcome.REFUNDED_WRONG_ITEMS if choice is BuyerChoice.RETURN else Outcome.OUT_OF_STOCK_REFUNDED
        movement = Movement(Moves.REFUND, key, case.amount, "错发货退款 wrong shipment refunded")
    book = partial(_book_remedy, key=key, choice=choice, outcome=outcome)
    await move(PUT_IT_RIGHT, case_id, f"wrong-shipment-remedy-{case_id}", [movement], approved_by, book)
    return outcome


def _book_remedy(case, moved: list[Moved], *, key: str, choice: BuyerChoice, outcome: Outcome) -> Booking:
    """Left the warehouse: the correct parcel's postage and the pick-up of the wrong one are the
    seller's (ledger, department warehouse). Corrected before dispatch: no extra postage.

    A refund's ledger line is ``platform_paid`` at the amount the platform confirmed under its
    reference; the pick-up moves no money through the platform, so it names the refund in its note,
    not as its platform reference (the lines under a reference add up to what the platform paid)."""
    [done] = moved
    left = details_of(case, WrongShipmentDetails).warehouse_left
    postage = get_settings().rules.standard_postage
    shipped = done.movement.moves is Moves.PARCEL

    def line(suffix: str, kind: str, amount: Decimal, note: str, platform_ref: str = done.reference, platform_paid: bool = False) -> Entry:
        return Entry(f"{key}{suffix}", kind, amount, "seller", note, platform_ref=platform_ref, platform_paid=platform_paid,
                     department=DEPARTMENT)

    entries = [line("", "reshipment", case.amount, "错发货改发正确商品 the right items sent") if shipped else
               line("", "refund", done.amount, "错发货退款 the ordered items refunded", platform_paid=True)]
    if left and shipped:
        entries += [line("-postage", "outbound_postage", postage, "改发运费 postage of the correct parcel"),
                    line("-pickup", "return_postage", postage, "上门取回错发商品 pick-up of the wrong items")]
    elif left:  # no payment: the refund is named in the note, not as this line's platform reference
        entries.append(line("-pickup", "return_postage", postage, f"上门取回错发商品 pick-up of the wrong items（关联退款 refund {done.reference}）",
                            platform_ref=""))
    event = {"choice": choice.value, "outcome": outcome, "platform_ref": done.reference, "warehouse_left": left}
    if shipped:
        return Booking(entries, "remedy", "goods.reshipped", {**event, "carrier": done.carrier, "waybill": done.waybill},
                       notice="reshipped", staff_tags=[Role.WAREHOUSE.value], buyer=True,
                       context=dict(carrier=done.carrier, waybill=done.waybill))
    booking = Booking(entries, "remedy", "refund.paid", {**event, "amount": done.amount}, buyer=True)
    if outcome is Outcome.OUT_OF_STOCK_REFUNDED:
        booking.notice, booking.staff_tags, booking.context = ("wrong_shipment_out_of_stock", [Role.WAREHOUSE.value, Role.AGENT.value],
                                                               dict(items=items_text(case)))
    else:
        booking.notice, booking.staff_tags, booking.context = ("refund_paid", [Role.FINANCE.value],
                                                               dict(refund_amount=f"{done.amount:.2f}", reason="错发货退款 wrong shipment refunded",
                                                                    refund_note=""))
    return booking
