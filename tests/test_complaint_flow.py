"""Complaints (rulebook §1.10) end to end: real Prefect server, served deployments, the sandbox
platform, the case database and a real notification receiver. Time moves only by the sweeper."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from aftersales.domain.details import ComplaintDetails, details_of
from aftersales.domain.models import Case
from aftersales.domain.outcomes import Outcome
from aftersales.domain.rules import InvalidRequest
from aftersales.integrations.db import session_scope
from tests.support.records import card_shows_the_close, card_shows_the_wait, case_view, events, ledger, text, wait_row

HOUR = 1 / 24
PHONE = "13812345678"  # the complainant's contact, as opened below


def about(stack, tag: str, case_id: str) -> list:
    return [m for m in stack.messages(f"/staff/{tag}") if case_id in json.dumps(m.json, ensure_ascii=False)]


def open_complaint(stack, **overrides) -> str:
    from aftersales.intake.complaint import open_complaint as opener

    values = dict(channel="phone", category="1001", level=2, customer_name="韩梅梅", contact="13812345678",
                  object="纯棉T恤", cause="洗一次就缩水 shrank after one wash", demand="赔偿 compensation",
                  ticket=f"T{uuid.uuid4().hex[:8].upper()}")
    return stack.run(opener(**{**values, **overrides})).case_id


def test_quality_complaint_compensated_once_with_approval(stack, sandbox_clean, team):
    order = stack.make_order(paid="299.00")
    case_id = open_complaint(stack, order_id=order["order_id"], famous_brand=True, brand_owner="优衣品牌方 Brand Co.")
    # a repeated request (same ticket) opens nothing new
    first_run = stack.waiting(case_id, "first-response").flow_run_id

    response = stack.waiting(case_id, "first-response")
    assert response.addressed_to == "quality"  # 1xxx product → quality department (002 §4.1)
    with session_scope() as session:
        case = session.get(Case, case_id)
        details = details_of(case, ComplaintDetails)
        assert case.level == 2 and details.brand_owner == "优衣品牌方 Brand Co." and details.special == ["famous_brand"]
    assert "优衣品牌方" in text(about(stack, "quality", case_id))

    # the run page at every step: whom it waits for, until when, in that one queue (contact masked)
    card_shows_the_wait(stack, case_id, response, mask=PHONE)
    # the quality department answers as a team: whoever is on shift takes a step
    quality = team.colleague("S008")
    empty = stack.approve(case_id, "first-response", quality, message=" ")
    assert empty.status == "rejected" and "message" in empty.reason
    stack.approve(case_id, "first-response", quality, message="您好，已收到您的投诉，今天内给您方案。", confirmed_facts="缩水约 2cm")
    assert quality in card_shows_the_wait(stack, case_id, stack.waiting(case_id, "investigation"), mask=PHONE)  # who answered
    stack.approve(case_id, "investigation", team["S008"], findings="供应商确认该批次面料预缩不足", responsible_party="supplier")
    card_shows_the_wait(stack, case_id, stack.waiting(case_id, "solution-1"), mask=PHONE)
    stack.approve(case_id, "solution-1", team["S008"], remedy="compensation", compensation_amount="50.00", message="致歉并补偿 50 元")

    approval = stack.waiting(case_id, "compensation-approval-1-supervisor")
    assert approval.addressed_to == "supervisor"  # 50 CNY is above an agent's 20 (§1.3)
    card_shows_the_wait(stack, case_id, approval, mask=PHONE)
    assert stack.approve(case_id, "compensation-approval-1-supervisor", team["S002"], decision="approve").status == "answered"
    assert stack.refunds(order["order_id"]) == []  # nothing paid before the customer agrees
    card_shows_the_wait(stack, case_id, stack.waiting(case_id, "customer-answer-1"), mask=PHONE)
    assert stack.answer(case_id, "customer-answer-1", answer="agree", comment="可以").status == "answered"
    card_shows_the_wait(stack, case_id, stack.waiting(case_id, "result-feedback"), mask=PHONE)
    money = case_view(stack, case_id)[2]  # the money table before the close: the compensation, once
    assert [(row["kind"], row["amount"], row["approved_by"]) for row in money] == [("compensation", "50.00", team["S002"])]
    stack.approve(case_id, "result-feedback", team.colleague("S008", 2), channel="phone", satisfaction="satisfied", note="客户满意")

    case = stack.finished(case_id)
    assert case.outcome == "resolved" and case.flow_run_id == first_run
    card, money = card_shows_the_close(stack, case_id, Outcome(case.outcome).label)
    assert team["S002"] in card and [row["amount"] for row in money] == ["50.00"]
    refunds = stack.refunds(order["order_id"])
    assert [(r["kind"], Decimal(r["amount"])) for r in refunds] == [("compensation", Decimal("50.00"))]
    [line] = ledger(case_id)
    assert (line.kind, line.amount, line.bearer, line.approved_by, line.responsible_department) == (
        "compensation", Decimal("50.00"), "supplier", team["S002"], "quality")
    assert line.platform_ref == refunds[0]["refund_id"]

    actions = [e.action for e in events(case_id)]
    for action in ("case.opened", "complaint.confirmed", "complaint.investigated", "complaint.solution_proposed",
                   "complaint.solution_sent", "complaint.solution_agreed", "compensation.paid", "complaint.handled", "case.closed"):
        assert action in actions
    buyer = text(stack.customer_messages(order))
    assert "今天内给您方案" in buyer and "50.00" in buyer and case_id in buyer
    assert about(stack, "finance", case_id)


def test_no_order_means_no_compensation_and_customer_rejection_leads_to_a_new_proposal(stack, sandbox_clean, team):
    case_id = open_complaint(stack, category="4001", level=3, contact="guest@buyer.example", object="客服态度",
                             cause="客服挂断电话", demand="道歉")
    assert stack.waiting(case_id, "first-response").addressed_to == "agent"  # after-sales, level 3 → agent
    agent = team.colleague("S001")  # another agent of the after-sales team takes the first steps
    stack.approve(case_id, "first-response", agent, message="抱歉给您带来不好的体验，我们正在核实。")
    stack.approve(case_id, "investigation", agent, findings="录音核实属实", responsible_party="seller")

    refused = stack.approve(case_id, "solution-1", team["S001"], remedy="compensation", compensation_amount="10.00", message="补偿 10 元")
    assert refused.status == "rejected" and "without an order" in refused.reason
    stack.approve(case_id, "solution-1", team["S012"], remedy="apology", message="正式致歉，并对客服进行培训")
    assert stack.answer(case_id, "customer-answer-1", answer="reject", comment="要求主管致电").status == "answered"
    stack.waiting(case_id, "solution-2")  # the rejection is recorded and the handler told first
    assert "要求主管致电" in text(about(stack, "agent", case_id))

    stack.approve(case_id, "solution-2", team.colleague("S001", 2), remedy="apology", message="主管将于今天致电致歉")
    stack.waiting(case_id, "customer-answer-2")
    assert stack.sweep(case_id, days=2.9)["resumed"] == []
    assert stack.sweep(case_id, days=3.1)["resumed"] == [case_id]  # silence = agreement (default)
    stack.waiting(case_id, "result-feedback")
    assert wait_row(case_id, "customer-answer-2-1").actor == "system"

    stack.approve(case_id, "result-feedback", team.colleague("S001", 2), channel="phone", satisfaction="unsatisfied", note="仍不满意")
    case = stack.finished(case_id)
    assert case.outcome == "unresolved"
    assert ledger(case_id) == []
    assert about(stack, "supervisor", case_id)  # an unsatisfied customer is the supervisor's business
    buyer = [m for m in stack.received if "/customer/" in m.path and case_id in json.dumps(m.json, ensure_ascii=False)]
    assert any("主管将于今天致电致歉" in json.dumps(m.json, ensure_ascii=False) for m in buyer)


def test_first_response_escalates_to_supervisor_before_and_manager_after_the_deadline(stack, sandbox_clean, team):
    case_id = open_complaint(stack, category="2001", level=1, object="快递丢件", cause="包裹三天无物流", demand="补发")
    assert stack.waiting(case_id, "first-response").addressed_to == "logistics"

    # level 1: first response in 2 h; the supervisor is told at 75 % of it (1.5 h)
    assert stack.sweep(case_id, days=1.4 * HOUR)["resumed"] == []
    assert stack.sweep(case_id, days=1.6 * HOUR)["resumed"] == [case_id]
    assert stack.waiting(case_id, "first-response-supervisor").addressed_to == "supervisor"
    escalations = [e for e in events(case_id) if e.action == "case.escalated"]
    assert [(e.details["to"], e.details["why"]) for e in escalations] == [("supervisor", "warning")]
    assert "escalated to the supervisor" in text(about(stack, "supervisor", case_id))
    assert about(stack, "logistics", case_id)  # the handler is told too

    assert stack.sweep(case_id, days=1.9 * HOUR)["resumed"] == []
    assert stack.sweep(case_id, days=2.1 * HOUR)["resumed"] == [case_id]
    assert stack.waiting(case_id, "first-response-overdue-1").addressed_to == "manager"
    assert "escalated to the manager" in text(about(stack, "manager", case_id))

    assert stack.sweep(case_id, days=4.1 * HOUR)["resumed"] == [case_id]  # reminded every 2 h after
    stack.waiting(case_id, "first-response-overdue-2")
    assert [e.details["reminder"] for e in events(case_id) if e.action == "case.overdue_reminder"] == [1]

    assert stack.approve(case_id, "first-response-overdue-2", team["S003"], message="经理已介入，马上为您补发").status == "answered"
    stack.waiting(case_id, "investigation")
    assert [e.details["to"] for e in events(case_id) if e.action == "case.escalated"] == ["supervisor", "manager"]


def test_high_value_compensation_needs_two_levels_is_refused_at_deadline_and_feedback_deadline(stack, sandbox_clean, team):
    order = stack.make_order(paid="1299.00")
    case_id = open_complaint(stack, order_id=order["order_id"], level=1, high_value=True, object="净化器", cause="异响", demand="赔偿")
    assert stack.waiting(case_id, "first-response").addressed_to == "manager"  # dedicated team (002 §5.2)
    dedicated = team.colleague("S003")  # the dedicated team's other manager takes the first steps
    stack.approve(case_id, "first-response", dedicated, message="已安排专人跟进")
    stack.approve(case_id, "investigation", dedicated, findings="风机轴承异响", responsible_party="seller")
    stack.approve(case_id, "solution-1", team["S003"], remedy="compensation", compensation_amount="600.00", message="补偿 600 元")

    # ¥600: §1.3's one rule, as in the compensation process — the supervisor, then the manager
    assert stack.waiting(case_id, "compensation-approval-1-supervisor").addressed_to == "supervisor"
    assert stack.approve(case_id, "compensation-approval-1-supervisor", team["S002"]).status == "answered"
    assert stack.waiting(case_id, "compensation-approval-1-manager").addressed_to == "manager"
    own = stack.approve(case_id, "compensation-approval-1-manager", team["S003"])
    assert own.status == "rejected" and "cannot approve it" in own.reason
    again = stack.approve(case_id, "compensation-approval-1-manager", team.colleague("S002"))
    assert again.status == "rejected"  # a supervisor is not a manager

    # 24 h without approval: refused, back to the handler for a new proposal; nothing is paid
    assert stack.sweep(case_id, days=1.05)["resumed"] == [case_id]
    stack.waiting(case_id, "solution-2")
    assert any(e.action == "complaint.compensation_refused" and e.actor == "system" for e in events(case_id))
    stack.approve(case_id, "solution-2", team.colleague("S003", 2), remedy="return_exchange", message="为您办理退货，运费由本店承担")
    stack.answer(case_id, "customer-answer-2", answer="agree")

    spoken = stack.approve(case_id, "result-feedback", team.colleague("S003", 2), channel="phone", satisfaction="satisfied")
    assert spoken.status == "rejected" and "written" in spoken.reason  # level 1 → written feedback (002 §4.3)
    stack.waiting(case_id, "result-feedback")
    assert stack.sweep(case_id, days=5.5)["resumed"] == [case_id]  # 3 working days, whatever the weekday
    case = stack.finished(case_id)
    assert case.outcome == "resolved"
    assert stack.refunds(order["order_id"]) == [] and ledger(case_id) == []
    assert "complaint.solution_agreed" in [e.action for e in events(case_id)]
    assert any(e.action == "case.escalated" and e.details.get("step") == "result-feedback" for e in events(case_id))
    assert "not fed back" in text(about(stack, "supervisor", case_id))
    assert "Result" in text(stack.customer_messages(order)) or "结果" in text(stack.customer_messages(order))


@pytest.mark.parametrize("overrides,code", [
    ({"category": "6001"}, "bad_category"),
    ({"category": "2000"}, "bad_category"),
    ({"level": 5}, "bad_level"),
    ({"channel": "fax"}, "bad_channel"),
    ({"contact": "nobody"}, "bad_contact"),
    ({"cause": "  "}, "cause_required"),
    ({"famous_brand": True}, "brand_owner_required"),
    ({"order_id": "O-DOES-NOT-EXIST"}, "unknown_order"),
])
def test_bad_input_is_refused_and_nothing_recorded(stack, overrides, code):
    ticket = f"BAD{uuid.uuid4().hex[:6]}"
    with pytest.raises(InvalidRequest) as error:
        open_complaint(stack, ticket=ticket, **overrides)
    assert error.value.code == code
    with session_scope() as session:
        assert session.get(Case, f"complaint-{ticket}") is None


def test_cli_explains_a_bad_category(stack):
    from aftersales.deployments.cli import app

    result = CliRunner().invoke(app, ["complaint", "open", "--channel", "email", "--category", "7001", "--level", "2",
                                      "--name", "李雷", "--contact", "li@x.cn", "--object", "a", "--cause", "b", "--demand", "c"])
    assert result.exit_code == 2 and "1001–5999" in result.output
