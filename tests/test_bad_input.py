"""Bad input never crashes and never echoes itself back whole: money in plain decimal notation
only, short error messages, and a repeated request that asks for something else is refused.

The parser is tested on its own; the CLI as a user types it (a subprocess of the installed
``aftersales`` command) and the intake API over HTTP, against the whole stack (tests/support/stack.py).
"""

from __future__ import annotations

import re
import subprocess
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
from sqlmodel import select
from typer.testing import CliRunner

from aftersales.deployments.cli import app as cli
from aftersales.domain.models import Case
from aftersales.domain.rules import InvalidRequest, parse_amount
from aftersales.integrations.db import session_scope

ROOT = Path(__file__).resolve().parents[1]
CLI = ROOT / ".venv" / "bin" / "aftersales"
KEY = {"X-Api-Key": "test-api-key"}
MEGABYTE = "很" * (1 << 20)
CJK = re.compile(r"[\u4e00-\u9fff]")


def bilingual(message: str) -> bool:
    return bool(CJK.search(message)) and bool(re.search(r"[A-Za-z]{4,}", message))


# --- the money parser ------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "code", "says"), [
    ("1e309", "amount_exponent", "without an exponent"), ("9e-1", "amount_exponent", "plain decimal notation"),
    ("1E2", "amount_exponent", "plain decimal notation"), ("1.5e+3", "amount_exponent", "plain decimal notation"),
    ("inf", "amount_not_numeric", "not infinity or NaN"), ("-Infinity", "amount_not_numeric", "not infinity or NaN"),
    ("nan", "amount_not_numeric", "not infinity or NaN"), ("sNaN", "amount_not_numeric", "not infinity or NaN"),
    (Decimal("Infinity"), "amount_not_numeric", "not infinity or NaN"),
    ("12.300", "amount_precision", "at most two decimals"),
    ("１２８", "amount_not_numeric", "written like 128.00"), ("128.", "amount_not_numeric", "written like 128.00"),
    ("1_000", "amount_not_numeric", "written like 128.00"),
    ("1" * 11, "amount_too_large", "too large"), ("9" * 400, "amount_too_large", "too large"),
])
def test_money_is_plain_decimal_notation_only(raw, code, says):
    with pytest.raises(InvalidRequest) as refused:
        parse_amount(raw, "amount")
    assert refused.value.code == code
    assert says in refused.value.message and bilingual(refused.value.message), refused.value.message
    assert len(refused.value.message) < 200


def test_forms_and_the_parser_agree_on_money():
    """One rule for money: what a form's pattern lets through, the parser takes, and the reverse."""
    from aftersales.approvals.forms import MONEY_PATTERN
    from aftersales.domain.rules import MONEY_PATTERN as RULE

    assert MONEY_PATTERN == RULE
    for raw, amount in [("128", "128.00"), ("99.5", "99.50"), ("0.01", "0.01"), ("007.10", "7.10"), ("9999999999.99", "9999999999.99")]:
        assert re.match(MONEY_PATTERN, raw) and str(parse_amount(raw)) == amount
    for raw in ("1e3", "9e-1", "１２８", "12.345", "12.300", "inf", "nan", "128.", "1" * 11):
        assert not re.match(MONEY_PATTERN, raw)
        with pytest.raises(InvalidRequest):
            parse_amount(raw)
    assert str(parse_amount(" 99.5 ")) == "99.50" and str(parse_amount(5)) == "5.00" and str(parse_amount(Decimal("1E+2"))) == "100.00"


def test_zero_only_where_allowed():
    assert parse_amount("0", allow_zero=True) == Decimal("0.00")
    with pytest.raises(InvalidRequest, match="amount_not_positive"):
        parse_amount("-0.01", allow_zero=True)


def test_an_error_quotes_only_a_short_prefix_of_the_input():
    with pytest.raises(InvalidRequest) as refused:
        parse_amount("x" * 1_000_000)
    assert "x" * 40 + "…" in refused.value.message and "x" * 41 not in refused.value.message
    assert "1000000 chars" in refused.value.message
    assert len(refused.value.message) < 200


# --- through the stack -------------------------------------------------------------------------------


def flow_runs_named(stack, name: str) -> int:
    async def count():
        async with get_client() as client:
            return len(await client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]))))

    return stack.run(count())


def cases_for(order_id: str) -> int:
    with session_scope() as session:
        return len(session.exec(select(Case).where(Case.order_id == order_id)).all())


@pytest.mark.parametrize(("amount", "says"), [
    ("1e309", "plain decimal notation"),
    ("9e-1", "plain decimal notation"),
    ("[/]", "must be a number"),  # a message quoting the input is not rich markup
])
def test_cli_refuses_bad_money_as_typed(stack, sandbox_clean, amount, says):
    order = stack.make_order(paid="128.00")
    done = subprocess.run([str(CLI), "return", "open", "--order", order["order_id"], "--amount", amount, "--reason", "尺码不合适"],
                          env={**stack.env, "COLUMNS": "250"}, capture_output=True, text=True, timeout=120, cwd=ROOT)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert says in output and "Traceback" not in output and "InvalidOperation" not in output, output
    assert cases_for(order["order_id"]) == 0
    assert flow_runs_named(stack, f"return-{order['order_id']}") == 0


def test_cli_refuses_a_huge_reason_in_a_few_words(stack, sandbox_clean):
    order = stack.make_order(paid="128.00")
    result = CliRunner(env={"COLUMNS": "250"}).invoke(
        cli, ["return", "open", "--order", order["order_id"], "--amount", "128.00", "--reason", MEGABYTE])
    assert result.exit_code == 2, result.output[:500]
    assert "at most 500 characters" in result.output and len(result.output) < 1000
    assert cases_for(order["order_id"]) == 0
    assert flow_runs_named(stack, f"return-{order['order_id']}") == 0




@pytest.mark.parametrize(("body", "code", "says"), [
    ('{"order_id": "%s", "amount": "1e309"}', "amount_exponent", "without an exponent"),
    ('{"order_id": "%s", "amount": "9e-1"}', "amount_exponent", "plain decimal notation"),
    ('{"order_id": "%s", "amount": "Infinity"}', "amount_not_numeric", "not infinity or NaN"),
    # a JSON number this big parses as infinity, which FastAPI's own error answer cannot even render
    ('{"order_id": "%s", "amount": 1e309}', "amount_not_string", "must be a decimal string"),
])
def test_api_refuses_bad_money_with_a_clear_error(stack, sandbox_clean, intake_api, body, code, says):
    order = stack.make_order(paid="128.00")
    answer = httpx.post(f"{intake_api}/returns", content=body % order["order_id"], timeout=30,
                        headers={**KEY, "Content-Type": "application/json"})
    assert answer.status_code == 422, answer.text[:500]
    detail = answer.json()["detail"]
    assert detail["code"] == code and says in detail["message"] and bilingual(detail["message"]), detail
    assert cases_for(order["order_id"]) == 0
    assert flow_runs_named(stack, f"return-{order['order_id']}") == 0


def test_api_refuses_a_huge_reason_without_echoing_it(stack, sandbox_clean, intake_api):
    order = stack.make_order(paid="128.00")
    answer = httpx.post(f"{intake_api}/returns", json={"order_id": order["order_id"], "amount": "128.00", "reason": MEGABYTE},
                        headers=KEY, timeout=30)
    assert answer.status_code == 422
    assert len(answer.content) < 2000, f"{len(answer.content)} bytes of error"
    detail = answer.json()["detail"]
    assert detail["code"] == "reason_too_long" and "at most 500 characters" in detail["message"]
    assert "很" * 41 not in answer.text
    assert cases_for(order["order_id"]) == 0


def test_a_repeat_with_another_amount_is_refused(stack, sandbox_clean, intake_api):
    order = stack.make_order(paid="128.00")
    first = httpx.post(f"{intake_api}/returns", json={"order_id": order["order_id"], "amount": "128.00"}, headers=KEY, timeout=30)
    assert first.status_code == 201, first.text
    case_id = first.json()["case_id"]

    other = httpx.post(f"{intake_api}/returns", json={"order_id": order["order_id"], "amount": "100.00"}, headers=KEY, timeout=30)
    assert other.status_code == 422, other.text
    detail = other.json()["detail"]
    assert detail["code"] == "case_exists_different"
    assert "a case already exists for this order" in detail["message"] and "different amount" in detail["message"]
    assert "128.00" in detail["message"] and "100.00" in detail["message"] and case_id in detail["message"]

    same = httpx.post(f"{intake_api}/returns", json={"order_id": order["order_id"], "amount": "128"}, headers=KEY, timeout=30)
    assert same.status_code == 201 and same.json() == first.json()  # an identical repeat: the existing case, as before

    stack.waiting(case_id, "seller-review")
    assert flow_runs_named(stack, case_id) == 1
    with session_scope() as session:
        assert session.get(Case, case_id).amount == Decimal("128.00")


def test_a_repeated_dispute_with_another_amount_is_refused(stack, sandbox_clean):
    from aftersales.intake.dispute import open_dispute

    order = stack.make_order(paid="300.00")
    opened = stack.run(open_dispute(order["order_id"], "quality", "开线 the seam came open", platform_ref="WQREPEAT", claimed_amount="300.00"))
    with pytest.raises(InvalidRequest) as refused:
        stack.run(open_dispute(order["order_id"], "quality", "开线 the seam came open", platform_ref="WQREPEAT", claimed_amount="30.00"))
    assert refused.value.code == "case_exists_different" and "different amount" in refused.value.message
    again = stack.run(open_dispute(order["order_id"], "quality", "开线 the seam came open", platform_ref="WQREPEAT", claimed_amount="300"))
    assert again.case_id == opened.case_id and again.flow_run_id == opened.flow_run_id
    with session_scope() as session:
        assert session.get(Case, opened.case_id).amount == Decimal("300.00")
