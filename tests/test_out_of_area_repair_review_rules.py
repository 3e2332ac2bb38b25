"""Pure rules of §1.4 (out-of-area), §1.5 (repair) and §1.6 (negative reviews): no server needed."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from aftersales.domain.models import Role
from aftersales.domain.out_of_area_rules import (
    ParcelProblem,
    check_new_carrier,
    fallback_carrier,
    parse_problem,
    pickup_suggestion,
    validate_problem_parcel,
)
from aftersales.domain.repair_rules import RepairScope, validate_repair_request
from aftersales.domain.review_rules import check_followed_up, offer_approver, parse_department, responsible_department
from aftersales.domain.rules import InvalidRequest
from aftersales.domain.settings import Rules

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
RULES = Rules()


def test_only_a_parcel_on_its_way_is_a_problem_parcel():
    validate_problem_parcel("O1", "shipped", None, "zhongtong", "ZT1")
    for status, delivered, code in (("awaiting_shipment", None, "not_shipped"), ("cancelled", None, "not_shipped"),
                                    ("shipped", NOW, "already_delivered")):
        with pytest.raises(InvalidRequest) as error:
            validate_problem_parcel("O1", status, delivered, "zhongtong", "ZT1")
        assert error.value.code == code
    with pytest.raises(InvalidRequest) as error:
        parse_problem("lost")
    assert error.value.code == "unknown_problem" and "stranded" in error.value.message


def test_who_bears_the_extra_postage_and_which_carrier():
    assert ParcelProblem.STRANDED.bearer == "carrier"
    assert ParcelProblem.OUT_OF_AREA.bearer == ParcelProblem.BLIND_AREA.bearer == "seller"
    assert fallback_carrier("zhongtong", "ems") == "ems" and fallback_carrier("ems", "ems") == "shunfeng"
    assert check_new_carrier("zhongtong", "zhongtong") and check_new_carrier("EMS!", "zhongtong")
    assert check_new_carrier("ems", "zhongtong") is None
    assert pickup_suggestion("快件滞留于【武汉洪山营业部】", "湖北,武汉市,洪山区") == "武汉洪山营业部 湖北 武汉市 洪山区"


def test_repair_warranty_scope_and_approval():
    skus = {"SKU-A"}
    inside = validate_repair_request("O1", "completed", NOW - timedelta(days=30), skus, "SKU-A", "noise", RepairScope.IN_SCOPE, NOW, RULES)
    assert inside.in_warranty and not inside.needs_approval and inside.bearer(Decimal("0")) == "seller"
    old = validate_repair_request("O1", "completed", NOW - timedelta(days=RULES.repair_warranty_days + 1), skus, "SKU-A", "noise",
                                  RepairScope.IN_SCOPE, NOW, RULES)
    assert not old.in_warranty and old.needs_approval and "warranty" in old.why_approval
    assert old.bearer(Decimal("150")) == "buyer" and old.bearer(Decimal("0")) == "seller"  # a free goodwill repair
    scope = validate_repair_request("O1", "completed", NOW, skus, "SKU-A", "water", RepairScope.OUT_OF_SCOPE, NOW, RULES)
    assert scope.in_warranty and scope.needs_approval
    for args, code in (((None, "SKU-A", "x"), "not_delivered"), ((NOW, "SKU-B", "x"), "unknown_item"), ((NOW, "SKU-A", " "), "fault_required")):
        delivered, sku, fault = args
        with pytest.raises(InvalidRequest) as error:
            validate_repair_request("O1", "completed", delivered, skus, sku, fault, RepairScope.IN_SCOPE, NOW, RULES)
        assert error.value.code == code


def test_review_routing_and_the_superior_for_every_offer():
    assert responsible_department("穿了一周鞋底就开胶了，质量太差") == Role.QUALITY
    assert responsible_department("快递太慢了") == Role.LOGISTICS
    assert responsible_department("发错颜色") == Role.WAREHOUSE
    assert responsible_department("客服态度不好") == Role.AGENT
    assert parse_department("logistics", "质量差") == Role.LOGISTICS
    with pytest.raises(InvalidRequest):
        parse_department("marketing", "")
    with pytest.raises(InvalidRequest) as error:
        check_followed_up("RV1", "positive")
    assert error.value.code == "positive_review"
    # always a superior, even below the agent's 20 CNY; the manager above the supervisor's 500
    assert offer_approver(Decimal("5"), RULES) == Role.SUPERVISOR
    assert offer_approver(Decimal("500"), RULES) == Role.SUPERVISOR
    assert offer_approver(Decimal("500.01"), RULES) == Role.MANAGER
