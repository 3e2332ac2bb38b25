"""The exchange process (rulebook §1.2) end to end on the real stack: replacement shipped once,
price difference charged or refunded once, stock checked before the promise and before shipping."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from aftersales.deployments.cli import app as cli
from aftersales.domain.models import Case, LedgerLine
from aftersales.domain.rules import InvalidRequest
from aftersales.intake.exchange import open_exchange
from aftersales.integrations.db import session_scope
from tests.support.records import events
from tests.support.records import assert_platform_paid_matches


def ledger(case_id: str) -> dict[tuple[str, str], LedgerLine]:
    with session_scope() as session:
        lines = list(session.exec(select(LedgerLine).where(LedgerLine.case_id == case_id).order_by(LedgerLine.id)))
    keyed = {(line.kind, line.bearer): line for line in lines}
    assert len(keyed) == len(lines), "one line per kind and bearer"
    return keyed


def catalogue_sku(stack, price: str, available: int = 5) -> str:
    sku = f"NEW-{uuid.uuid4().hex[:8].upper()}"
    stack.sandbox("POST", f"/sandbox/stock/{sku}", json={"available": available, "unit_price": price, "name": f"换货商品 {sku}"})
    return sku


def set_stock(stack, sku: str, available: int) -> None:
    stack.sandbox("POST", f"/sandbox/stock/{sku}", json={"available": available})


def stock(stack, sku: str) -> int:
    return stack.sandbox("GET", f"/api/stock/{sku}")["available"]


def exchange_order(stack, price: str = "100.00", **kwargs) -> dict:
    items = [{"sku": "SKU-SHIRT-M", "name": "衬衫 M", "category": "apparel", "quantity": 1, "unit_price": price}]
    return stack.make_order(paid=price, items=items, **kwargs)


def open_case(stack, order: dict, new_sku: str, **kwargs) -> str:
    return stack.run(open_exchange(order["order_id"], "SKU-SHIRT-M", new_sku, **kwargs)).case_id


def ship(stack, case_id: str, postage: str = "10.00"):
    return stack.answer(case_id, "buyer-shipment", carrier="yuantong", tracking_number="YT9988776655", return_postage=postage)


def through_inspection(stack, case_id: str, reviewer: str = "S002", postage: str = "10.00") -> None:
    assert stack.approve(case_id, "seller-review", reviewer).status == "answered"
    ship(stack, case_id, postage)
    stack.approve(case_id, "receipt", "S004", note="外箱完好")
    assert stack.approve(case_id, "inspection", "S004", result="pass").status == "answered"


def charges(stack, order: dict) -> list[dict]:
    return stack.sandbox("GET", "/api/charges", params={"order_id": order["order_id"]})


def buyer_text(stack, order: dict) -> str:
    return json.dumps([m.json for m in stack.customer_messages(order)], ensure_ascii=False)


def test_dearer_replacement_charges_the_difference_and_ships_once(stack, sandbox_clean, team):
    order = exchange_order(stack, "100.00")
    new_sku = catalogue_sku(stack, "120.00", available=3)
    case_id = open_case(stack, order, new_sku, reason="想换成加厚款 the thicker one")
    assert stack.waiting(case_id, "seller-review").addressed_to == "supervisor"  # ¥100 is above an agent's ¥20
    assert stack.approve(case_id, "seller-review", team["S002"]).status == "answered"
    ship(stack, case_id)
    stack.approve(case_id, "receipt", team["S004"])
    # the platform commits, then loses its answer: the charge and the shipment still happen once
    stack.faults(fail_after_commit=2)
    stack.approve(case_id, "inspection", team["S004"], result="pass")

    case = stack.finished(case_id, timeout=150)
    assert case.outcome == "exchanged"
    assert [(c["amount"], c["case_id"]) for c in charges(stack, order)] == [("20.00", case_id)]
    assert stack.refunds(order["order_id"]) == []
    [reship] = stack.reshipments(order["order_id"])
    assert reship["items"] == [{"sku": new_sku, "quantity": 1}]
    assert stock(stack, new_sku) == 2

    lines = ledger(case_id)
    assert lines[("price_difference", "buyer")].amount == Decimal("20.00")
    assert lines[("price_difference", "buyer")].platform_ref == charges(stack, order)[0]["charge_id"]
    assert lines[("reshipment", "seller")].amount == Decimal("120.00")
    assert lines[("outbound_postage", "seller")].amount == Decimal("12.00")
    assert lines[("return_postage", "buyer")].amount == Decimal("10.00")  # no-reason: the buyer's postage (§1.1)
    assert {line.approved_by for line in lines.values()} == {team["S004"]}
    # a charge is money the platform collects from the buyer, not a payment: nothing is platform-paid
    assert not any(line.platform_paid for line in lines.values())
    assert_platform_paid_matches(stack, order, list(lines.values()))

    text = buyer_text(stack, order)
    assert "退货地址" in text and "20.00" in text and reship["waybill"] in text
    assert any(case_id in json.dumps(m.json, ensure_ascii=False) for m in stack.messages("/staff/finance"))
    assert len([e for e in events(case_id) if e.action == "goods.reshipped"]) == 1


def test_cheaper_replacement_refunds_the_difference_and_seller_postage(stack, sandbox_clean):
    order = exchange_order(stack, "120.00")
    new_sku = catalogue_sku(stack, "100.00")
    case_id = open_case(stack, order, new_sku, kind="quality", reason="开线 seam came apart")
    through_inspection(stack, case_id, postage="12.00")
    assert stack.finished(case_id).outcome == "exchanged"
    refunds = {r["kind"]: Decimal(r["amount"]) for r in stack.refunds(order["order_id"])}
    assert refunds == {"goods": Decimal("20.00"), "postage": Decimal("12.00")}  # quality: the seller pays the postage
    assert charges(stack, order) == []
    lines = ledger(case_id)
    assert lines[("price_difference", "seller")].amount == Decimal("20.00")
    assert lines[("return_postage", "seller")].amount == Decimal("12.00")
    assert len(stack.reshipments(order["order_id"])) == 1
    # both platform refunds are platform-paid lines under their references; the replacement is not
    by_kind = {r["kind"]: r["refund_id"] for r in stack.refunds(order["order_id"])}
    assert (lines[("price_difference", "seller")].platform_paid, lines[("price_difference", "seller")].platform_ref) == (True, by_kind["goods"])
    assert (lines[("return_postage", "seller")].platform_paid, lines[("return_postage", "seller")].platform_ref) == (True, by_kind["postage"])
    assert not lines[("reshipment", "seller")].platform_paid and not lines[("outbound_postage", "seller")].platform_paid
    assert_platform_paid_matches(stack, order, list(lines.values()))


def test_out_of_stock_before_the_promise_offers_a_refund_instead(stack, sandbox_clean, team):
    order = exchange_order(stack, "80.00")
    new_sku = catalogue_sku(stack, "80.00", available=0)
    case_id = open_case(stack, order, new_sku)
    stack.approve(case_id, "seller-review", team["S002"])
    stack.waiting(case_id, "buyer-shipment")
    text = buyer_text(stack, order)
    assert "缺货" in text and "退款" in text and "80.00" in text  # told, and offered a refund instead
    assert any(e.action == "exchange.agreed" and e.details["replacement_in_stock"] is False for e in events(case_id))

    ship(stack, case_id)
    # each default says what it does here: the refund, not a replacement that cannot ship
    receipt = stack.waiting(case_id, "receipt")
    assert "the refund is paid (the replacement is out of stock)" in receipt.default_action and "replacement ships" not in receipt.default_action
    stack.approve(case_id, "receipt", team["S004"])
    inspection = stack.waiting(case_id, "inspection")
    assert "passes, the refund is paid" in inspection.default_action and "replacement ships" not in inspection.default_action
    stack.approve(case_id, "inspection", team["S004"], result="pass")
    assert stack.finished(case_id).outcome == "refunded_out_of_stock"
    assert [Decimal(r["amount"]) for r in stack.refunds(order["order_id"])] == [Decimal("80.00")]
    assert stack.reshipments(order["order_id"]) == []
    assert ("return_postage", "buyer") in ledger(case_id)  # the buyer accepted a refund knowing it: a no-reason return


def test_sold_out_while_the_parcel_travels_refunds_and_the_seller_pays_postage(stack, sandbox_clean, team):
    order = exchange_order(stack, "90.00")
    new_sku = catalogue_sku(stack, "90.00", available=1)
    case_id = open_case(stack, order, new_sku)
    stack.approve(case_id, "seller-review", team["S002"])
    ship(stack, case_id, "9.00")
    stack.approve(case_id, "receipt", team["S004"])
    set_stock(stack, new_sku, 0)  # the last piece sold meanwhile
    stack.approve(case_id, "inspection", team["S004"], result="pass")
    assert stack.finished(case_id).outcome == "refunded_out_of_stock"
    refunds = {r["kind"]: Decimal(r["amount"]) for r in stack.refunds(order["order_id"])}
    assert refunds == {"goods": Decimal("90.00"), "postage": Decimal("9.00")}
    assert ("return_postage", "seller") in ledger(case_id)
    assert stack.reshipments(order["order_id"]) == []
    assert any(case_id in json.dumps(m.json, ensure_ascii=False) for m in stack.messages("/staff/supervisor"))


def test_refusal_and_failed_inspection_need_a_note_and_ship_nothing(stack, sandbox_clean, team):
    order = exchange_order(stack, "60.00")
    case_id = open_case(stack, order, catalogue_sku(stack, "60.00"))
    assert stack.approve(case_id, "seller-review", team["S002"], decision="refuse").status == "rejected"
    stack.approve(case_id, "seller-review", team["S006"], decision="refuse", note="吊牌已剪 tag removed")
    assert stack.finished(case_id).outcome == "refused"
    assert "吊牌已剪" in buyer_text(stack, order)

    failed_order = exchange_order(stack, "60.00")
    failed = open_case(stack, failed_order, catalogue_sku(stack, "60.00"))
    stack.approve(failed, "seller-review", team["S002"])
    ship(stack, failed)
    stack.approve(failed, "receipt", team["S004"])
    assert stack.approve(failed, "inspection", team["S004"], result="fail").status == "rejected"
    stack.approve(failed, "inspection", team["S007"], result="fail", note="已洗涤 washed")
    assert stack.finished(failed).outcome == "inspection_failed"
    assert stack.reshipments(failed_order["order_id"]) == [] and stack.refunds(failed_order["order_id"]) == []
    assert ledger(failed) == {}


def test_review_and_shipping_deadlines(stack, sandbox_clean):
    order = exchange_order(stack, "70.00")
    case_id = open_case(stack, order, catalogue_sku(stack, "70.00"))
    stack.waiting(case_id, "seller-review")
    assert stack.sweep(case_id, days=4.9)["resumed"] == []
    assert stack.sweep(case_id, days=5.1)["resumed"] == [case_id]  # 5 days: the platform agrees
    stack.waiting(case_id, "buyer-shipment")
    assert any(e.action == "wait.accepted.by_deadline" and e.details["step"] == "seller-review" for e in events(case_id))
    assert stack.sweep(case_id, days=6.9)["resumed"] == []
    stack.sweep(case_id, days=7.1)  # 7 days without the parcel: the request closes
    assert stack.finished(case_id).outcome == "closed_not_shipped"
    assert stack.reshipments(order["order_id"]) == [] and stack.refunds(order["order_id"]) == []


def test_receipt_deadline_still_ships_the_replacement_and_inspection_deadline_ships(stack, sandbox_clean, team):
    unconfirmed_order = exchange_order(stack, "75.00")
    replacement = catalogue_sku(stack, "75.00")
    unconfirmed = open_case(stack, unconfirmed_order, replacement, kind="wrong_item")
    stack.approve(unconfirmed, "seller-review", team["S002"])
    ship(stack, unconfirmed, "11.00")
    receipt = stack.waiting(unconfirmed, "receipt")
    assert "the replacement ships (sold out by then: the refund is paid)" in receipt.default_action  # the default says what it does
    assert stack.sweep(unconfirmed, days=9.9)["resumed"] == []
    # 10 days unconfirmed: taken as received — the buyer asked for a replacement, not a refund
    stack.sweep(unconfirmed, days=10.1)
    assert stack.finished(unconfirmed).outcome == "exchanged"
    assert [r["items"] for r in stack.reshipments(unconfirmed_order["order_id"])] == [[{"sku": replacement, "quantity": 1}]]
    refunds = {r["kind"]: Decimal(r["amount"]) for r in stack.refunds(unconfirmed_order["order_id"])}
    assert "goods" not in refunds and refunds.get("postage") == Decimal("11.00")  # wrong item: the seller pays the postage
    assert ledger(unconfirmed)[("reshipment", "seller")].approved_by == "system"
    assert next(e for e in events(unconfirmed) if e.action == "parcel.received").details["by_deadline"] is True

    uninspected_order = exchange_order(stack, "75.00")
    new_sku = catalogue_sku(stack, "75.00")
    uninspected = open_case(stack, uninspected_order, new_sku)
    stack.approve(uninspected, "seller-review", team["S002"])
    ship(stack, uninspected)
    stack.approve(uninspected, "receipt", team["S004"])
    stack.waiting(uninspected, "inspection")
    stack.sweep(uninspected, days=5)  # 2 working days, whatever the weekday: passes
    assert stack.finished(uninspected).outcome == "exchanged"
    assert [r["items"] for r in stack.reshipments(uninspected_order["order_id"])] == [[{"sku": new_sku, "quantity": 1}]]
    assert ledger(uninspected)[("reshipment", "seller")].approved_by == "system"


@pytest.mark.parametrize("args, code", [
    ({"order_id": "NO-SUCH-ORDER"}, "unknown_order"),
    ({"sku": "SKU-NOT-BOUGHT"}, "unknown_items"),
    ({"new_sku": "SKU-NOT-IN-CATALOGUE"}, "unknown_replacement"),
    ({"quantity": 2}, "quantity_above_ordered"),
    ({"kind": "refused_at_delivery"}, "unknown_kind"),
    ({"late": True}, "out_of_window"),
])
def test_bad_requests_are_refused_and_record_nothing(stack, sandbox_clean, args, code):
    order = exchange_order(stack, "50.00", delivered_days_ago=9 if args.pop("late", False) else 2)
    call = {"order_id": order["order_id"], "sku": "SKU-SHIRT-M", "new_sku": catalogue_sku(stack, "50.00"), **args}
    with pytest.raises(InvalidRequest) as refused:
        stack.run(open_exchange(**call))
    assert refused.value.code == code
    assert refused.value.message.isascii() is False  # bilingual: Chinese first
    with session_scope() as session:
        assert session.exec(select(Case).where(Case.order_id == order["order_id"])).all() == []


def test_cli_opens_once_and_explains_a_refusal(stack, sandbox_clean):
    runner = CliRunner(env={"COLUMNS": "250"})
    order = exchange_order(stack, "50.00")
    new_sku = catalogue_sku(stack, "50.00")
    args = ["exchange", "open", "--order", order["order_id"], "--sku", "SKU-SHIRT-M", "--new-sku", new_sku]
    assert runner.invoke(cli, args).exit_code == 0
    assert runner.invoke(cli, args).exit_code == 0  # repeated: the same case
    case_id = f"exchange-{order['order_id']}"
    stack.waiting(case_id, "seller-review")
    refused = runner.invoke(cli, ["exchange", "open", "--order", order["order_id"], "--sku", "SKU-SHIRT-M", "--new-sku", "NOPE-1"])
    assert refused.exit_code == 2 and "catalogue" in refused.output
