"""Opening cases from the CLI and the intake API: bad input gets a clear error and changes nothing."""

from __future__ import annotations

import json

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
from sqlmodel import select
from typer.testing import CliRunner

from aftersales.deployments.cli import app as cli
from aftersales.domain.models import Case
from aftersales.domain.rules import InvalidRequest
from aftersales.intake.returns import open_return
from aftersales.integrations.db import session_scope


def flow_runs_named(stack, name: str) -> int:
    async def count():
        async with get_client() as client:
            runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])))
        return len(runs)

    return stack.run(count())


def cases_for(order_id: str) -> int:
    with session_scope() as session:
        return len(session.exec(select(Case).where(Case.order_id == order_id)).all())


@pytest.mark.parametrize(
    ("order_args", "amount", "kind", "code"),
    [
        (None, "10.00", "no_reason", "unknown_order"),
        ({"delivered_days_ago": None, "status": "shipped"}, "10.00", "no_reason", "not_delivered"),
        ({"delivered_days_ago": 8}, "10.00", "no_reason", "out_of_window"),
        ({"delivered_days_ago": 16}, "10.00", "quality", "out_of_window"),
        ({}, "128.01", "no_reason", "amount_above_paid"),
        ({}, "-5", "no_reason", "amount_not_positive"),
        ({}, "十块", "no_reason", "amount_not_numeric"),
        ({}, "10.00", "exchange-please", "unknown_kind"),
    ],
)
def test_bad_requests_are_refused_and_change_nothing(stack, sandbox_clean, order_args, amount, kind, code):
    order_id = stack.make_order(paid="128.00", **order_args)["order_id"] if order_args is not None else "NO-SUCH-ORDER"
    with pytest.raises(InvalidRequest) as refused:
        stack.run(open_return(order_id, amount, "test", kind))
    assert refused.value.code == code
    assert refused.value.message  # bilingual, says what is wrong
    assert cases_for(order_id) == 0
    assert flow_runs_named(stack, f"return-{order_id}") == 0


def test_cli_opens_once_and_explains_refusals(stack, sandbox_clean, team):
    runner = CliRunner(env={"COLUMNS": "250"})
    order = stack.make_order(paid="128.00")
    first = runner.invoke(cli, ["return", "open", "--order", order["order_id"], "--amount", "128.00", "--reason", "尺码不合适"])
    assert first.exit_code == 0, first.output
    case_id = f"return-{order['order_id']}"
    assert f"→ flow run {case_id} (" in first.output  # the run's own name, not a random one
    again = runner.invoke(cli, ["return", "open", "--order", order["order_id"], "--amount", "128.00"])
    assert again.exit_code == 0
    stack.waiting(case_id, "seller-review")
    assert flow_runs_named(stack, case_id) == 1  # the idempotency key kept it to one run
    assert cases_for(order["order_id"]) == 1

    refused = runner.invoke(cli, ["return", "open", "--order", order["order_id"], "--amount", "abc"])
    assert refused.exit_code == 2 and "must be a number" in refused.output

    listed = runner.invoke(cli, ["waits", "list"], env={"COLUMNS": "220"})
    assert case_id in listed.output and "seller-review-1" in listed.output
    assert "主管 supervisors" in listed.output and "(UTC+08:00)" in listed.output  # whom, Chinese first; when, with its offset
    resumed = runner.invoke(cli, ["waits", "resume", case_id, "--staff", team["S002"], "--code", stack.code(team["S002"]), "--set", "decision=agree"])
    assert resumed.exit_code == 0 and "answered" in resumed.output, resumed.output
    stack.waiting(case_id, "buyer-shipment")  # the run has moved on to the next step
    shown = runner.invoke(cli, ["case", "show", case_id], env={"COLUMNS": "100"})
    assert "wait.accepted" in shown.output and team["S002"] in shown.output
    assert "13812345678" not in shown.output
    assert "(UTC+08:00)" in shown.output  # times with their offset
    # the stage in the shop's words (the line may wrap at the terminal's width)
    assert "等待买家退货 waiting for the buyer to send the goods back" in " ".join(shown.output.split())
    trail = json.loads(runner.invoke(cli, ["case", "show", case_id, "--json"]).output)
    opened = next(event for event in trail["events"] if event["action"] == "case.opened")
    assert opened["details"]["reason"] == "尺码不合适" and opened["details"]["amount"] == "128.00"  # whole, not cut to the column
    assert trail["case_id"] == case_id and trail["amount"] == "128.00"
    deadline = next(event for event in trail["events"] if event["action"] == "wait.opened")["details"]["deadline"]
    assert deadline.endswith("+08:00")  # a moment inside an event is the shop's time too, with its offset


def test_every_api_endpoint_requires_the_key(stack, intake_api):
    for method, path in [("GET", "/health"), ("GET", "/waits"), ("POST", "/returns"), ("GET", "/cases/x"), ("POST", "/cases/x/waits/receipt"),
                         ("GET", "/openapi.json")]:
        assert httpx.request(method, f"{intake_api}{path}", json={}).status_code == 401
        assert httpx.request(method, f"{intake_api}{path}", json={}, headers={"X-Api-Key": "wrong"}).status_code == 401
    # the description with the key; no documentation page for anyone
    described = httpx.get(f"{intake_api}/openapi.json", headers={"X-Api-Key": "test-api-key"})
    assert described.status_code == 200 and "/returns" in described.json()["paths"]
    for page in ("/docs", "/redoc"):
        assert httpx.get(f"{intake_api}{page}").status_code == 404


def test_api_opens_a_case_and_reports_the_buyers_shipment(stack, sandbox_clean, intake_api, team):
    key = {"X-Api-Key": "test-api-key"}
    order = stack.make_order(paid="18.00")
    bad = httpx.post(f"{intake_api}/returns", json={"order_id": order["order_id"], "amount": "18.01"}, headers=key)
    assert bad.status_code == 422 and bad.json()["detail"]["code"] == "amount_above_paid"

    opened = httpx.post(f"{intake_api}/returns", json={"order_id": order["order_id"], "amount": "18.00", "reason": "不喜欢"}, headers=key, timeout=30)
    assert opened.status_code == 201
    case_id = opened.json()["case_id"]
    assert stack.waiting(case_id, "seller-review").addressed_to == "agent"  # 18 CNY is within an agent's limit
    stack.approve(case_id, "seller-review", team["S001"])
    stack.waiting(case_id, "buyer-shipment")

    # the platform's webhook reports the buyer's tracking number; the server checks it against the form
    wrong = httpx.post(f"{intake_api}/cases/{case_id}/waits/buyer-shipment", json={"carrier": "YT!", "tracking_number": "1"}, headers=key, timeout=30)
    assert wrong.status_code == 409
    shipped = httpx.post(f"{intake_api}/cases/{case_id}/waits/buyer-shipment",
                         json={"carrier": "yuantong", "tracking_number": "YT9876543210"}, headers=key, timeout=30)
    assert shipped.status_code == 202
    stack.waiting(case_id, "receipt")

    shown = httpx.get(f"{intake_api}/cases/{case_id}", headers=key).json()
    assert shown["stage"] == "receipt" and shown["stage_label"] == "等待仓库收货 waiting for the warehouse to confirm receipt"
    assert any(e["action"] == "parcel.shipped" and e["actor"] == "buyer" for e in shown["events"])
    assert "13812345678" not in str(shown)
    assert all(e["at"].endswith("+08:00") for e in shown["events"])  # the shop's time, with its offset
    assert all(e["details"]["deadline"].endswith("+08:00") for e in shown["events"] if e["action"] == "wait.opened")
    waits = httpx.get(f"{intake_api}/waits", headers=key).json()
    assert all(w["deadline"].endswith("+08:00") for w in waits)
