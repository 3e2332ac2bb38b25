"""Tasks of the wrong shipment (§1.7): check the report, then put it right once — re-ship the correct
items (stock permitting) or refund them — with the costs on the seller, charged to the warehouse."""

from __future__ import annotations

from decimal import Decimal

from prefect import task

from aftersales.domain.models import Role
from aftersales.domain.outcomes import Outcome
from aftersales.domain.rules import OrderFacts
from aftersales.domain.settings import get_settings
from aftersales.domain.wrong_shipment_rules import BuyerChoice, validate_wrong_shipment
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope
from aftersales.integrations.platform import Order, PlatformClient
from aftersales.tasks.cases import load_case, per_case
from aftersales.tasks.exchange import stock_of
from aftersales.tasks.intake import order_facts
from aftersales.tasks.notify import notify_in_session, send_pending
from aftersales.tasks.policy import OUTSIDE_EFFECT

DEPARTMENT = "warehouse"  # 串发/错发 is a picking and packing fault; the supervisor may name another


async def wrong_shipment_facts(platform: PlatformClient, order_id: str, skus: list[str]) -> tuple[Order, OrderFacts, Decimal]:
    order, facts = await order_facts(platform, order_id)
    return order, facts, validate_wrong_shipment(facts, skus)


def items_text(case) -> str:
    names = {item["sku"]: item["name"] for item in case.details.get("items", [])}
    return ", ".join(f"{names.get(sku, sku)} ({sku})" for sku in case.details.get("skus", []))


@task(name="put-wrong-shipment-right", cache_key_fn=per_case("wrong-shipment-remedy"), **OUTSIDE_EFFECT)
async def put_it_right(case_id: str, choice: BuyerChoice, approved_by: str) -> Outcome:
    """Re-ship the correct items (if all are in stock) or refund them; once per case.

    Left the warehouse: the correct parcel's postage and the pick-up of the wrong one are the
    seller's (ledger, department warehouse). Corrected before dispatch: no extra postage.

    A refund's ledger line is ``platform_paid`` at the amount the platform confirmed under its
    reference; the pick-up moves no money through the platform, so it names the refund in its note,
    not as its platform reference (the lines under a reference add up to what the platform paid)."""
    case = load_case(case_id)
    left = bool(case.details.get("warehouse_left"))
    ordered = {item["sku"]: int(item["quantity"]) for item in case.details.get("items", [])}
    items = [{"sku": sku, "quantity": ordered[sku]} for sku in case.details["skus"]]
    rules = get_settings().rules
    key = f"wrong-shipment-{case_id}"
    async with PlatformClient() as platform:
        in_stock = True
        if choice is BuyerChoice.RESHIP:
            for item in items:
                level = await stock_of(platform, item["sku"])
                # a SKU the catalogue does not track is taken as available: the warehouse ships it
                if level is not None and not level.can_ship(item["quantity"]):
                    in_stock = False
        if choice is BuyerChoice.RESHIP and in_stock:
            shipment = await platform.reship(case.order_id, items, "错发货改发正确商品 wrong shipment: the right items", case_id, key)
            outcome = Outcome.RESHIPPED_CORRECT_ITEMS if left else Outcome.CORRECTED_BEFORE_DISPATCH
            reference, paid = shipment.reshipment_id, None
        else:
            refund = await platform.refund(case.order_id, case.amount, "错发货退款 wrong shipment refunded", case_id, key)
            outcome = Outcome.REFUNDED_WRONG_ITEMS if choice is BuyerChoice.RETURN else Outcome.OUT_OF_STOCK_REFUNDED
            reference, paid, shipment = refund.refund_id, refund, None
    with session_scope() as session:
        case = case_store.get_case(session, case_id)

        def line(suffix: str, kind: str, amount: Decimal, note: str, platform_ref: str = reference, platform_paid: bool = False) -> None:
            case_store.add_ledger_line(session, idempotency_key=f"{key}{suffix}", case=case, kind=kind, amount=amount, bearer="seller",
                                       approved_by=approved_by, platform_ref=platform_ref, platform_paid=platform_paid, note=note,
                                       responsible_department=DEPARTMENT)

        if shipment is not None:
            line("", "reshipment", case.amount, "错发货改发正确商品 the right items sent")
        else:
            line("", "refund", paid.amount, "错发货退款 the ordered items refunded", platform_paid=True)
        if left:
            if shipment is not None:
                line("-postage", "outbound_postage", rules.standard_postage, "改发运费 postage of the correct parcel")
                line("-pickup", "return_postage", rules.standard_postage, "上门取回错发商品 pick-up of the wrong items")
            else:  # no payment: the refund is named in the note, not as this line's platform reference
                line("-pickup", "return_postage", rules.standard_postage,
                     f"上门取回错发商品 pick-up of the wrong items（关联退款 refund {reference}）", platform_ref="")
        details = {"choice": choice.value, "outcome": outcome, "platform_ref": reference, "warehouse_left": left}
        if shipment is not None:
            details.update(carrier=shipment.carrier, waybill=shipment.waybill)
            case_store.record_event(session, case_id, "remedy", approved_by, "goods.reshipped", details)
            notify_in_session(session, case, "remedy", "reshipped", staff_tags=[Role.WAREHOUSE.value], buyer=True,
                              carrier=shipment.carrier, waybill=shipment.waybill)
        else:
            case_store.record_event(session, case_id, "remedy", approved_by, "refund.paid", {**details, "amount": paid.amount})
            if outcome is Outcome.OUT_OF_STOCK_REFUNDED:
                notify_in_session(session, case, "remedy", "wrong_shipment_out_of_stock", staff_tags=[Role.WAREHOUSE.value, Role.AGENT.value],
                                  buyer=True, items=items_text(case))
            else:
                notify_in_session(session, case, "remedy", "refund_paid", staff_tags=[Role.FINANCE.value], buyer=True,
                                  refund_amount=f"{paid.amount:.2f}", reason="错发货退款 wrong shipment refunded")
    send_pending(case_id)
    return outcome
