"""Negative-review follow-up (rulebook §1.6) end to end on the real stack: the department's cause,
a superior's approval of every offer, the buyer's answer, compensation paid once; malicious reviews
verified and reported; every deadline's default."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from aftersales.deployments.cli import app as cli
from aftersales.domain.models import Case
from aftersales.domain.rules import InvalidRequest
from aftersales.integrations.db import session_scope
from tests.support.records import events, ledger, text
from tests.support.records import assert_platform_paid_matches


def reviewed(stack, review_text: str, rating: str = "negative", paid: str = "229.00") -> tuple[dict, str]:
    order = stack.make_order(paid=paid, items=[{"sku": "SH-RUN-42", "name": "跑步鞋", "category": "shoes", "quantity": 1, "unit_price": paid}])
    review_id = f"RVT{uuid.uuid4().hex[:8].upper()}"
    stack.sandbox("POST", "/sandbox/reviews", json={"order_id": order["order_id"], "rating": rating, "text": review_text, "review_id": review_id})
    return order, review_id


def follow_up(stack, review_id: str, **kwargs) -> str:
    from aftersales.intake.review import open_review_followup

    return stack.run(open_review_followup(review_id, **kwargs)).case_id


def test_cash_offer_approved_by_a_superior_and_paid_once(stack, sandbox_clean, team):
    order, review_id = reviewed(stack, "穿了一周鞋底就开胶了，质量太差！")
    case_id = follow_up(stack, review_id)
    assert case_id == f"review-{review_id}" and follow_up(stack, review_id) == case_id  # one case per review

    cause = stack.waiting(case_id, "review-cause")
    assert cause.addressed_to == "quality"  # routed by what the buyer wrote
    assert review_id in text(stack.messages("/staff/review")) or case_id in text(stack.messages("/staff/review"))
    stack.approve(case_id, "review-cause", team["S008"], cause="鞋底胶水批次问题 glue batch", offer_form="cash", offer_amount="30.00")

    approval = stack.waiting(case_id, "offer-approval")
    assert approval.addressed_to == "supervisor"  # always a superior, whatever the amount
    by_agent = stack.approve(case_id, "offer-approval", team["S001"], decision="approve", offer_form="cash", amount="30.00")
    assert by_agent.status == "rejected" and "role" in by_agent.reason
    more = stack.approve(case_id, "offer-approval", team["S002"], decision="approve", offer_form="cash", amount="50.00")
    assert more.status == "rejected" and "50.00" in more.reason
    stack.approve(case_id, "offer-approval", team["S006"], decision="approve", offer_form="cash", amount="30.00")

    stack.waiting(case_id, "buyer-response")
    assert "30.00" in text(stack.customer_messages(order))
    # reported as a user types it: yes/no fields take true/false on the command line
    reported = CliRunner().invoke(cli, ["waits", "resume", case_id, "--step", "buyer-response", "--set", "response=accepted",
                                        "--set", "review_updated=true"], env={"COLUMNS": "200"})
    assert reported.exit_code == 0 and "answered" in reported.output, reported.output
    assert stack.finished(case_id).outcome == "compensated"
    assert next(e for e in events(case_id) if e.action == "case.closed").details["review_updated"] is True

    refunds = stack.refunds(order["order_id"])
    assert [(r["kind"], Decimal(r["amount"])) for r in refunds] == [("compensation", Decimal("30.00"))]
    [line] = ledger(case_id)
    assert (line.kind, line.amount, line.bearer, line.approved_by, line.responsible_department) == (
        "compensation", Decimal("30.00"), "seller", team["S006"], "quality")
    assert line.platform_ref == refunds[0]["refund_id"]
    assert line.platform_paid is True  # cash: a platform refund, in finance's platform-paid total
    assert_platform_paid_matches(stack, order, [line])
    assert case_id in text(stack.messages("/staff/finance"))
    assert len([e for e in events(case_id) if e.action == "compensation.paid"]) == 1


def test_goods_offer_above_the_supervisor_goes_to_the_manager_and_declined_offer_pays_nothing(stack, sandbox_clean, team):
    order, review_id = reviewed(stack, "客服态度很差，爱答不理", rating="neutral", paid="899.00")
    case_id = follow_up(stack, review_id)
    assert stack.waiting(case_id, "review-cause").addressed_to == "agent"
    wrong_sku = stack.approve(case_id, "review-cause", team["S001"], cause="高峰期回复慢", offer_form="goods", offer_amount="899.00", goods_sku="NOPE")
    assert wrong_sku.status == "rejected" and "SH-RUN-42" in wrong_sku.reason
    stack.approve(case_id, "review-cause", team["S012"], cause="高峰期回复慢", offer_form="goods", offer_amount="899.00", goods_sku="SH-RUN-42")

    assert stack.waiting(case_id, "offer-approval").addressed_to == "manager"
    escalated = stack.approve(case_id, "offer-approval", team["S002"], decision="approve", offer_form="goods", amount="899.00", goods_sku="SH-RUN-42")
    assert escalated.status == "escalated"
    stack.approve(case_id, "offer-approval", team["S003"], decision="approve", offer_form="goods", amount="899.00", goods_sku="SH-RUN-42")
    stack.answer(case_id, "buyer-response", response="declined", note="不需要")
    assert stack.finished(case_id).outcome == "offer_declined"
    assert stack.reshipments(order["order_id"]) == [] and ledger(case_id) == []


def test_goods_compensation_ships_the_item_once(stack, sandbox_clean, team):
    order, review_id = reviewed(stack, "物流太慢了，等了一周", paid="59.00")
    case_id = follow_up(stack, review_id)
    stack.approve(case_id, "review-cause", team["S011"], cause="中转站爆仓", offer_form="goods", offer_amount="59.00", goods_sku="SH-RUN-42")
    stack.approve(case_id, "offer-approval", team["S002"], decision="approve", offer_form="goods", amount="59.00", goods_sku="SH-RUN-42")
    stack.answer(case_id, "buyer-response", response="accepted")
    assert stack.finished(case_id).outcome == "compensated"
    [shipment] = stack.reshipments(order["order_id"])
    lines = {(line.kind, line.bearer): line for line in ledger(case_id)}
    assert lines[("compensation", "seller")].amount == Decimal("59.00")
    assert lines[("compensation", "seller")].responsible_department == "logistics"
    assert lines[("outbound_postage", "seller")].platform_ref == shipment["reshipment_id"]
    assert not any(line.platform_paid for line in lines.values())  # goods and their postage: no platform payment
    assert_platform_paid_matches(stack, order, list(lines.values()))
    assert shipment["waybill"] in text(stack.customer_messages(order))


def test_malicious_review_is_verified_and_reported_and_the_buyer_is_not_contacted(stack, sandbox_clean, team):
    order, review_id = reviewed(stack, "垃圾店铺，质量差，大家别买")
    case_id = follow_up(stack, review_id)
    stack.approve(case_id, "review-cause", team["S008"], cause="买家未收货即差评，同行恶意", verdict="suspected_malicious")
    assert stack.waiting(case_id, "review-verify").addressed_to == "review"
    bare = stack.approve(case_id, "review-verify", team["S009"], result="malicious")
    assert bare.status == "rejected" and "evidence" in bare.reason
    stack.approve(case_id, "review-verify", team["S009"], result="malicious", evidence="同一 IP 批量差评 same IP, many reviews")

    assert stack.finished(case_id).outcome == "reported_malicious"
    reports = stack.sandbox("GET", f"/api/reviews/{review_id}/reports")
    assert len(reports) == 1 and "同一 IP" in reports[0]["evidence"] and reports[0]["case_id"] == case_id
    # nothing goes to a verified malicious reviewer: no offer, not even the satisfaction survey
    assert stack.customer_messages(order) == []
    assert ledger(case_id) == [] and stack.refunds(order["order_id"]) == []
    assert case_id in text(stack.messages("/staff/supervisor"))


def test_unverified_suspicion_protects_the_buyer_and_they_get_an_apology(stack, sandbox_clean, team):
    order, review_id = reviewed(stack, "鞋子有异味")
    case_id = follow_up(stack, review_id)
    stack.approve(case_id, "review-cause", team["S008"], cause="疑似恶意", verdict="suspected_malicious")
    stack.waiting(case_id, "review-verify")
    stack.sweep(case_id, days=5)  # 2 working days: followed up as genuine
    assert stack.finished(case_id).outcome == "apologised"
    assert stack.sandbox("GET", f"/api/reviews/{review_id}/reports") == []
    assert "深表歉意" in text(stack.customer_messages(order))


def test_overdue_cause_escalates_and_unanswered_approval_makes_no_offer(stack, sandbox_clean, team):
    order, review_id = reviewed(stack, "质量一般")
    case_id = follow_up(stack, review_id)
    stack.waiting(case_id, "review-cause")
    stack.sweep(case_id, days=5)  # 2 working days without the department
    assert stack.waiting(case_id, "review-cause-supervisor").addressed_to == "supervisor"
    stack.approve(case_id, "review-cause-supervisor", team["S002"], cause="面料批次偏薄", offer_form="cash", offer_amount="10.00")
    stack.waiting(case_id, "offer-approval")
    stack.sweep(case_id, days=4)  # 1 working day
    assert stack.finished(case_id).outcome == "no_offer_made"
    no_offer = next(e for e in events(case_id) if e.action == "review.no_offer")
    assert no_offer.actor == "system" and no_offer.details["by_deadline"] is True
    assert stack.refunds(order["order_id"]) == [] and ledger(case_id) == []


def test_no_answer_from_the_buyer_is_recorded_and_nothing_paid(stack, sandbox_clean, team):
    order, review_id = reviewed(stack, "快递员态度差")
    case_id = follow_up(stack, review_id)
    stack.approve(case_id, "review-cause", team["S011"], cause="派件员态度", offer_form="cash", offer_amount="5.00")
    stack.approve(case_id, "offer-approval", team["S002"], decision="approve", offer_form="cash", amount="5.00")
    stack.waiting(case_id, "buyer-response")
    assert stack.sweep(case_id, days=6)["resumed"] == []
    stack.sweep(case_id, days=7.2)
    assert stack.finished(case_id).outcome == "no_response"
    assert stack.refunds(order["order_id"]) == [] and ledger(case_id) == []


def test_bad_review_requests_are_refused(stack, sandbox_clean):
    from aftersales.intake.review import open_review_followup

    with pytest.raises(InvalidRequest) as positive:
        stack.run(open_review_followup("RV000002"))  # the seeded positive review
    assert positive.value.code == "positive_review"
    with pytest.raises(InvalidRequest) as unknown:
        stack.run(open_review_followup("RV-NOPE"))
    assert unknown.value.code == "unknown_review"
    with pytest.raises(InvalidRequest) as department:
        stack.run(open_review_followup("RV000001", department="marketing"))
    assert department.value.code == "unknown_department"
    with session_scope() as session:
        assert session.get(Case, "review-RV000002") is None and session.get(Case, "review-RV-NOPE") is None


def test_demo_cases_of_the_three_processes_wait_for_a_person(stack, sandbox_clean):
    from aftersales.intake.registry import process

    opened = []
    for name in ("out-of-area", "repair", "review"):
        opened += [stack.run(process(name).open(request)).case_id for request in process(name).demo]
    waits = {case_id: stack.waiting(case_id, step).addressed_to for case_id, step in zip(opened, (
        "buyer-choice", "buyer-ships", "repair-approval", "review-cause", "review-cause"))}
    assert waits == {
        "out-of-area-O20261120-006": "buyer",
        "repair-O20261120-004-AP-HEPA-600": "buyer",
        "repair-O20261120-003-EB-ANC-BK": "supervisor",
        "review-RV000001": "quality",
        "review-RV000003": "quality",
    }
