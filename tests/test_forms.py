"""Every form as the Prefect UI receives it (the schema Prefect stores when a run suspends): what a
person must answer is required, a field needed for one choice only says so in its title, labels
are Chinese first, ids and codes take one line; and an answer that leaves a prefilled choice out
(the CLI, the intake API, the deadline sweeper) is completed as the UI would send it."""

from __future__ import annotations

import importlib
import inspect
import re
from enum import Enum

import pydantic
import pytest
from prefect._internal.pydantic.v2_schema import create_v2_schema
from prefect.input import RunInput

from aftersales.approvals.forms import SellerReview, StaffForm, prefilled
from aftersales.approvals.resume import ResumeRefused, as_form_input
from aftersales.domain.models import Role, addressee_label

MODULES = ["forms", "compensation_forms", "complaint_forms", "dispute_forms", "exchange_forms", "out_of_area_forms",
           "repair_forms", "review_forms", "wrong_shipment_forms"]
FORMS = sorted({cls for name in MODULES for _, cls in inspect.getmembers(importlib.import_module(f"aftersales.approvals.{name}"), inspect.isclass)
                if issubclass(cls, RunInput) and cls.model_fields and cls.__module__.startswith("aftersales.approvals")},
               key=lambda cls: cls.__name__)
CHINESE = re.compile(r"^[\u4e00-\u9fff]")


def ui_schema(form):
    return create_v2_schema(form.__name__, model_base=form)  # as Prefect stores it for the Resume form


def test_there_are_forms_to_check():
    assert len(FORMS) >= 25


@pytest.mark.parametrize("form", FORMS, ids=lambda cls: cls.__name__)
def test_a_choice_is_required_though_prefilled_and_a_conditional_field_says_when(form):
    schema = ui_schema(form)
    required = set(schema.get("required", []))
    for name, field in form.model_fields.items():
        choice = isinstance(field.annotation, type) and issubclass(field.annotation, (Enum, bool))
        title = schema["properties"][name]["title"]
        assert CHINESE.match(title), f"{form.__name__}.{name}: the label is not Chinese first: {title!r}"
        if choice:
            assert name in required, f"{form.__name__}.{name} is a choice the UI would mark (Optional)"
        needed_sometimes = "必填" in (field.description or "") and name not in required
        if needed_sometimes:
            assert "必填" in title and "required" in title, f"{form.__name__}.{name}: required for one choice, and the title does not say so"


def test_the_seller_review_as_a_supervisor_reads_it():
    schema = ui_schema(prefilled(SellerReview, description="…"))
    assert {"staff_id", "code", "decision"} <= set(schema["required"])
    assert schema["properties"]["decision"]["default"] == "agree"  # prefilled, and not "(Optional)"
    assert "note" not in schema["required"] and "拒绝时必填 required to refuse" in schema["properties"]["note"]["title"]


@pytest.mark.parametrize("typed", ["123456\n", "12345 6", "S002\nS003"])
def test_ids_and_codes_are_one_line(typed):
    # Prefect's UI gives every free-text field a one-row box; the form refuses what is not one line
    with pytest.raises(pydantic.ValidationError):
        StaffForm(staff_id=typed if typed.startswith("S") else "S002", code=typed if not typed.startswith("S") else "123456")


def test_an_answer_is_completed_with_the_prefilled_choices_only():
    schema = ui_schema(prefilled(SellerReview, description="…"))
    answer = as_form_input({"staff_id": "S002", "code": "123456"}, schema)
    assert answer == {"staff_id": "S002", "code": "123456", "decision": "agree"}  # the note stays out
    given = as_form_input({"staff_id": "S002", "code": "123456", "decision": "refuse", "note": "已穿过"}, schema)
    assert given["decision"] == "refuse"


def test_every_role_has_a_chinese_first_label():
    labels = [addressee_label(role.value) for role in Role] + [addressee_label("buyer")]
    assert all(CHINESE.match(label) for label in labels), labels


def test_a_typed_answer_outside_the_choices_is_refused_with_them():
    from aftersales.approvals.review_forms import BuyerResponse

    review = ui_schema(prefilled(SellerReview, description="…"))
    with pytest.raises(ResumeRefused, match="agree, refuse"):
        as_form_input({"staff_id": "S002", "code": "123456", "decision": "maybe"}, review)
    response = ui_schema(BuyerResponse)
    with pytest.raises(ResumeRefused, match="true or false"):
        as_form_input({"review_updated": "perhaps"}, response)
    assert as_form_input({"review_updated": "是"}, response)["review_updated"] is True
