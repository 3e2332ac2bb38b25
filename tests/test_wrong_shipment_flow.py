"""The wrong-shipment process (rulebook §1.7) end to end on the real stack: corrected at once before
dispatch, the buyer's choice after it, settled according to stock, and the assessment recorded."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
from sqlmodel import select

from aftersales.domain.models import Case, LedgerLine, Wait
from aftersales.domain.rules import InvalidRequest
from aftersales.intake.wrong_shipment import open_wrong_shipment
from aftersales.integrations.db import session_scope
from tests.support.stack import wait_until
from tests.support.records import events
from tests.support.records import assert_platform_paid_matches


def ledger(case_id: str) -> dict[str, LedgerLine]:
    with session_scope() as session:
        lines = list(session.exec(select(LedgerLine).where(LedgerLine.case_id == case_id)))
    return {line.kind: line for line in lines}


def finished(stack, case_id: str):
    def recorded() -> bool:
        with session_scope() as session:
            return session.get(Case, case_id) is not None

    wait_until(recorded, 60, f"{case_id} to be recorded")
    return stack.finished(case_id)


def order_with(stack, sku: str, *, left: bool = True, stock: int | None = None) -> dict:
    items = [{"sku": sku, "name": "枕头 60cm", "category": "home", "quantity": 1, "unit_price": "64.00"},
             {"sku": "SKU-OTHER", "name": "枕套", "category": "home", "quantity": 1, "unit_price": "16.00"}]
    order = stack.make_order(paid="80.00", items=items, delivered_days_ago=1 if left else None, status="completed" if left else "awaiting_shipment")
    if not left:  # still in the warehouse: nothing shipped yet
        order.update(warehouse_left=False, shipped_at=None, carrier=None, waybill=None)
        stack.sandbox("POST", "/sandbox/orders", json=order)
    if stock is not None:
        stack.sandbox("POST", f"/sandbox/stock/{sku}", json={"available": stock, "unit_price": "64.00"})
    return order


def new_sku() -> str:
    return f"PILLOW-{uuid.uuid4().hex[:6].upper()}"


def report(stack, order: dict, sku: str, **kwargs) -> str:
    return stack.run(open_wrong_shipment(order["order_id"], [sku], "发成 70cm sent 70 cm", **kwargs)).case_id


def buyer_text(stack, order: dict) -> str:
    return json.dumps([m.json for m in stack.customer_messages(order)], ensure_ascii=False)


def test_caught_before_dispatch_is_reshipped_at_once(stack, sandbox_clean, team):
    sku = new_sku()
    order = order_with(stack, sku, left=False, stock=3)
    case_id = report(stack, order, sku, requested_by=team["S004"])
    case = finished(stack, case_id)
    assert case.outcome == "corrected_before_dispatch"
    with session_scope() as session:
        assert session.exec(select(Wait).where(Wait.case_id == case_id)).all() == []  # nobody had to decide
    [shipment] = stack.reshipments(order["order_id"])
    assert shipment["items"] == [{"sku": sku, "quantity": 1}]
    lines = ledger(case_id)
    assert set(lines) == {"reshipment"}  # no extra postage: the parcel had not left
    assert (lines["reshipment"].bearer, lines["reshipment"].responsible_department, lines["reshipment"].approved_by) == ("seller", "warehouse", "system")
    assert shipment["waybill"] in buyer_text(stack, order)


def test_left_the_warehouse_buyer_chooses_return_and_the_assessment_is_recorded(stack, sandbox_clean, team):
    sku = new_sku()
    order = order_with(stack, sku)
    case_id = report(stack, order, sku)
    choice = stack.waiting(case_id, "buyer-choice")
    assert choice.addressed_to == "buyer"
    assert "3 天" in buyer_text(stack, order) or "3 days" in buyer_text(stack, order)
    stack.answer(case_id, "buyer-choice", choice="return")

    assessment = stack.waiting(case_id, "assessment")
    assert assessment.addressed_to == "supervisor"
    assert [(r["kind"], Decimal(r["amount"])) for r in stack.refunds(order["order_id"])] == [("goods", Decimal("64.00"))]
    warehouse_clerk = stack.approve(case_id, "assessment", team["S004"], responsible_person="S007 孙丽", assessment="扣绩效 2 分")
    assert warehouse_clerk.status == "rejected"  # a supervisor records the assessment
    stack.approve(case_id, "assessment", team["S002"], responsible_person="S007 孙丽 拣货", economic_loss="24.00",
                  negative_effect=True, assessment="扣绩效 2 分 2 points deducted")
    case = stack.finished(case_id)
    assert case.outcome == "refunded_wrong_items"
    [recorded] = [e for e in events(case_id) if e.action == "assessment.recorded"]
    assert recorded.actor == team["S002"] and recorded.details["responsible_person"] == "S007 孙丽 拣货"
    assert recorded.details["economic_loss"] == "24.00" and recorded.details["negative_effect"] is True
    lines = ledger(case_id)
    assert set(lines) == {"refund", "return_postage"} and lines["return_postage"].amount == Decimal("12.00")
    assert {line.responsible_department for line in lines.values()} == {"warehouse"}
    assert {line.approved_by for line in lines.values()} == {"buyer"}
    # the refund is the platform's payment; the pick-up is no payment and names the refund in its note only
    [refund] = stack.refunds(order["order_id"])
    assert (lines["refund"].platform_paid, lines["refund"].platform_ref, lines["refund"].amount) == (True, refund["refund_id"], Decimal(refund["amount"]))
    assert (lines["return_postage"].platform_paid, lines["return_postage"].platform_ref) == (False, "")
    assert refund["refund_id"] in lines["return_postage"].note
    assert_platform_paid_matches(stack, order, list(lines.values()))
    manager = json.dumps([m.json for m in stack.messages("/staff/manager")], ensure_ascii=False)
    assert case_id in manager and "扣绩效" in manager
    assert stack.reshipments(order["order_id"]) == []


def test_no_choice_reships_by_default_and_an_unrecorded_assessment_tells_the_manager(stack, sandbox_clean):
    sku = new_sku()
    order = order_with(stack, sku)
    case_id = report(stack, order, sku)
    stack.waiting(case_id, "buyer-choice")
    assert stack.sweep(case_id, days=2.9)["resumed"] == []
    assert stack.sweep(case_id, days=3.1)["resumed"] == [case_id]  # 3 days: re-ship (§1.7 default)
    stack.waiting(case_id, "assessment")
    [shipment] = stack.reshipments(order["order_id"])
    assert shipment["items"] == [{"sku": sku, "quantity": 1}]
    lines = ledger(case_id)
    assert set(lines) == {"reshipment", "outbound_postage", "return_postage"}
    assert {line.approved_by for line in lines.values()} == {"system"}
    assert not any(line.platform_paid for line in lines.values())  # re-shipped: no platform payment
    assert_platform_paid_matches(stack, order, list(lines.values()))

    stack.sweep(case_id, days=8)  # 3 working days, whatever the weekday
    assert stack.finished(case_id).outcome == "reshipped_correct_items"
    [missing] = [e for e in events(case_id) if e.action == "assessment.missing"]
    assert missing.details["responsible_person"].endswith("unassigned")
    assert any(case_id in json.dumps(m.json, ensure_ascii=False) and "unassigned" in json.dumps(m.json, ensure_ascii=False)
               for m in stack.messages("/staff/manager"))


def test_correct_items_out_of_stock_are_refunded(stack, sandbox_clean, team):
    sku = new_sku()
    order = order_with(stack, sku, stock=0)
    case_id = report(stack, order, sku)
    stack.answer(case_id, "buyer-choice", choice="reship")
    stack.waiting(case_id, "assessment")
    assert [Decimal(r["amount"]) for r in stack.refunds(order["order_id"])] == [Decimal("64.00")]
    assert stack.reshipments(order["order_id"]) == []
    assert "缺货" in buyer_text(stack, order)
    stack.approve(case_id, "assessment", team["S006"], responsible_person=team["S004"], assessment="口头提醒 verbal warning")
    assert stack.finished(case_id).outcome == "out_of_stock_refunded"
    lines = ledger(case_id)
    assert lines["refund"].platform_paid is True and lines["return_postage"].platform_paid is False
    assert_platform_paid_matches(stack, order, list(lines.values()))


def test_before_dispatch_with_a_negative_effect_still_asks_for_the_assessment(stack, sandbox_clean, team):
    sku = new_sku()
    order = order_with(stack, sku, left=False)
    case_id = report(stack, order, sku, negative_effect=True)
    wait = stack.waiting(case_id, "assessment")
    assert len(stack.reshipments(order["order_id"])) == 1  # corrected first, without waiting
    assert wait.addressed_to == "supervisor"
    stack.approve(case_id, "assessment", team["S002"], responsible_person=team["S004"], assessment="通报批评 reprimand")
    assert stack.finished(case_id).outcome == "corrected_before_dispatch"


@pytest.mark.parametrize("skus, code", [([], "missing_items_required"), (["NOT-ORDERED"], "unknown_items")])
def test_bad_reports_are_refused_and_record_nothing(stack, sandbox_clean, skus, code):
    order = order_with(stack, new_sku())
    with pytest.raises(InvalidRequest) as refused:
        stack.run(open_wrong_shipment(order["order_id"], skus))
    assert refused.value.code == code
    with session_scope() as session:
        assert session.exec(select(Case).where(Case.order_id == order["order_id"])).all() == []


def test_an_unpaid_order_cannot_have_been_shipped_wrong(stack, sandbox_clean):
    order = stack.make_order(paid="30.00", status="cancelled", delivered_days_ago=None)
    with pytest.raises(InvalidRequest) as refused:
        stack.run(open_wrong_shipment(order["order_id"], ["SKU-TSHIRT-M"]))
    assert refused.value.code == "order_not_paid"
