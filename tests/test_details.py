"""The typed case state (``aftersales/domain/details.py``): every process has its details model, an
unknown key is refused, and rows as intake writes them read and are stored back in the same shape
(no migration). Pure: no stack, no database."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError

from aftersales.domain.details import (
    MODELS,
    CaseDetails,
    ComplaintDetails,
    ReturnDetails,
    ReviewDetails,
    details_model,
    details_of,
    stored,
    with_changes,
)
from aftersales.domain.models import Case, Process
from aftersales.intake.registry import processes

CUSTOMER = {"customer_id": "C1001", "name": "张三", "phone": "13812345678", "email": None, "address": "上海市徐汇区 1 号",
            "language": "zh-CN"}
LINE = {"sku": "TS-COT-WH-L", "name": "纯棉T恤 白 L", "category": "apparel", "quantity": 1, "unit_price": "59.00"}
TERMS = {"amount": "59.00", "kind": "no_reason", "missing_skus": []}
OPENING = {"actor": "buyer", "event": {"kind": "no_reason", "amount": "59.00"}, "notice": "return_opened", "staff_tags": ["agent"],
           "buyer": True, "context": {"kind": "no_reason", "deadline": "2026-11-25T10:00:00+00:00"}, "times": ["deadline"]}
SATISFACTION = {"score": 4, "at": "2026-11-30T02:00:00.123456+00:00", "comment": "快"}
COMMON = {"customer": CUSTOMER, "request_terms": TERMS, "opening": OPENING}

# a row of each process as intake (and the later writers) store it today
ROWS = {
    Process.RETURN: {"kind": "quality", "missing_skus": [], "free_shipping": True, "items": [LINE], **COMMON,
                     "satisfaction": SATISFACTION},
    Process.EXCHANGE: {"kind": "no_reason", "sku": "TS-COT-WH-L", "new_sku": "TS-COT-WH-XL", "quantity": 1, "unit_price": "59.00",
                       "new_unit_price": "69.00", "difference": "10.00", "settlement": "charge", "new_name": "纯棉T恤 白 XL",
                       "items": [LINE], **COMMON},
    Process.COMPENSATION: {"form": "goods", "bearer": "carrier", "goods": [["TS-COT-WH-L", 2]], "approvals_needed": ["supervisor"],
                           **COMMON},
    Process.OUT_OF_AREA: {"problem": "stranded", "carrier": "zhongtong", "waybill": "ZT1", "bearer": "carrier", "last_scan": "",
                          "pickup_point": "", "note": "", "new_carrier": "shunfeng", "items": [LINE], **COMMON},
    Process.REPAIR: {"sku": "AP-HEPA-600", "item": "空气净化器", "scope": "out_of_scope", "in_warranty": True,
                     "warranty_ends": "2027-11-20T10:00:00+00:00", "needs_approval": True, "why_approval": "超出服务范围 out of the service scope",
                     "delivered_at": "2026-11-20T10:00:00+00:00", **COMMON},
    Process.REVIEW: {"review_id": "RV000001", "rating": "negative", "text": "开胶了", "department": "quality",
                     "review_created_at": "2026-11-21T08:00:00+00:00", "prices": {"SH-RUN-42": "299.00"}, **COMMON},
    Process.WRONG_SHIPMENT: {"skus": ["PL-MEM-60"], "warehouse_left": True, "negative_effect": False, "items": [LINE], **COMMON},
    Process.DISPUTE: {"order_id": "O1", "reason": "not_as_described", "reason_label": "与描述不符 not as described",
                      "buyer_statement": "太吵", "platform_ref": "WQ1", "claimed_amount": "300.00", "registered_by": "S010",
                      "customer": CUSTOMER, "items": [LINE], "reply_due": "2026-11-24 18:00 (UTC+08:00)",
                      "request_terms": TERMS, "opening": OPENING,
                      "closing": {"result": "refunded", "final_explanation": "x", "handling_opinion": "y",
                                  "responsible_department": "quality", "responsible_person": "S005", "penalty": "警告",
                                  "root_cause": "product_quality", "root_cause_detail": "z"},
                      "closed_by": "S006"},
    Process.COMPLAINT: {"channel": "phone", "category_code": 1001, "category": "product", "category_label": "商品 product", "level": 2,
                        "level_meaning": "一般问题", "customer": {**CUSTOMER, "contact": "13812345678"}, "order_id": None,
                        "object": "鞋", "cause": "开胶", "demand": "退货", "received_at": "2026-11-30T01:00:00+00:00",
                        "first_response_due": "2026-11-30 13:00 (UTC+08:00)", "plan_due": "2026-12-01 09:00 (UTC+08:00)",
                        "special": [], "special_label": "-", "brand_owner": None, "requested_by": "S001",
                        "routing": {"department": "quality", "handler": "quality", "copied": [], "intake_tags": ["quality"]},
                        "request_terms": TERMS, "opening": OPENING},
    Process.TRACKING: {"customer": CUSTOMER, "finding": "signed_by_other", "carrier": "zhongtong", "waybill": "ZT1"},
    Process.ENQUIRY: {"customer": CUSTOMER, "channel": "online_chat", "type": "logistics", "summary": "三天没更新", "order_id": None,
                      "received_at": "2026-11-30T01:00:00+00:00", "first_response_due": "2026-11-30T01:00:30+00:00",
                      "responded_at": "2026-11-30T01:00:45+00:00", "response_seconds": 45.0, "first_response_breached": True,
                      "requested_by": "S001", "converted_to": None, "request_terms": TERMS, "opening": OPENING},
    Process.EMERGENCY: {"title": "仓库漏水", "severity": 2, "scope": "A 区", "source": "staff", "affected_cases": ["return-1"],
                        "affected_orders": ["O1"], "customers": [CUSTOMER], "reported_by": "S004", "owner": "S006", "plan": "转移",
                        "update_every_hours": 2, "updates_sent": 3,
                        "review": {"cause": "排水", "actions": "转移", "prevention": "检查", "by": "S003"},
                        "request_terms": TERMS, "opening": OPENING},
}


def case_of(process: Process, details: dict) -> Case:
    return Case(id=f"{process.value}-T1", process=process, order_id="O1", customer_id="C1001", requested_by="buyer", details=details)


def test_every_registered_process_has_its_details_model():
    for entry in processes():
        model = details_model(Process(entry.name.replace("-", "_")))
        assert issubclass(model, CaseDetails) and model is not CaseDetails, entry.name
    assert set(MODELS) == set(Process)  # the tracker's contact cases too


@pytest.mark.parametrize("process", list(Process))
def test_a_stored_row_reads_typed_and_is_stored_back_in_the_same_shape(process):
    details = details_of(case_of(process, ROWS[process]))
    assert isinstance(details, details_model(process))
    assert stored(details) == ROWS[process]  # no key added, renamed or reformatted: no migration


@pytest.mark.parametrize("process", list(Process))
def test_an_unknown_key_is_refused(process):
    for row in ({**ROWS[process], "surprise": 1}, {**ROWS[process], "customer": {**CUSTOMER, "surprise": 1}}):
        with pytest.raises(ValidationError) as refused:
            details_of(case_of(process, row))
        assert [e["type"] for e in refused.value.errors()] == ["extra_forbidden"]
    with pytest.raises(ValidationError):
        with_changes(details_model(process).model_validate(ROWS[process]), surprise=1)


def test_types_are_the_domains():
    details = details_of(case_of(Process.REPAIR, ROWS[Process.REPAIR]))
    assert details.warranty_ends == datetime(2027, 11, 20, 10, 0, tzinfo=timezone.utc) and details.terms.needs_approval
    exchange = details_of(case_of(Process.EXCHANGE, ROWS[Process.EXCHANGE]))
    assert exchange.terms.difference == Decimal("10.00") and exchange.items[0].unit_price == Decimal("59.00")
    complaint = details_of(case_of(Process.COMPLAINT, ROWS[Process.COMPLAINT]))
    assert isinstance(complaint, ComplaintDetails) and complaint.received_at.tzinfo is not None
    assert complaint.routing.handler.value == "quality"
    with pytest.raises(ValidationError):  # a naive time is refused
        ReturnDetails.model_validate({**ROWS[Process.RETURN], "satisfaction": {**SATISFACTION, "at": "2026-11-30T02:00:00"}})
    with pytest.raises(ValidationError):  # money is never a float
        ReturnDetails.model_validate({**ROWS[Process.RETURN], "items": [{**LINE, "unit_price": 59.0}]})
    with pytest.raises(TypeError):  # a reader asking for another process's model
        details_of(case_of(Process.RETURN, ROWS[Process.RETURN]), ReviewDetails)


def test_a_review_stored_with_its_prices_as_items_still_reads():
    """Reviews once kept the order's prices as ``items: {sku: price}`` (every other process keeps
    order lines there): such a row reads as ``prices`` and is written back under that name."""
    old = {key: value for key, value in ROWS[Process.REVIEW].items() if key != "prices"}
    old["items"] = {"SH-RUN-42": "299.00", "SH-RUN-42-LITE": "199.00"}
    details = details_of(case_of(Process.REVIEW, old))
    assert details.prices == {"SH-RUN-42": Decimal("299.00"), "SH-RUN-42-LITE": Decimal("199.00")} and details.items == []
    assert "items" not in stored(details) and stored(details)["prices"] == old["items"]


def test_a_row_without_the_keys_its_readers_defaulted_still_reads():
    """Readers took a return's kind, free shipping and missing items with a default; a row without
    them (older, or written by hand) reads with those defaults, and they are not written into it."""
    details = details_of(case_of(Process.RETURN, {"customer": {"customer_id": "C1"}}))
    assert (details.kind.value, details.free_shipping, details.missing_skus) == ("no_reason", False, [])
    assert stored(details) == {"customer": {"customer_id": "C1"}}
    with pytest.raises(ValidationError):  # what the flows always relied on is required
        details_of(case_of(Process.WRONG_SHIPMENT, {"skus": ["X"]}))


def test_later_writers_go_through_the_model():
    details = details_of(case_of(Process.RETURN, {k: v for k, v in ROWS[Process.RETURN].items() if k != "satisfaction"}))
    answered = with_changes(details, satisfaction={"score": 4, "at": datetime(2026, 11, 30, 2, 0, 0, 123456, tzinfo=timezone.utc),
                                                   "comment": "快"})
    assert stored(answered) == ROWS[Process.RETURN]
    with pytest.raises(ValidationError):
        with_changes(details, satisfaction={"score": 6, "at": datetime(2026, 11, 30, tzinfo=timezone.utc)})
