"""Enquiry tickets (rulebook §1.11) end to end on the real stack: the first response measured from
the channel's own timestamps and counted in the month's figures, a ticket answered and its customer
told, and an after-sales ticket handed over as a return with its history."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from aftersales.domain.details import EnquiryDetails, details_of
from aftersales.domain.enquiry_rules import EnquiryChannel, breached, first_response_limit
from aftersales.domain.models import Case, WaitStatus
from aftersales.domain.rules import InvalidRequest
from aftersales.domain.settings import get_settings
from aftersales.integrations.db import session_scope
from aftersales.reporting.months import Month
from aftersales.reporting.statistics import monthly_statistics
from tests.support.records import events, text, wait_row


def open_ticket(stack, **values) -> str:
    from aftersales.intake.enquiry import open_enquiry

    values.setdefault("ticket", f"T-{uuid.uuid4().hex[:10]}")
    values.setdefault("summary", "什么时候发货 when does it ship?")
    values.setdefault("type", "order")
    return stack.run(open_enquiry(**values)).case_id


def ticket(case_id: str) -> EnquiryDetails:
    with session_scope() as session:
        return details_of(session.get(Case, case_id), EnquiryDetails)


def channel_figures(channel: str) -> dict:
    rows = {row["channel"]: row for row in monthly_statistics(Month.parse(datetime.now(get_settings().tz).strftime("%Y-%m"))).first_responses()}
    return rows.get(channel, {"tickets": 0, "answered": 0, "late": 0})


def test_the_first_response_deadline_is_the_channels():
    rules = get_settings().rules
    assert [first_response_limit(c, rules) for c in EnquiryChannel] == [
        timedelta(seconds=30), timedelta(seconds=60), timedelta(hours=4), timedelta(hours=4)]
    received = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
    assert not breached(EnquiryChannel.ONLINE_CHAT, received, received + timedelta(seconds=30), rules)
    assert breached(EnquiryChannel.ONLINE_CHAT, received, received + timedelta(seconds=45), rules)  # 45 s: late, whatever a flow waited
    assert not breached(EnquiryChannel.PHONE, received, received + timedelta(seconds=45), rules)


def test_late_first_responses_are_counted_in_the_months_figures(stack, sandbox_clean, team):
    before = {channel: channel_figures(channel) for channel in ("online_chat", "email")}
    now = datetime.now(timezone.utc)
    order = stack.make_order(paid="59.00")
    on_time = open_ticket(stack, channel="online_chat", order_id=order["order_id"], received_at=now - timedelta(seconds=80),
                          responded_at=now - timedelta(seconds=60))
    late = open_ticket(stack, channel="online_chat", order_id=order["order_id"], received_at=now - timedelta(seconds=60),
                       responded_at=now - timedelta(seconds=15))
    assert (ticket(on_time).response_seconds, ticket(on_time).first_response_breached) == (20.0, False)
    assert (ticket(late).response_seconds, ticket(late).first_response_breached) == (45.0, True)  # counted, not waited for
    stack.waiting(late, "resolution")
    told = text([m for m in stack.messages("/staff/supervisor") if late in text([m])])
    assert "首次响应超时" in told and "45.0 秒" in told and "30 秒" in told

    unanswered = open_ticket(stack, channel="email", customer_id="U20261201", customer_name="李雷", contact="lilei@buyer.example")
    first = stack.waiting(unanswered, "first-response")
    assert first.deadline == ticket(unanswered).first_response_due  # 4 h after the e-mail arrived
    stack.sweep(unanswered, days=0.2)  # nobody answered in 4 h
    stack.waiting(unanswered, "resolution")
    assert ticket(unanswered).first_response_breached is True and ticket(unanswered).responded_at is None
    stack.sweep(unanswered, days=5)  # not resolved in 2 working days: the supervisors have it
    assert stack.waiting(unanswered, "resolution-supervisor").addressed_to == "supervisor"

    after = {channel: channel_figures(channel) for channel in ("online_chat", "email")}
    assert after["online_chat"]["tickets"] - before["online_chat"]["tickets"] == 2
    assert after["online_chat"]["late"] - before["online_chat"]["late"] == 1
    assert after["email"]["late"] - before["email"]["late"] == 1 and after["email"]["answered"] == before["email"]["answered"]

    # answered: the customer is told the result, and asked how we did
    stack.approve(late, "resolution", team["S001"], result="answered", note="明天发货 it ships tomorrow")
    assert stack.finished(late).outcome == "answered"
    said = text(stack.customer_messages(order))
    assert "明天发货 it ships tomorrow" in said
    assert any(e.action == "satisfaction.requested" for e in events(late))


def test_an_after_sales_ticket_becomes_a_return_with_its_history(stack, sandbox_clean, team):
    order = stack.make_order(paid="128.00")
    case_id = open_ticket(stack, channel="email", type="after_sales", order_id=order["order_id"], summary="鞋码偏小想退货 too small, can I return it?")
    stack.approve(case_id, "first-response", team["S001"], note="已收到，退货流程如下 received; this is how a return works")
    stack.waiting(case_id, "resolution")  # the answer is taken, then recorded: the next wait comes after the record
    details = ticket(case_id)
    assert details.first_response_breached is False and details.response_seconds is not None

    # the return's door refuses more than the order paid: the form opens again with the reason
    refused = stack.approve(case_id, "resolution", team["S001"], result="convert_to_return", refund_amount="999.00", note="为您转退货")
    assert refused.status in (WaitStatus.ANSWERED, WaitStatus.REJECTED)  # taken, then refused by the return's door
    again = stack.waiting(case_id, "resolution")
    assert again.key == "resolution-2" and "could not become a return" in again.notice
    assert wait_row(case_id, "resolution-1").status == WaitStatus.REJECTED

    stack.approve(case_id, "resolution", team["S012"], result="convert_to_return", refund_amount="128.00", note="已为您转为退货申请")
    assert stack.finished(case_id).outcome == "converted"
    return_id = ticket(case_id).converted_to
    assert return_id and return_id.startswith("return-")
    stack.waiting(return_id, "seller-review")
    with session_scope() as session:
        assert session.get(Case, return_id).amount == Decimal("128.00")
    [history] = [e for e in events(return_id) if e.action == "enquiry.history"]
    assert history.details["ticket"] == case_id
    carried = [(e["actor"], e["action"]) for e in history.details["events"]]
    assert carried[0] == ("S001", "case.opened")  # who entered the ticket
    assert (team["S001"], "enquiry.first_response") in carried and ("system", "wait.rejected") in carried
    assert "已为您转为退货申请" in text(stack.customer_messages(order)) and return_id in text(stack.customer_messages(order))


@pytest.mark.parametrize("values, code", [
    ({"channel": "fax"}, "bad_channel"),
    ({"type": "weather"}, "bad_enquiry_type"),
    ({"order_id": None, "customer_id": None}, "customer_unidentified"),
    ({"responded_at": datetime(2020, 1, 1, tzinfo=timezone.utc)}, "responded_before_received"),
])
def test_a_bad_ticket_is_refused_and_nothing_is_recorded(stack, sandbox_clean, values, code):
    order = stack.make_order(paid="20.00")
    request = {"channel": "phone", "order_id": order["order_id"], "ticket": f"T-{uuid.uuid4().hex[:10]}", **values}
    with pytest.raises(InvalidRequest) as error:
        open_ticket(stack, **request)
    assert error.value.code == code
    with session_scope() as session:
        assert session.get(Case, f"enquiry-{request['ticket']}") is None
    assert json.dumps(error.value.message)
