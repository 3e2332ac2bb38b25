"""§1.10 complaint rules without the server: category codes, levels, routing, deadlines, feedback."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from aftersales.domain import complaint_rules as r
from aftersales.domain.calendar import BusinessCalendar
from aftersales.domain.models import Role
from aftersales.domain.rules import InvalidRequest
from aftersales.domain.settings import Rules

SHANGHAI = ZoneInfo("Asia/Shanghai")
CAL = BusinessCalendar(SHANGHAI)


@pytest.mark.parametrize("code,category", [("1001", r.Category.PRODUCT), (1999, r.Category.PRODUCT), ("2001", r.Category.LOGISTICS),
                                           ("3500", r.Category.PAYMENT), ("4001", r.Category.AFTER_SALES), ("5999", r.Category.OTHER)])
def test_category_codes(code, category):
    assert r.category_of(code)[1] == category


@pytest.mark.parametrize("code", ["1000", "2000", "0999", "6001", "999", "12345", "abcd", "", "10.1"])
def test_bad_category_codes_are_refused(code):
    with pytest.raises(InvalidRequest) as error:
        r.category_of(code)
    assert error.value.code == "bad_category" and "1001–5999" in error.value.message


def test_levels_channels_and_contacts():
    assert r.check_level("3") == 3
    for bad in (0, 5, "x", None):
        with pytest.raises(InvalidRequest, match="bad_level"):
            r.check_level(bad)
    assert r.check_channel("online_chat") == r.Channel.ONLINE_CHAT
    with pytest.raises(InvalidRequest, match="bad_channel"):
        r.check_channel("fax")
    assert r.contact_fields("138 1234 5678")["phone"] == "13812345678"
    assert r.contact_fields("a@b.cn")["email"] == "a@b.cn"
    with pytest.raises(InvalidRequest, match="bad_contact"):
        r.contact_fields("call me")


def test_routing_by_category_level_and_special_flags():
    assert r.route(r.Category.PRODUCT, 3).handler == Role.QUALITY
    assert r.route(r.Category.LOGISTICS, 3).handler == Role.LOGISTICS
    assert r.route(r.Category.AFTER_SALES, 3).handler == Role.AGENT
    assert r.route(r.Category.AFTER_SALES, 1).handler == Role.SUPERVISOR
    high = r.route(r.Category.PRODUCT, 2, high_value=True)
    assert high.handler == Role.MANAGER and high.department == Role.QUALITY and "quality" in high.intake_tags
    group = r.route(r.Category.LOGISTICS, 2, group=True)
    assert group.handler == Role.SUPERVISOR and set(group.intake_tags) >= {"supervisor", "manager", "logistics"}
    assert r.route(r.Category.PRODUCT, 2, famous_brand=True).special == ("famous_brand",)


@pytest.mark.parametrize("level,first,plan", [(1, 2, 24), (2, 4, 48), (3, 6, 72)])
def test_deadlines_by_level_with_warning_point(level, first, plan):
    received = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)  # a Monday
    response = r.first_response_clock(received, level, Rules(), CAL)
    assert response.due - received == timedelta(hours=first)
    assert response.warn_at - received == timedelta(hours=first * 0.75)
    assert r.plan_clock(received, level, Rules(), CAL).due - received == timedelta(hours=plan)


def test_level_four_plan_is_five_working_days():
    friday = datetime(2026, 11, 27, 10, 0, tzinfo=SHANGHAI)
    plan = r.plan_clock(friday, 4, Rules(), CAL)
    assert plan.due == datetime(2026, 12, 4, 10, 0, tzinfo=SHANGHAI)  # next Friday
    assert r.first_response_clock(friday, 4, Rules(), CAL).due - friday == timedelta(hours=8)


def test_received_at_and_feedback_rules():
    now = datetime.now(timezone.utc)
    with pytest.raises(InvalidRequest, match="received_at_future"):
        r.check_received_at(now + timedelta(hours=1), now)
    with pytest.raises(InvalidRequest, match="received_at_naive"):
        r.check_received_at(datetime(2026, 11, 20, 9, 0), now)
    assert r.feedback_channel_problem(1, r.FeedbackChannel.PHONE)
    assert r.feedback_channel_problem(1, r.FeedbackChannel.EMAIL) is None
    assert r.feedback_channel_problem(2, r.FeedbackChannel.PHONE) is None
    assert r.outcome_for(r.Satisfaction.PARTLY) == "partly_resolved"
