"""Disputes (rulebook §1.8) end to end: registration against the order, the shop's reply and its
deadline, closing only with responsibility and root cause, and the daily register."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from aftersales.approvals.resume import ResumeRefused, resume_wait
from aftersales.domain.details import DisputeDetails, details_of
from aftersales.domain.models import Case, CaseEvent
from aftersales.domain.rules import InvalidRequest
from aftersales.integrations.db import session_scope

CLOSING = dict(result="refunded", final_explanation="平台判定描述不符，已退款", handling_opinion="修改详情页参数并复核同类商品",
               responsible_department="operations", responsible_person="王磊 S013", penalty="扣绩效 5 分",
               root_cause="description", root_cause_detail="详情页噪音参数未经实测")


def events(case_id: str) -> list[CaseEvent]:
    with session_scope() as session:
        return list(session.exec(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)))


def about(stack, tag: str, case_id: str) -> str:
    return json.dumps([m.json for m in stack.messages(f"/staff/{tag}") if case_id in json.dumps(m.json, ensure_ascii=False)], ensure_ascii=False)


def open_dispute(stack, order: dict, **kwargs) -> str:
    from aftersales.intake.dispute import open_dispute as opener

    values = dict(reason="not_as_described", buyer_statement="实物颜色与图片不符 colour differs from the photos")
    return stack.run(opener(order["order_id"], **{**values, **kwargs})).case_id


def test_reply_and_closing_with_responsibility(stack, sandbox_clean, team):
    order = stack.make_order(paid="399.00")
    case_id = open_dispute(stack, order, platform_ref="WQ001", claimed_amount="399.00")
    assert case_id == f"dispute-{order['order_id']}-WQ001"
    reply = stack.waiting(case_id, "shop-reply")
    assert reply.addressed_to == "dispute"
    assert "实物颜色与图片不符" in about(stack, "dispute", case_id)

    # S010 registered it and may still reply (the buyer is the requester)
    assert stack.approve(case_id, "shop-reply", team["S010"], position="contest", reply="发货前已拍照存档，颜色一致",
                         evidence="出库照片 IMG-2231").status == "answered"
    stack.waiting(case_id, "closing")

    colleague = team.colleague("S010")  # the dispute desk's other member tries first
    blank = stack.approve(case_id, "closing", colleague, **{**CLOSING, "responsible_person": " ", "penalty": ""})
    assert blank.status == "rejected" and "responsible person" in blank.reason and "penalty" in blank.reason
    nobody = stack.approve(case_id, "closing", colleague, **{**CLOSING, "responsible_department": "none"})
    assert nobody.status == "rejected" and "not 'none'" in nobody.reason
    # the department is a required field: the server keeps the run waiting without it
    incomplete = {k: v for k, v in CLOSING.items() if k != "responsible_department"}
    with pytest.raises(ResumeRefused):
        stack.run(resume_wait(case_id, {"staff_id": team.colleague("S010", 2), "code": stack.code(team.colleague("S010", 2)), **incomplete}, "closing"))
    assert stack.approve(case_id, "closing", team["S010"], **CLOSING).status == "answered"

    case = stack.finished(case_id)
    assert case.outcome == "refunded"
    details = details_of(case, DisputeDetails)
    assert details.closing.responsible_person == "王磊 S013"
    assert details.closing.root_cause == "description" and details.closed_by == team["S010"]
    responsibility = [e for e in events(case_id) if e.action == "dispute.responsibility"]
    assert responsibility and responsibility[0].details["penalty"] == "扣绩效 5 分"
    buyer = json.dumps([m.json for m in stack.customer_messages(order)], ensure_ascii=False)
    assert "发货前已拍照存档" in buyer and case_id in buyer
    assert "扣绩效 5 分" in about(stack, "supervisor", case_id)


def test_no_reply_escalates_to_supervisor_then_manager(stack, sandbox_clean, team):
    order = stack.make_order(paid="129.00")
    case_id = open_dispute(stack, order, reason="quality", buyer_statement="开线")
    stack.waiting(case_id, "shop-reply")

    assert stack.sweep(case_id, days=2.9)["resumed"] == []  # dispute_reply_days = 3
    assert stack.sweep(case_id, days=3.1)["resumed"] == [case_id]
    assert stack.waiting(case_id, "shop-reply-supervisor").addressed_to == "supervisor"
    escalated = [e for e in events(case_id) if e.action == "case.escalated"]
    assert [(e.details["to"], e.actor) for e in escalated] == [("supervisor", "system")]
    assert "escalated to the supervisor" in about(stack, "supervisor", case_id)

    assert stack.sweep(case_id, days=6.1)["resumed"] == [case_id]
    assert stack.waiting(case_id, "shop-reply-overdue-1").addressed_to == "manager"
    assert "escalated to the manager" in about(stack, "manager", case_id)
    assert stack.approve(case_id, "shop-reply-overdue-1", team["S002"], position="accept", reply="同意退货退款").status == "answered"

    # closing: 15 days from registration, then the supervisor
    stack.waiting(case_id, "closing")
    assert stack.sweep(case_id, days=14.9)["resumed"] == []
    assert stack.sweep(case_id, days=15.1)["resumed"] == [case_id]
    assert stack.waiting(case_id, "closing-supervisor").addressed_to == "supervisor"
    stack.approve(case_id, "closing-supervisor", team["S002"], **{**CLOSING, "result": "settled", "responsible_department": "quality",
                                                 "root_cause": "product_quality"})
    assert stack.finished(case_id).outcome == "settled"


def test_daily_register_lists_new_and_open_disputes_in_one_message(stack, sandbox_clean):
    from aftersales.domain.settings import get_settings
    from aftersales.flows.dispute import dispute_daily_register

    first, second = stack.make_order(paid="59.00"), stack.make_order(paid="88.00")
    a = open_dispute(stack, first, reason="not_received", buyer_statement="显示签收但没收到")
    b = open_dispute(stack, second, reason="service", buyer_statement="客服态度差")
    stack.waiting(a, "shop-reply")
    stack.waiting(b, "shop-reply")
    before = len(stack.messages("/staff/dispute"))

    today = datetime.now(timezone.utc).astimezone(get_settings().tz).date()
    result = stack.run(dispute_daily_register(day=today))
    assert {a, b} <= set(result["new"]) and {a, b} <= set(result["open"])
    registers = [m for m in stack.messages("/staff/dispute")[before:] if "维权日登记" in json.dumps(m.json, ensure_ascii=False)]
    assert len(registers) == 1  # one message for the whole register, not one per dispute
    body = json.dumps(registers[0].json, ensure_ascii=False)
    assert a in body and b in body and "显示签收" not in body  # case lines, no statements
    assert any(e.action == "dispute.registered_daily" for e in events(a))


@pytest.mark.parametrize("order_id,kwargs,code", [
    ("O-NOT-THERE", {}, "unknown_order"),
    (None, {"reason": "angry"}, "bad_reason"),
    (None, {"buyer_statement": "  "}, "statement_required"),
    (None, {"claimed_amount": "1000.00"}, "claim_above_paid"),
    (None, {"claimed_amount": "-5"}, "amount_not_positive"),
    (None, {"platform_ref": "WQ 1/2"}, "bad_platform_ref"),
])
def test_bad_input_is_refused_and_nothing_recorded(stack, order_id, kwargs, code):
    order = stack.make_order(paid="100.00") if order_id is None else {"order_id": order_id}
    with pytest.raises(InvalidRequest) as error:
        open_dispute(stack, order, **kwargs)
    assert error.value.code == code
    with session_scope() as session:
        assert session.exec(select(Case).where(Case.order_id == order["order_id"])).first() is None


def test_unpaid_order_and_cli(stack):
    unpaid = stack.make_order(paid="0.00", status="cancelled", delivered_days_ago=None)
    with pytest.raises(InvalidRequest, match="order_not_paid"):
        open_dispute(stack, unpaid)
    from aftersales.deployments.cli import app

    result = CliRunner().invoke(app, ["dispute", "open", "--order", "O-NOT-THERE", "--reason", "quality", "--statement", "x"])
    assert result.exit_code == 2 and "original sales order" in result.output
