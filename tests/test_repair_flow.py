"""Repair (rulebook §1.5) end to end on the real stack: the six stages, the superior's approval of
out-of-warranty/out-of-scope repairs, every deadline's default, the costs in the ledger."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlmodel import select

from aftersales.domain.calendar import business_calendar, shop_time
from aftersales.domain.models import Case
from aftersales.domain.repair_rules import RepairStage
from aftersales.domain.rules import InvalidRequest
from aftersales.domain.settings import get_settings
from aftersales.integrations.db import session_scope
from tests.support.records import events, ledger, text
from tests.support.records import assert_platform_paid_matches

SKU = "SKU-PURIFIER"
ITEMS = [{"sku": SKU, "name": "空气净化器", "category": "appliance", "quantity": 1, "unit_price": "1279.00"}]


def open_repair(stack, delivered_days_ago: float = 30, scope: str = "in_scope", **kwargs) -> tuple[dict, str]:
    from aftersales.intake.repair import open_repair as opener

    order = stack.make_order(paid="1279.00", items=ITEMS, delivered_days_ago=delivered_days_ago)
    opened = stack.run(opener(order["order_id"], SKU, kwargs.pop("fault", "风机异响 the fan rattles"), scope,
                                 stack.member(kwargs.pop("requested_by", "S001"))))
    return order, opened.case_id


def ship_in(stack, case_id: str, postage: str = "12.00"):
    return stack.answer(case_id, "buyer-ships", action="shipped", carrier="zhongtong", tracking_number="ZT900100200", postage_paid=postage)


def through_the_workshop(stack, case_id: str, cost: str = "35.00"):
    stack.approve(case_id, "repair-receipt", "S004", note="外观完好，配件齐全")
    stack.approve(case_id, "repair-done", "S008", repair_cost=cost, note="更换风机轴承")
    stack.approve(case_id, "repair-ship-back", "S007", carrier="shunfeng", tracking_number="SF100200300", postage="15.00")


def test_in_warranty_repair_goes_through_six_stages_at_the_sellers_cost(stack, sandbox_clean, team):
    order, case_id = open_repair(stack)
    assert stack.waiting(case_id, "buyer-ships").addressed_to == "buyer"  # in warranty: no approval
    assert "免费" in text(stack.customer_messages(order))  # the buyer is told the repair is free
    missing = stack.answer(case_id, "buyer-ships", action="shipped", carrier="", tracking_number="")
    assert missing.status == "rejected" and "tracking" in missing.reason
    ship_in(stack, case_id)
    through_the_workshop(stack, case_id)
    stack.answer(case_id, "buyer-receipt", note="已修好")

    case = stack.finished(case_id)
    assert case.outcome == "repaired"
    stages = [e.details["stage"] for e in events(case_id) if e.action == "repair.stage"]
    assert stages == [stage.value for stage in RepairStage]  # all six, in order
    buyer = text(stack.customer_messages(order))
    for told in ("买家已寄出", "仓库已收货确认", "维修中", "维修完成", "已寄回给您", "您已收货", "SF100200300"):
        assert told in buyer
    lines = {(line.kind, line.bearer): line for line in ledger(case_id)}
    assert lines[("repair_cost", "seller")].amount == Decimal("35.00")
    assert lines[("outbound_postage", "seller")].amount == Decimal("15.00")
    assert lines[("return_postage", "seller")].amount == Decimal("12.00")  # the buyer's postage in, refunded
    assert {line.approved_by for line in lines.values()} == {team["S001"]}  # within warranty: the agent's repair order
    refunds = stack.refunds(order["order_id"])
    assert [(r["kind"], Decimal(r["amount"])) for r in refunds] == [("postage", Decimal("12.00"))]
    # the postage-in refund is the platform's payment; the repair cost and the postage back are not
    assert lines[("return_postage", "seller")].platform_paid is True
    assert lines[("return_postage", "seller")].platform_ref == refunds[0]["refund_id"]
    assert not lines[("repair_cost", "seller")].platform_paid and not lines[("outbound_postage", "seller")].platform_paid
    assert_platform_paid_matches(stack, order, list(lines.values()))
    actors = {(e.action, e.details.get("step")): e.actor for e in events(case_id)}
    assert actors[("wait.accepted", "repair-done")] == team["S008"]


def test_out_of_warranty_needs_a_superior_and_the_buyer_pays_the_quote(stack, sandbox_clean, team):
    order, case_id = open_repair(stack, delivered_days_ago=get_settings().rules.repair_warranty_days + 20)
    wait = stack.waiting(case_id, "repair-approval")
    assert wait.addressed_to == "supervisor"
    assert "主管审核" in text(stack.customer_messages(order))
    by_agent = stack.approve(case_id, "repair-approval", team["S012"], decision="approve", quote="150.00")
    assert by_agent.status == "rejected" and "role" in by_agent.reason
    stack.approve(case_id, "repair-approval", team["S002"], decision="approve", quote="150.00")

    stack.waiting(case_id, "buyer-ships")
    assert "150.00" in text(stack.customer_messages(order))
    ship_in(stack, case_id, postage="10.00")
    through_the_workshop(stack, case_id, cost="80.00")
    stack.answer(case_id, "buyer-receipt")
    assert stack.finished(case_id).outcome == "repaired"
    lines = {(line.kind, line.bearer): line for line in ledger(case_id)}
    assert set(lines) == {("repair_cost", "buyer"), ("outbound_postage", "buyer")}
    assert {line.approved_by for line in lines.values()} == {team["S002"]}
    assert stack.refunds(order["order_id"]) == []  # the buyer's own postage stays theirs
    assert not any(line.platform_paid for line in lines.values())


def test_declined_repair_and_the_approval_deadline(stack, sandbox_clean, team):
    order, case_id = open_repair(stack, scope="out_of_scope", fault="进水 water damage")
    no_note = stack.approve(case_id, "repair-approval", team["S006"], decision="decline")
    assert no_note.status == "rejected" and "note" in no_note.reason
    stack.approve(case_id, "repair-approval", team["S003"], decision="decline", note="人为进水不在保修范围")
    assert stack.finished(case_id).outcome == "repair_declined"
    assert "人为进水不在保修范围" in text(stack.customer_messages(order))

    late_order, late = open_repair(stack, scope="out_of_scope", fault="摔坏 dropped")
    stack.waiting(late, "repair-approval")
    assert stack.sweep(late, days=1)["resumed"] == []
    stack.sweep(late, days=5)  # 2 working days, whatever the weekday
    case = stack.finished(late)
    assert case.outcome == "repair_declined"
    assert "超时" in text(stack.customer_messages(late_order))  # the buyer is told
    assert ledger(late) == []


def test_buyer_not_shipping_closes_and_a_buyer_may_withdraw(stack, sandbox_clean):
    _order, case_id = open_repair(stack)
    stack.waiting(case_id, "buyer-ships")
    assert stack.sweep(case_id, days=6.5)["resumed"] == []
    stack.sweep(case_id, days=7.2)
    assert stack.finished(case_id).outcome == "closed_not_shipped"

    _order, other = open_repair(stack)
    stack.answer(other, "buyer-ships", action="withdrawn")
    assert stack.finished(other).outcome == "repair_withdrawn"


def test_an_overdue_stage_escalates_and_receipt_is_taken_as_given(stack, sandbox_clean, team):
    _order, case_id = open_repair(stack)
    ship_in(stack, case_id, postage="0.00")
    first = stack.waiting(case_id, "repair-receipt")
    stack.sweep(case_id, days=8)  # 5 working days without the warehouse
    escalated = stack.waiting(case_id, "repair-receipt-supervisor")
    assert escalated.addressed_to == "supervisor"
    # the supervisor's 5 working days count from when the warehouse's passed, not from the sweep
    days = get_settings().rules.repair_stage_working_days
    assert escalated.deadline == business_calendar().add_working_days(first.deadline, days)
    told = [m for m in stack.messages("/staff/supervisor") if case_id in json.dumps(m.json, ensure_ascii=False)]
    assert "escalated to the supervisor" in text(told)  # it says it is late, not just "to do"
    # since when, and whose it was, in each language's words; one message, not also a generic "to do"
    assert f"截至 {shop_time(first.deadline)} 仍未处理" in text(told) and "原处理人:仓库。" in text(told) and "warehouse。" not in text(told)
    assert "待您处理" not in text(told), text(told)
    assert any(case_id in text([m]) and "/approve/" in text([m]) for m in stack.messages(f"/person/{team['S002']}"))  # their link
    warehouse = [m for m in stack.messages("/staff/warehouse") if case_id in json.dumps(m.json, ensure_ascii=False)]
    # a stage decides no money: neither message shows the order's value (1279.00) as an amount
    assert warehouse and "1279.00" not in text(warehouse) + text(told) and "金额" not in text(warehouse) + text(told)
    # the warehouse reads staff words, the buyer's wording ("you have sent the item") only reaches the buyer
    assert "the buyer has sent the item" in text(warehouse) and "you have" not in text(warehouse), text(warehouse)
    assert any(case_id in json.dumps(m.json, ensure_ascii=False) for m in stack.messages("/staff/supervisor"))
    stack.approve(case_id, "repair-receipt-supervisor", team["S002"], note="主管催办后确认")
    stack.approve(case_id, "repair-done", team["S008"], repair_cost="0.00")
    stack.approve(case_id, "repair-ship-back", team["S004"], carrier="zhongtong", tracking_number="ZT300400500", postage="12.00")
    stack.waiting(case_id, "buyer-receipt")
    assert stack.sweep(case_id, days=9)["resumed"] == []
    stack.sweep(case_id, days=10.2)
    case = stack.finished(case_id)
    assert case.outcome == "repaired"
    assert next(e for e in events(case_id) if e.details.get("stage") == RepairStage.BUYER_RECEIVED.value).actor == "system"
    assert any(e.action == "case.escalated" for e in events(case_id))
    assert {(line.kind, line.bearer) for line in ledger(case_id)} == {("outbound_postage", "seller")}  # no cost, no postage in


@pytest.mark.parametrize("kwargs, code", [
    ({"delivered_days_ago": None}, "not_delivered"),
    ({"sku": "SKU-NOT-IN-ORDER"}, "unknown_item"),
    ({"fault": "  "}, "fault_required"),
    ({"scope": "whatever"}, "unknown_scope"),
])
def test_bad_repair_requests_are_refused_and_nothing_is_recorded(stack, sandbox_clean, kwargs, code):
    from aftersales.intake.repair import open_repair as opener

    order = stack.make_order(paid="1279.00", items=ITEMS, delivered_days_ago=kwargs.get("delivered_days_ago", 3))
    with pytest.raises(InvalidRequest) as error:
        stack.run(opener(order["order_id"], kwargs.get("sku", SKU), kwargs.get("fault", "坏了"), kwargs.get("scope", "in_scope")))
    assert error.value.code == code and error.value.message
    with session_scope() as session:
        assert session.exec(select(Case).where(Case.order_id == order["order_id"])).all() == []
