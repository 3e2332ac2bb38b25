"""Express out-of-area parcels (rulebook §1.4) end to end on the real stack: the buyer chooses a
remedy (or the default applies after 48 h), the platform carries it out once, the extra postage
lands in the ledger with its bearer."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlmodel import select

from aftersales.domain.models import Case
from aftersales.domain.rules import InvalidRequest
from aftersales.integrations.db import session_scope
from tests.support.records import events, ledger, text


def on_the_road(stack, paid: str = "158.00", scan: str | None = None) -> dict:
    order = stack.make_order(paid=paid, delivered_days_ago=None, status="shipped")
    if scan:
        stack.sandbox("POST", f"/sandbox/parcels/{order['waybill']}/events",
                      json={"state": 2, "status_code": "2", "context": scan, "area": "湖北,武汉市,洪山区",
                            "time": datetime.now(timezone.utc).isoformat()})
    return order


def open_case(stack, order: dict, problem: str, **kwargs) -> str:
    from aftersales.intake.out_of_area import open_out_of_area

    return stack.run(open_out_of_area(order["order_id"], problem, **kwargs)).case_id


def test_stranded_parcel_switches_carrier_once_at_the_carriers_cost(stack, sandbox_clean, team):
    order = on_the_road(stack, scan="【武汉洪山珞喻路营业部】网点暂停派送，快件滞留")
    case_id = open_case(stack, order, "stranded", requested_by=team["S011"])
    assert case_id == f"out-of-area-{order['order_id']}"
    assert open_case(stack, order, "stranded") == case_id  # a repeated report opens nothing new

    wait = stack.waiting(case_id, "buyer-choice")
    assert wait.addressed_to == "buyer"
    buyer = text(stack.customer_messages(order))
    assert "换其他快递" in buyer and "武汉洪山珞喻路营业部" in buyer and case_id in buyer  # contacted at once, with the options
    assert case_id in text(stack.messages("/staff/logistics"))

    same = stack.answer(case_id, "buyer-choice", remedy="switch_carrier", new_carrier="zhongtong")
    assert same.status == "rejected" and "zhongtong" in same.reason
    assert stack.answer(case_id, "buyer-choice", remedy="switch_carrier", new_carrier="shunfeng").status == "answered"

    assert stack.finished(case_id).outcome == "carrier_switched"
    reshipments = stack.reshipments(order["order_id"])
    assert len(reshipments) == 1 and reshipments[0]["carrier"] == "shunfeng"
    assert stack.refunds(order["order_id"]) == []
    [postage] = ledger(case_id)
    assert (postage.kind, postage.bearer, postage.amount, postage.approved_by) == ("outbound_postage", "carrier", Decimal("12.00"), "buyer")
    assert postage.platform_ref == reshipments[0]["reshipment_id"]
    assert reshipments[0]["waybill"] in text(stack.customer_messages(order))
    assert [e.action for e in events(case_id)].count("carrier.switched") == 1


def test_self_pickup_records_the_point_and_tells_the_buyer(stack, sandbox_clean, team):
    order = on_the_road(stack)
    case_id = open_case(stack, order, "out_of_area")
    no_point = stack.answer(case_id, "buyer-choice", remedy="self_pickup", pickup_point="")
    assert no_point.status == "rejected" and "pickup point" in no_point.reason  # no scan to suggest one from
    stack.answer(case_id, "buyer-choice", remedy="self_pickup", pickup_point="菜鸟驿站 学院路 88 号", reported_by=team["S001"])

    case = stack.finished(case_id)
    assert case.outcome == "self_pickup_arranged"
    pickup = next(e for e in events(case_id) if e.action == "parcel.self_pickup")
    assert pickup.actor == team["S001"] and pickup.details["pickup_point"] == "菜鸟驿站 学院路 88 号"
    assert "菜鸟驿站 学院路 88 号" in text(stack.customer_messages(order))
    assert "菜鸟驿站" in text(stack.messages("/staff/logistics"))
    assert ledger(case_id) == [] and stack.refunds(order["order_id"]) == [] and stack.reshipments(order["order_id"]) == []


def test_return_and_refund_pays_in_full_and_books_the_postage_back(stack, sandbox_clean):
    order = on_the_road(stack, paid="199.00")
    case_id = open_case(stack, order, "blind_area")
    stack.answer(case_id, "buyer-choice", remedy="return_refund", note="不要了")

    assert stack.finished(case_id).outcome == "returned_refunded"
    assert [Decimal(r["amount"]) for r in stack.refunds(order["order_id"])] == [Decimal("199.00")]
    lines = {(line.kind, line.bearer): line.amount for line in ledger(case_id)}
    # a blind-area parcel: coverage should have been checked before shipping — the seller's cost
    assert lines == {("refund", "seller"): Decimal("199.00"), ("return_postage", "seller"): Decimal("12.00")}
    assert case_id in text(stack.messages("/staff/warehouse"))


def test_no_choice_in_48_hours_switches_to_the_fallback_carrier(stack, sandbox_clean):
    order = on_the_road(stack)
    case_id = open_case(stack, order, "out_of_area")
    stack.waiting(case_id, "buyer-choice")

    assert stack.sweep(case_id, days=47 / 24)["resumed"] == []
    assert stack.sweep(case_id, days=49 / 24)["resumed"] == [case_id]
    case = stack.finished(case_id)
    assert case.outcome == "carrier_switched"
    [reshipment] = stack.reshipments(order["order_id"])
    assert reshipment["carrier"] == "ems"  # out_of_area_fallback_carrier
    [postage] = ledger(case_id)
    assert (postage.bearer, postage.approved_by) == ("seller", "system")
    assert any(e.action == "wait.accepted.by_deadline" and e.actor == "system" for e in events(case_id))


@pytest.mark.parametrize("problem, order_kwargs, code", [
    ("stranded", {"delivered_days_ago": 1}, "already_delivered"),
    ("stranded", {"delivered_days_ago": None, "status": "awaiting_shipment"}, "not_shipped"),
    ("lost", {"delivered_days_ago": None, "status": "shipped"}, "unknown_problem"),
])
def test_bad_reports_are_refused_and_nothing_is_recorded(stack, sandbox_clean, problem, order_kwargs, code):
    order = stack.make_order(**order_kwargs)
    with pytest.raises(InvalidRequest) as error:
        open_case(stack, order, problem)
    assert error.value.code == code and error.value.message
    with pytest.raises(InvalidRequest) as unknown:
        open_case(stack, {"order_id": "NO-SUCH-ORDER"}, "stranded")
    assert unknown.value.code == "unknown_order"
    with session_scope() as session:
        assert session.exec(select(Case).where(Case.order_id == order["order_id"])).all() == []
