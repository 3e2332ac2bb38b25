"""The rulebook's pure rules: request checks, postage, approval levels and business time."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from aftersales.domain.calendar import BusinessCalendar
from aftersales.domain.models import Role
from aftersales.domain.rules import (
    InvalidRequest,
    OrderFacts,
    ReturnKind,
    approval_level,
    next_level,
    parse_amount,
    postage_lines,
    validate_return_request,
)
from aftersales.domain.settings import Rules

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)
RULES = Rules()


def order(**overrides) -> OrderFacts:
    fields = dict(order_id="O1", status="completed", paid_amount=Decimal("128.00"), already_refunded=Decimal("0"),
                  delivered_at=NOW - timedelta(days=2), refused_at=None, free_shipping=False,
                  item_prices={"A": Decimal("100.00"), "B": Decimal("28.00")})
    fields.update(overrides)
    return OrderFacts(**fields)


@pytest.mark.parametrize(
    ("raw", "code"),
    [("abc", "amount_not_numeric"), ("", "amount_not_numeric"), ("NaN", "amount_not_numeric"), ("-5", "amount_not_positive"),
     ("0", "amount_not_positive"), ("1.234", "amount_precision"), (12.5, "amount_float")],
)
def test_bad_amounts_are_refused_with_a_specific_code(raw, code):
    with pytest.raises(InvalidRequest) as refused:
        validate_return_request(order(), raw, ReturnKind.NO_REASON, NOW, RULES)
    assert refused.value.code == code


def test_amount_is_decimal_with_two_places():
    assert validate_return_request(order(), " 99.5 ", ReturnKind.NO_REASON, NOW, RULES) == Decimal("99.50")


@pytest.mark.parametrize(
    ("facts", "amount", "kind", "code"),
    [
        (order(delivered_at=None, status="shipped"), "28", ReturnKind.NO_REASON, "not_delivered"),
        (order(status="cancelled"), "28", ReturnKind.NO_REASON, "order_not_paid"),
        (order(delivered_at=NOW - timedelta(days=7, minutes=1)), "28", ReturnKind.NO_REASON, "out_of_window"),
        (order(delivered_at=NOW - timedelta(days=15, minutes=1)), "28", ReturnKind.QUALITY, "out_of_window"),
        (order(), "128.01", ReturnKind.NO_REASON, "amount_above_paid"),
        (order(already_refunded=Decimal("100.00")), "28.01", ReturnKind.NO_REASON, "amount_above_paid"),
        (order(delivered_at=None, status="shipped"), "28", ReturnKind.REFUSED_AT_DELIVERY, "not_refused"),
        (order(delivered_at=None, status="shipped", refused_at=NOW - timedelta(hours=25)), "28", ReturnKind.REFUSED_AT_DELIVERY, "refusal_reported_late"),
        (order(delivered_at=NOW - timedelta(hours=30)), "28", ReturnKind.SHORT_SHIPMENT, "out_of_window"),
    ],
)
def test_requests_the_rulebook_refuses(facts, amount, kind, code):
    with pytest.raises(InvalidRequest) as refused:
        validate_return_request(facts, amount, kind, NOW, RULES, ["B"])
    assert refused.value.code == code


def test_windows_the_rulebook_allows():
    assert validate_return_request(order(delivered_at=NOW - timedelta(days=6, hours=23)), "128", ReturnKind.NO_REASON, NOW, RULES)
    assert validate_return_request(order(delivered_at=NOW - timedelta(days=12)), "128", ReturnKind.QUALITY, NOW, RULES)
    assert validate_return_request(order(delivered_at=None, status="shipped", refused_at=NOW - timedelta(hours=23)), "128", ReturnKind.REFUSED_AT_DELIVERY, NOW, RULES)


def test_short_shipment_needs_items_of_the_order_and_their_value():
    fresh = order(delivered_at=NOW - timedelta(hours=2))
    with pytest.raises(InvalidRequest, match="missing"):
        validate_return_request(fresh, "28", ReturnKind.SHORT_SHIPMENT, NOW, RULES, [])
    with pytest.raises(InvalidRequest) as unknown:
        validate_return_request(fresh, "28", ReturnKind.SHORT_SHIPMENT, NOW, RULES, ["Z"])
    assert unknown.value.code == "unknown_items"
    assert validate_return_request(fresh, "28.00", ReturnKind.SHORT_SHIPMENT, NOW, RULES, ["B"]) == Decimal("28.00")
    with pytest.raises(InvalidRequest) as too_much:
        validate_return_request(fresh, "28.01", ReturnKind.SHORT_SHIPMENT, NOW, RULES, ["B"])
    assert too_much.value.code == "amount_above_missing"


def test_approval_levels_and_escalation_ladder():
    assert approval_level(Decimal("20"), RULES) is Role.AGENT
    assert approval_level(Decimal("20.01"), RULES) is Role.SUPERVISOR
    assert approval_level(Decimal("500"), RULES) is Role.SUPERVISOR
    assert approval_level(Decimal("500.01"), RULES) is Role.MANAGER
    assert next_level(Role.AGENT) is Role.SUPERVISOR
    assert next_level(Role.SUPERVISOR) is Role.MANAGER
    assert next_level(Role.MANAGER) is Role.MANAGER


def test_postage_follows_fault():
    seller = postage_lines(ReturnKind.QUALITY, False, Decimal("12.00"), Decimal("10.00"))
    assert [(l.kind, l.bearer, l.amount, l.add_to_refund) for l in seller] == [("return_postage", "seller", Decimal("12.00"), Decimal("12.00"))]
    buyer = postage_lines(ReturnKind.NO_REASON, False, Decimal("12.00"), Decimal("10.00"))
    assert [(l.kind, l.bearer, l.add_to_refund) for l in buyer] == [("return_postage", "buyer", Decimal("0"))]
    split = postage_lines(ReturnKind.NO_REASON, True, Decimal("12.00"), Decimal("10.01"))
    outbound = [l for l in split if l.kind == "outbound_postage"]
    assert sum(l.amount for l in outbound) == Decimal("10.01")  # split without losing a cent
    assert {l.bearer for l in outbound} == {"buyer", "seller"}
    assert sum(l.add_to_refund for l in split) == -Decimal("5.00")  # the buyer's half (rounded) is deducted


def test_parse_amount_never_floats():
    assert isinstance(parse_amount("3"), Decimal)
    with pytest.raises(InvalidRequest):
        parse_amount(3.0)


def test_working_days_skip_weekends_and_holidays_and_count_makeup_days():
    calendar = BusinessCalendar(SHANGHAI, frozenset({date(2026, 12, 31)}), frozenset({date(2026, 12, 27)}))
    friday = datetime(2026, 11, 27, 15, 0, tzinfo=SHANGHAI)
    assert calendar.add_working_days(friday, 3) == datetime(2026, 12, 2, 15, 0, tzinfo=SHANGHAI)
    saturday = datetime(2026, 11, 28, 9, 0, tzinfo=SHANGHAI)
    assert calendar.add_working_days(saturday, 1).date() == date(2026, 11, 30)
    assert calendar.add_working_days(saturday, 1).hour == 23  # counts from the end of the weekend
    before_holiday = datetime(2026, 12, 30, 9, 0, tzinfo=SHANGHAI)
    assert calendar.add_working_days(before_holiday, 1).date() == date(2027, 1, 1)
    assert calendar.is_working_day(date(2026, 12, 27))  # a make-up Sunday


def test_business_times_must_be_timezone_aware():
    calendar = BusinessCalendar(SHANGHAI)
    with pytest.raises(ValueError, match="naive"):
        calendar.add_days(datetime(2026, 11, 23, 10, 0), 5)
    utc = datetime(2026, 11, 23, 20, 0, tzinfo=timezone.utc)  # already the 24th in Shanghai
    assert calendar.add_days(utc, 5).date() == date(2026, 11, 29)


def test_a_declared_return_postage_is_refunded_up_to_the_standard_postage_unless_staff_vouch():
    from aftersales.domain.rules import declared_return_postage

    standard = Decimal("12.00")
    assert declared_return_postage(Decimal("30.00"), False, standard) == Decimal("12.00")  # the buyer's word, refunded
    assert declared_return_postage(Decimal("8.00"), False, standard) == Decimal("8.00")
    assert declared_return_postage(Decimal("30.00"), True, standard) == Decimal("30.00")  # staff saw the receipt
    assert declared_return_postage(Decimal("30.00"), False, standard, refunded=False) == Decimal("30.00")  # the buyer bears it
