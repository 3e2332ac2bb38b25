"""§1.8 dispute rules without the server: order check, claim, closing needs responsibility, the
daily register's window and schedule."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from aftersales.domain import dispute_rules as r
from aftersales.domain.rules import InvalidRequest

SHANGHAI = ZoneInfo("Asia/Shanghai")


def closing(**overrides) -> r.Closing:
    values = dict(result=r.DisputeResult.REFUNDED, final_explanation="噪音超标属实", handling_opinion="退货退款",
                  responsible_department=r.Department.OPERATIONS, responsible_person="S013 运营 王磊", penalty="扣绩效 5 分",
                  root_cause=r.RootCause.DESCRIPTION, root_cause_detail="详情页噪音参数未核实")
    return r.Closing(**{**values, **overrides})


def test_order_and_claim_checks():
    with pytest.raises(InvalidRequest, match="order_not_paid"):
        r.check_order_for_dispute("O1", "cancelled", Decimal("0"))
    r.check_order_for_dispute("O1", "completed", Decimal("10"))
    assert r.check_claim(None, Decimal("10")) == Decimal("0.00")
    assert r.check_claim("9.50", Decimal("10")) == Decimal("9.50")
    with pytest.raises(InvalidRequest, match="claim_above_paid"):
        r.check_claim("10.01", Decimal("10"))
    with pytest.raises(InvalidRequest, match="bad_reason"):
        r.check_reason("angry")


def test_closing_needs_department_person_penalty_and_root_cause():
    assert r.closing_problem(closing()) is None
    for field in ("responsible_person", "penalty", "root_cause_detail", "final_explanation", "handling_opinion"):
        problem = r.closing_problem(closing(**{field: "  "}))
        assert problem and "closing needs" in problem
    assert "not 'none'" in r.closing_problem(closing(responsible_department=r.Department.NONE))
    assert r.closing_problem(closing(responsible_department=r.Department.NONE, result=r.DisputeResult.REJECTED)) is None


def test_register_window_is_one_local_day():
    start, end = r.register_window(date(2026, 11, 20), SHANGHAI)
    assert start.astimezone(timezone.utc) == datetime(2026, 11, 19, 16, 0, tzinfo=timezone.utc)
    assert (end - start).days == 1
    assert r.yesterday(datetime(2026, 11, 21, 1, 0, tzinfo=SHANGHAI), SHANGHAI) == date(2026, 11, 20)


def test_daily_register_is_scheduled_at_nine_shanghai():
    from prefect.schedules import Cron

    from aftersales.flows.dispute import deployments

    register = {d.name: d for d in deployments(lambda cron: [Cron(cron, timezone="Asia/Shanghai")])}["dispute-daily-register"]
    schedule = register.schedules[0].schedule
    assert schedule.cron == "0 9 * * *" and schedule.timezone == "Asia/Shanghai"
