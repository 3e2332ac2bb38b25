"""The process registry: each process declared once, and the CLI, the API and the demo made from it."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from aftersales.api.app import create_app
from aftersales.deployments.cli import app as cli
from aftersales.domain.rules import InvalidRequest
from aftersales.intake.registry import process, processes

RULES = Path(__file__).resolve().parents[1] / "docs" / "rulebook.md"
KEY = {"X-Api-Key": "test-api-key"}


def test_every_process_is_declared_once_with_its_rulebook_section():
    names = [p.name for p in processes()]
    assert names == ["return", "exchange", "compensation", "out-of-area", "repair", "review", "wrong-shipment", "dispute", "complaint", "enquiry", "emergency"]
    assert len({p.route for p in processes()}) == len(names)
    headings = set(re.findall(r"^### (\d+\.\d+) ", RULES.read_text(encoding="utf-8"), re.MULTILINE))
    assert {p.section.lstrip("§") for p in processes()} <= headings
    for entry in processes():
        assert entry.demo, f"{entry.name} has no demo case for make run"
        flags = [(f.json_schema_extra or {}).get("x-cli") for f in entry.request.model_fields.values()]
        assert len([f for f in flags if f]) == len(set(f for f in flags if f)), f"{entry.name}: an option named twice"


def test_the_cli_and_the_api_offer_every_process():
    routes = set(create_app().openapi()["paths"])  # the published paths: routers nest routes differently by FastAPI version
    for entry in processes():
        assert f"/{entry.route}" in routes
        shown = CliRunner().invoke(cli, [entry.name, "open", "--help"], env={"COLUMNS": "200"})
        assert shown.exit_code == 0, shown.output
        assert entry.summary.split(";")[0].split(".")[0] in " ".join(shown.output.split())


def test_a_request_of_the_wrong_shape_is_refused_by_name():
    with pytest.raises(InvalidRequest) as refused:
        process("complaint").checked({"channel": "phone", "category": "1001", "level": "two"})
    assert refused.value.code == "level_malformed" and "two" in refused.value.message
    with pytest.raises(InvalidRequest) as unknown:
        process("return").checked({"order_id": "O1", "amount": "1.00", "colour": "red"})
    assert unknown.value.code == "colour_malformed"


def test_the_api_opens_any_process_through_its_door(stack, sandbox_clean, intake_api):
    order = stack.make_order(paid="1279.00", delivered_days_ago=30, items=[
        {"sku": "SKU-PURIFIER", "name": "空气净化器", "category": "appliance", "quantity": 1, "unit_price": "1279.00"}])
    refused = httpx.post(f"{intake_api}/repairs", json={"order_id": order["order_id"], "sku": "SKU-NOT-BOUGHT", "fault": "异响"},
                         headers=KEY, timeout=30)
    assert refused.status_code == 422 and refused.json()["detail"]["code"] == "unknown_item", refused.text

    missing = httpx.post(f"{intake_api}/repairs", json={"order_id": order["order_id"]}, headers=KEY, timeout=30)
    assert missing.status_code == 422 and {p["field"] for p in missing.json()["detail"]["errors"]} == {"sku", "fault"}

    opened = httpx.post(f"{intake_api}/repairs", json={"order_id": order["order_id"], "sku": "SKU-PURIFIER", "fault": "风机异响",
                                                        "requested_by": stack.member("S001")}, headers=KEY, timeout=30)
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]
    assert case_id == f"repair-{order['order_id']}-SKU-PURIFIER"
    assert stack.waiting(case_id, "buyer-ships").addressed_to == "buyer"
    again = httpx.post(f"{intake_api}/repairs", json={"order_id": order["order_id"], "sku": "SKU-PURIFIER", "fault": "风机异响",
                                                       "requested_by": stack.member("S001")}, headers=KEY, timeout=30)
    assert again.status_code == 201 and again.json() == opened.json()  # a repeat finds the case


def test_a_run_started_by_hand_opens_no_case(stack, sandbox_clean):
    """The deployment's own "Run" (Prefect UI, `prefect deployment run`) bypasses the door: the
    run fails at its first step, saying how to open a case, and nothing is recorded."""
    from prefect.deployments import run_deployment
    from sqlmodel import select

    from aftersales.domain.models import Case
    from aftersales.integrations.db import session_scope

    order = stack.make_order(paid="128.00")
    case_id = f"return-{order['order_id']}"
    run = run_deployment("return/return", parameters={"case_id": case_id, "order_id": order["order_id"], "amount": "128.00"},
                         timeout=120, as_subflow=False)
    assert run.state.is_failed(), run.state
    assert "was not opened through intake" in stack.serve_log.read_text()
    with session_scope() as session:
        assert session.exec(select(Case).where(Case.order_id == order["order_id"])).all() == []
