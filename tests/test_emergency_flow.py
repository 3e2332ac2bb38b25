"""Emergencies (rulebook §3.1) end to end on the real stack: recorded with every affected customer,
updated on schedule whether or not anybody remembers, closed only with the post-incident review —
and opened once by a severe early-warning breach and by a group complaint."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from sqlmodel import select

from aftersales.domain.details import EmergencyDetails, details_of
from aftersales.domain.models import Case, CaseStatus, Process
from aftersales.integrations.db import session_scope
from aftersales.reporting.months import Month
from aftersales.reporting.statistics import monthly_statistics
from aftersales.tasks.emergency import STANDARD_UPDATE
from tests.support.records import events, text, wait_row


def open_emergency(stack, **values) -> str:
    from aftersales.intake.emergency import open_emergency as opener

    values.setdefault("ref", f"E-{uuid.uuid4().hex[:10]}")
    return stack.run(opener(**values)).case_id


def emergency(case_id: str) -> EmergencyDetails:
    with session_scope() as session:
        return details_of(session.get(Case, case_id), EmergencyDetails)


def test_every_customer_is_updated_on_schedule_and_it_closes_only_with_its_review(stack, sandbox_clean, team):
    first_order, second_order = stack.make_order(paid="10.00"), stack.make_order(paid="20.00")
    case_id = open_emergency(stack, title="仓库漏水 warehouse leak", severity=2, scope="华东仓 A 区 zone A",
                             orders=[first_order["order_id"], second_order["order_id"]], reported_by=team["S004"])
    assert {c.customer_id for c in emergency(case_id).customers} == {o["customer"]["customer_id"] for o in (first_order, second_order)}
    plan = stack.waiting(case_id, "contingency-plan")
    with session_scope() as session:
        opened_at = session.get(Case, case_id).opened_at
    assert plan.addressed_to == "supervisor" and plan.deadline == opened_at + timedelta(hours=4)  # severity 2: 4 h
    assert case_id in text(stack.messages("/staff/supervisor"))  # told at once

    stack.approve(case_id, "contingency-plan", team["S002"], owner=team["S006"], plan="先转移受潮货品再重新发货",
                  update_every_hours=2, first_update="仓库漏水，您的订单将延迟 1–2 天发出")
    for order in (first_order, second_order):  # every affected customer, in their own channel
        stack.wait_for_message(order, "延迟 1–2 天发出")
    first = stack.waiting(case_id, "customer-update-1")
    planned = wait_row(case_id, "contingency-plan-1").answered_at
    assert first.deadline == planned + timedelta(hours=2)

    stack.sweep(case_id, days=0.125)  # 3 h: nobody sent the update — the customers still hear
    for order in (first_order, second_order):
        stack.wait_for_message(order, STANDARD_UPDATE[:8])
    second = stack.waiting(case_id, "customer-update-2")
    assert second.deadline == first.deadline + timedelta(hours=2)  # from when it was due, not from the late sweep

    stack.approve(case_id, "customer-update-2", team["S006"], status="resolved", message="货品已全部重新发出")
    for order in (first_order, second_order):
        stack.wait_for_message(order, "货品已全部重新发出")
    assert emergency(case_id).updates_sent == 3

    stack.waiting(case_id, "post-incident-review")
    stack.sweep(case_id, days=30)  # no review: no close, the managers are told
    stack.waiting(case_id, "post-incident-review-manager")
    with session_scope() as session:
        assert session.get(Case, case_id).status != CaseStatus.CLOSED
    stack.approve(case_id, "post-incident-review-manager", team["S003"], cause="屋顶排水堵塞", actions="转移货品、重新发货",
                  prevention="雨季前检查排水")
    assert stack.finished(case_id).outcome == "resolved"
    assert emergency(case_id).review.prevention == "雨季前检查排水"
    month = Month.parse(datetime.now(timezone(timedelta(hours=8))).strftime("%Y-%m"))
    [reviewed] = [e for e in monthly_statistics(month).emergencies if e["case_id"] == case_id]
    assert (reviewed["cause"], reviewed["customers"], reviewed["updates"]) == ("屋顶排水堵塞", 2, 3)


def test_a_severe_early_warning_opens_one_emergency_with_its_cases(stack, sandbox_clean):
    from aftersales.flows.early_warning import early_warning

    sku = f"SKU-SURGE-{uuid.uuid4().hex[:6].upper()}"
    now = datetime.now(timezone.utc)
    surge = [f"return-SURGE-{uuid.uuid4().hex[:8]}" for _ in range(12)]  # 12 returns of one SKU: over twice the floor of 5
    with session_scope() as session:
        for n, case_id in enumerate(surge):
            session.add(Case(id=case_id, process=Process.RETURN, order_id=f"O-SURGE-{n}", customer_id=f"C-SURGE-{n}", requested_by="buyer",
                             status=CaseStatus.CLOSED, opened_at=now - timedelta(minutes=n + 1),
                             details={"items": [{"sku": sku, "name": "x", "category": "surge", "quantity": 1, "unit_price": "1.00"}]}))
    for _ in range(2):  # the next sweep finds the same breach: still one emergency
        report = stack.run(early_warning(as_of=now))
    mine = [case_id for case_id in report["emergencies"] if case_id and sku.lower() in case_id.lower()]
    assert len(mine) == 1
    with session_scope() as session:
        opened = session.exec(select(Case).where(Case.process == Process.EMERGENCY, Case.id.contains(sku))).all()
    assert [case.id for case in opened] == mine
    details = emergency(mine[0])
    assert sorted(details.affected_cases) == sorted(surge) and details.source.value == "early_warning" and details.severity == 2
    stack.waiting(mine[0], "contingency-plan")


def test_a_group_complaint_is_an_emergency_linked_to_it(stack, sandbox_clean):
    from aftersales.intake.complaint import open_complaint

    ticket = f"G{uuid.uuid4().hex[:8]}"
    complaint = stack.run(open_complaint(channel="phone", category="1002", level=2, customer_name="王芳", contact="13900001111",
                                         object="批次面霜 a batch of face cream", cause="多位顾客过敏 several customers reacted",
                                         demand="退款 refund", ticket=ticket, group=True)).case_id
    linked = emergency(f"emergency-group-{ticket}")
    assert linked.affected_cases == [complaint] and linked.source.value == "group_complaint"
    assert [c.contact for c in linked.customers] == ["13900001111"]
    stack.waiting(f"emergency-group-{ticket}", "contingency-plan")  # its run started: the plan is due
    assert any(e.action == "case.opened" for e in events(f"emergency-group-{ticket}"))
    stack.sweep(f"emergency-group-{ticket}", days=0.25)  # no plan in 4 h: the managers have it, with a reminder span
    assert stack.waiting(f"emergency-group-{ticket}", "contingency-plan-manager").addressed_to == "manager"
    assert any(e.action == "case.escalated" and e.details["to"] == "manager" for e in events(f"emergency-group-{ticket}"))
