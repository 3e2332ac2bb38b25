"""Pure rules of §1.2 exchange, §1.3 compensation and §1.7 wrong shipment (no server needed)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from aftersales.domain.compensation_rules import (
    CompensationForm,
    approval_chain,
    next_approver,
    parse_goods,
    validate_compensation_request,
)
from aftersales.domain.exchange_rules import PriceDifference, exchange_kind, exchange_postage, validate_exchange_request
from aftersales.domain.models import Role
from aftersales.domain.rules import InvalidRequest, OrderFacts, ReturnKind
from aftersales.domain.settings import Rules
from aftersales.domain.wrong_shipment_rules import direct_loss, needs_assessment, validate_wrong_shipment

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
RULES = Rules()


def facts(status: str = "completed", paid: str = "200.00", refunded: str = "0", delivered_days: float | None = 2) -> OrderFacts:
    return OrderFacts(order_id="O1", status=status, paid_amount=Decimal(paid), already_refunded=Decimal(refunded),
                      delivered_at=NOW - timedelta(days=delivered_days) if delivered_days is not None else None,
                      refused_at=None, free_shipping=False, item_prices={"A": Decimal("100.00"), "B": Decimal("100.00")})


ORDERED = {"A": (Decimal("50.00"), 2), "B": (Decimal("100.00"), 1)}


def exchange(**overrides):
    args = dict(order=facts(), ordered=ORDERED, sku="A", new_sku="A2", raw_quantity=1, new_unit_price=Decimal("55.00"),
                kind=ReturnKind.NO_REASON, now=NOW, rules=RULES)
    args.update(overrides)
    return validate_exchange_request(**args)


def test_exchange_price_difference_both_ways():
    dearer = exchange(raw_quantity=2)
    assert dearer.value == Decimal("100.00") and dearer.difference == Decimal("10.00") and dearer.settlement is PriceDifference.CHARGE
    cheaper = exchange(new_unit_price=Decimal("45.50"))
    assert cheaper.difference == Decimal("-4.50") and cheaper.settlement is PriceDifference.REFUND
    assert exchange(new_unit_price=Decimal("50.00")).settlement is PriceDifference.NONE


@pytest.mark.parametrize("overrides, code", [
    ({"sku": "Z"}, "unknown_items"),
    ({"raw_quantity": 3}, "quantity_above_ordered"),
    ({"raw_quantity": 0}, "quantity_not_positive"),
    ({"raw_quantity": "two"}, "quantity_not_numeric"),
    ({"new_unit_price": None}, "unknown_replacement"),
    ({"order": facts(delivered_days=8)}, "out_of_window"),
    ({"order": facts(delivered_days=None, status="shipped")}, "not_delivered"),
    ({"order": facts(refunded="180.00")}, "amount_above_paid"),
])
def test_exchange_refusals(overrides, code):
    with pytest.raises(InvalidRequest) as refused:
        exchange(**overrides)
    assert refused.value.code == code


def test_exchange_kinds_and_postage():
    assert exchange(order=facts(delivered_days=12), kind=ReturnKind.QUALITY).value == Decimal("50.00")  # 15-day window
    for bad in ("refused_at_delivery", "short_shipment", "nonsense"):
        with pytest.raises(InvalidRequest, match="exchange kind"):
            exchange_kind(bad)
    [buyer] = exchange_postage(ReturnKind.NO_REASON, Decimal("10.00"))
    assert (buyer.bearer, buyer.add_to_refund) == ("buyer", Decimal("0"))
    [seller] = exchange_postage(ReturnKind.QUALITY, Decimal("12.00"))
    assert (seller.bearer, seller.add_to_refund) == ("seller", Decimal("12.00"))
    [forced] = exchange_postage(ReturnKind.NO_REASON, Decimal("8.00"), seller_at_fault=True)
    assert forced.bearer == "seller"


def test_compensation_chain_by_amount():
    assert approval_chain(Decimal("20.00"), RULES) == []
    assert approval_chain(Decimal("20.01"), RULES) == [Role.SUPERVISOR]
    assert approval_chain(Decimal("500.00"), RULES) == [Role.SUPERVISOR]
    assert approval_chain(Decimal("600.00"), RULES) == [Role.SUPERVISOR, Role.MANAGER]
    assert next_approver(Role.SUPERVISOR) is Role.MANAGER and next_approver(Role.MANAGER) is None
    custom = Rules(agent_limit=Decimal("50"), supervisor_limit=Decimal("1000"))
    assert approval_chain(Decimal("600.00"), custom) == [Role.SUPERVISOR]


def compensation(**overrides):
    args = dict(order=facts(), raw_form="cash", raw_amount="30", reason="物流延误", bearer="seller", requester_role=Role.AGENT,
                goods=[], catalogue={})
    args.update(overrides)
    return validate_compensation_request(**args)


def test_compensation_forms():
    assert compensation().amount == Decimal("30.00")
    assert compensation(raw_form="coupon").form.ledger_kind == "coupon"
    goods = compensation(raw_form="goods", raw_amount=None, goods=[("MUG", 2)], catalogue={"MUG": (Decimal("25.00"), 5)})
    assert goods.amount == Decimal("50.00") and goods.goods_items() == [{"sku": "MUG", "quantity": 2}]
    assert parse_goods(["MUG", "SOCK:3"]) == [("MUG", 1), ("SOCK", 3)]
    assert CompensationForm.PARTIAL_REFUND.ledger_kind == "compensation"


@pytest.mark.parametrize("overrides, code", [
    ({"raw_form": "flowers"}, "unknown_form"),
    ({"requester_role": None}, "unknown_staff"),
    ({"reason": " "}, "reason_required"),
    ({"bearer": "nobody"}, "unknown_bearer"),
    ({"order": facts(status="cancelled")}, "order_not_paid"),
    ({"raw_amount": "abc"}, "amount_not_numeric"),
    ({"raw_amount": "-5"}, "amount_not_positive"),
    ({"raw_amount": None}, "amount_required"),
    ({"raw_form": "partial_refund", "raw_amount": "200.01"}, "amount_above_paid"),
    ({"raw_form": "goods", "goods": []}, "goods_required"),
    ({"raw_form": "goods", "goods": [("MUG", 1)]}, "unknown_items"),
    ({"raw_form": "goods", "goods": [("MUG", 6)], "catalogue": {"MUG": (Decimal("25.00"), 5)}}, "out_of_stock"),
    ({"raw_form": "goods", "raw_amount": "30", "goods": [("MUG", 1)], "catalogue": {"MUG": (Decimal("25.00"), 5)}}, "amount_mismatch"),
])
def test_compensation_refusals(overrides, code):
    with pytest.raises(InvalidRequest) as refused:
        compensation(**overrides)
    assert refused.value.code == code


def test_wrong_shipment_rules():
    assert validate_wrong_shipment(facts(status="awaiting_shipment"), ["A", "B"]) == Decimal("200.00")
    for skus, code in ((["Z"], "unknown_items"), ([], "missing_items_required"), (["A", "A"], "duplicate_items")):
        with pytest.raises(InvalidRequest) as refused:
            validate_wrong_shipment(facts(), skus)
        assert refused.value.code == code
    with pytest.raises(InvalidRequest, match="awaiting_payment"):
        validate_wrong_shipment(facts(status="awaiting_payment"), ["A"])
    assert direct_loss(True, Decimal("12.00")) == Decimal("24.00") and direct_loss(False, Decimal("12.00")) == Decimal("0.00")
    assert needs_assessment(True, False) and needs_assessment(False, True) and not needs_assessment(False, False)
