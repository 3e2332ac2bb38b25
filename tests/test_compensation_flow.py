"""The compensation process (rulebook §1.3) end to end on the real stack: approval level by level,
each a wait with its deadline, and the payment made once through the platform."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlmodel import select

from aftersales.domain.models import Case, Wait
from aftersales.domain.rules import InvalidRequest
from aftersales.intake.compensation import open_compensation
from aftersales.integrations.db import session_scope
from tests.support.records import events, ledger
from tests.support.records import assert_platform_paid_matches


def waits(case_id: str) -> list[Wait]:
    with session_scope() as session:
        return list(session.exec(select(Wait).where(Wait.case_id == case_id).order_by(Wait.id)))


def open_case(stack, order: dict, form: str, amount: str | None, requested_by: str = "S001", **kwargs) -> str:
    return stack.run(open_compensation(order["order_id"], form, amount, kwargs.pop("reason", "物流延误 parcel late"),
                                       stack.member(requested_by), **kwargs)).case_id


def finished(stack, case_id: str, timeout: float = 90):
    """The case once closed; a case that needs no wait may not be recorded yet when we ask."""
    from tests.support.stack import wait_until

    def recorded() -> bool:
        with session_scope() as session:
            return session.get(Case, case_id) is not None

    wait_until(recorded, 60, f"{case_id} to be recorded")
    return stack.finished(case_id, timeout)


def coupons(stack, order: dict) -> list[dict]:
    return stack.sandbox("GET", "/api/coupons", params={"order_id": order["order_id"]})


def agent_text(stack, case_id: str) -> str:
    return json.dumps([m.json for m in stack.messages("/staff/agent") if case_id in json.dumps(m.json, ensure_ascii=False)], ensure_ascii=False)


def test_within_the_agents_limit_a_coupon_is_issued_without_approval(stack, sandbox_clean, team):
    order = stack.make_order(paid="128.00")
    case_id = open_case(stack, order, "coupon", "15.00", bearer="carrier")
    case = finished(stack, case_id)
    assert case.outcome == "compensated"
    assert waits(case_id) == []  # ≤ ¥20: no approval (§1.3)
    [coupon] = coupons(stack, order)
    assert Decimal(coupon["amount"]) == Decimal("15.00") and coupon["customer_id"] == order["customer"]["customer_id"]
    [line] = ledger(case_id)
    assert (line.kind, line.amount, line.bearer, line.approved_by, line.platform_ref) == ("coupon", Decimal("15.00"), "carrier", team["S001"], coupon["coupon_id"])
    assert line.platform_paid is False  # a coupon is no payment: nothing in the platform-paid total
    assert_platform_paid_matches(stack, order, [line])
    buyer = json.dumps([m.json for m in stack.customer_messages(order)], ensure_ascii=False)
    assert coupon["code"] in buyer and "15.00" in buyer
    assert any(case_id in json.dumps(m.json, ensure_ascii=False) for m in stack.messages("/staff/finance"))


def test_600_cash_needs_the_supervisor_then_the_manager_and_is_paid_once(stack, sandbox_clean, team):
    order = stack.make_order(paid="128.00")
    case_id = open_case(stack, order, "cash", "600.00", reason="净化器噪音大 noisy purifier")
    first = stack.waiting(case_id, "approval-supervisor")
    assert first.addressed_to == "supervisor"
    assert any(case_id in json.dumps(m.json, ensure_ascii=False) for m in stack.messages("/staff/supervisor"))
    by_manager = stack.approve(case_id, "approval-supervisor", team["S003"])  # the first level is the supervisor's
    assert by_manager.status == "rejected" and "role" in by_manager.reason
    # ¥600 is above the supervisor's ¥500 limit: their approval is the first of two, not an escalation
    assert stack.approve(case_id, "approval-supervisor", team["S002"], note="同意").status == "answered"
    assert stack.waiting(case_id, "approval-manager").addressed_to == "manager"
    assert stack.refunds(order["order_id"]) == []  # nothing is paid before the last level
    stack.faults(fail_after_commit=1)  # the platform commits, then loses the answer
    assert stack.approve(case_id, "approval-manager", team["S003"]).status == "answered"

    assert stack.finished(case_id, timeout=150).outcome == "compensated"
    refunds = stack.refunds(order["order_id"])
    assert [(r["kind"], Decimal(r["amount"])) for r in refunds] == [("compensation", Decimal("600.00"))]  # on top of the ¥128 paid
    [line] = ledger(case_id)
    assert (line.kind, line.amount, line.bearer, line.approved_by) == ("compensation", Decimal("600.00"), "seller", team["S003"])
    assert line.platform_paid is True and line.platform_ref == refunds[0]["refund_id"]
    assert_platform_paid_matches(stack, order, [line])
    accepted = [(e.details["step"], e.actor) for e in events(case_id) if e.action == "wait.accepted"]
    assert accepted == [("approval-supervisor", team["S002"]), ("approval-manager", team["S003"])]


def test_partial_refund_within_the_supervisors_limit_and_a_decline(stack, sandbox_clean, team):
    order = stack.make_order(paid="400.00")
    case_id = open_case(stack, order, "partial_refund", "300.00", reason="色差 colour differs from the photos")
    by_agent = stack.approve(case_id, "approval-supervisor", team["S001"])
    assert by_agent.status == "rejected"  # an agent may not approve
    stack.approve(case_id, "approval-supervisor", team["S006"])
    assert stack.finished(case_id).outcome == "compensated"
    assert [(r["kind"], Decimal(r["amount"])) for r in stack.refunds(order["order_id"])] == [("goods", Decimal("300.00"))]
    assert [(line.kind, line.approved_by) for line in ledger(case_id)] == [("compensation", team["S006"])]
    [line] = ledger(case_id)
    assert line.platform_paid is True  # a partial refund is a platform refund of the goods
    assert_platform_paid_matches(stack, order, [line])

    declined_order = stack.make_order(paid="400.00")
    declined = open_case(stack, declined_order, "cash", "100.00")
    no_note = stack.approve(declined, "approval-supervisor", team["S002"], decision="decline")
    assert no_note.status == "rejected" and "note" in no_note.reason
    stack.approve(declined, "approval-supervisor", team["S006"], decision="decline", note="已退货，无需补偿 already returned")
    assert stack.finished(declined).outcome == "declined"
    assert stack.refunds(declined_order["order_id"]) == [] and ledger(declined) == []
    assert "已退货" in agent_text(stack, declined)


def test_an_unanswered_level_escalates_and_the_unanswered_manager_declines(stack, sandbox_clean):
    order = stack.make_order(paid="400.00")
    case_id = open_case(stack, order, "cash", "300.00")
    supervisor = stack.waiting(case_id, "approval-supervisor")
    assert stack.sweep(case_id, days=0.9)["resumed"] == []  # 24 hours per level
    assert stack.sweep(case_id, days=1.1)["resumed"] == [case_id]
    escalated = stack.waiting(case_id, "approval-manager")
    assert escalated.addressed_to == "manager"
    # the manager's 24 h count from when the supervisor's passed, not from when the sweeper ran
    assert escalated.deadline == supervisor.deadline + timedelta(hours=24)
    assert any(e.action == "case.escalated" and e.details["to"] == "manager" for e in events(case_id))
    told = " ".join(json.dumps(m.json, ensure_ascii=False) for m in stack.messages("/staff/manager") if case_id in json.dumps(m.json, ensure_ascii=False))
    assert "未获主管审批,已升级给经理" in told and "not approved by the supervisors" in told  # each half in its own words

    assert stack.sweep(case_id, days=1.9)["resumed"] == []
    assert stack.sweep(case_id, days=2.1)["resumed"] == [case_id]  # the manager did not answer either
    case = stack.finished(case_id)
    assert case.outcome == "declined_no_answer"
    assert stack.refunds(order["order_id"]) == [] and ledger(case_id) == []
    assert "300.00" in agent_text(stack, case_id)


def test_escalated_approval_is_paid_with_the_manager_as_approver(stack, sandbox_clean, team):
    order = stack.make_order(paid="400.00")
    case_id = open_case(stack, order, "coupon", "50.00")
    stack.waiting(case_id, "approval-supervisor")
    stack.sweep(case_id, days=1.1)
    stack.approve(case_id, "approval-manager", team["S003"])
    assert stack.finished(case_id).outcome == "compensated"
    [line] = ledger(case_id)
    assert (line.kind, line.approved_by) == ("coupon", team["S003"])
    assert len(coupons(stack, order)) == 1
    assert line.platform_paid is False


def test_goods_are_shipped_from_stock(stack, sandbox_clean):
    sku = f"GIFT-{uuid.uuid4().hex[:6].upper()}"
    stack.sandbox("POST", f"/sandbox/stock/{sku}", json={"available": 4, "unit_price": "9.90", "name": "赠品 gift"})
    order = stack.make_order(paid="128.00")
    case_id = open_case(stack, order, "goods", None, goods=[f"{sku}:2"])
    assert finished(stack, case_id).outcome == "compensated"  # ¥19.80: within the agent's limit
    [shipment] = stack.reshipments(order["order_id"])
    assert shipment["items"] == [{"sku": sku, "quantity": 2}]
    assert stack.sandbox("GET", f"/api/stock/{sku}")["available"] == 2
    lines = {(line.kind, line.bearer): line.amount for line in ledger(case_id)}
    assert lines == {("goods", "seller"): Decimal("19.80"), ("outbound_postage", "seller"): Decimal("12.00")}
    assert [line.platform_paid for line in ledger(case_id)] == [False, False]  # goods and postage: no platform payment
    assert_platform_paid_matches(stack, order, ledger(case_id))


@pytest.mark.parametrize("form, amount, kwargs, code", [
    ("flowers", "10", {}, "unknown_form"),
    ("cash", "10", {"requested_by": "S999"}, "unknown_staff"),
    ("cash", "10", {"requested_by": "buyer"}, "unknown_staff"),
    ("cash", "10", {"reason": ""}, "reason_required"),
    ("cash", "ten", {}, "amount_not_numeric"),
    ("cash", "10", {"bearer": "nobody"}, "unknown_bearer"),
    ("partial_refund", "128.01", {}, "amount_above_paid"),
    ("goods", None, {"goods": ["NO-SUCH-SKU"]}, "unknown_items"),
])
def test_bad_requests_are_refused_and_record_nothing(stack, sandbox_clean, form, amount, kwargs, code):
    order = stack.make_order(paid="128.00")
    with pytest.raises(InvalidRequest) as refused:
        open_case(stack, order, form, amount, **kwargs)
    assert refused.value.code == code
    with session_scope() as session:
        assert session.exec(select(Case).where(Case.order_id == order["order_id"])).all() == []
