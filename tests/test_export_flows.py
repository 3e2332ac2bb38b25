"""Reporting through the real Prefect server and the served deployments: the monthly export's
artifacts and download link, the statistics artifact, the schedules, and the satisfaction request
a closing case sends (the `stack` fixture, see tests/support/stack.py)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal

import openpyxl
from fastapi.testclient import TestClient

from aftersales.domain.models import Case, LedgerLine

MONTH = "2019-05"  # a month no other test writes to


def _run(stack, name: str, parameters: dict):
    from prefect.deployments import run_deployment

    run = run_deployment(name, parameters=parameters, timeout=180)  # sync call: waits for the end
    assert run.state.is_completed(), f"{name}: {run.state}\n{stack.serve_log.read_text()[-3000:]}"
    return run


def _artifacts(stack, flow_run_id) -> dict:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async def read():
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))

    return {artifact.key: artifact for artifact in stack.run(read())}


def test_monthly_export_publishes_a_download_link_and_the_summary(stack):
    from aftersales.api.app import create_app
    from aftersales.domain.settings import get_settings
    from aftersales.integrations.db import session_scope

    with session_scope() as session:
        if session.get(Case, "return-EXPORT-1") is None:
            session.add(Case(id="return-EXPORT-1", process="return", order_id="O-EXPORT-1", customer_id="C1", requested_by="buyer"))
            session.flush()
            for i, amount in enumerate(("128.00", "0.10", "0.20")):
                session.add(LedgerLine(idempotency_key=f"export-flow-{i}", case_id="return-EXPORT-1", process="return",
                                       order_id="O-EXPORT-1", kind="refund", amount=Decimal(amount), bearer="seller",
                                       approved_by="S002", note="=1+1" if i else "",
                                       created_at=datetime(2019, 5, 10 + i, tzinfo=timezone.utc)))
    run = _run(stack, "compensation-export/compensation-export", {"month": MONTH})
    artifacts = _artifacts(stack, run.id)
    link = artifacts["compensation-export"]
    # Prefect 3.8 stores a link artifact as markdown: [text](url)
    url = re.search(r"\((http[^)]+)\)", link.data).group(1)
    assert url.endswith(f"/exports/compensation-{MONTH}.xlsx"), link.data
    table = artifacts["compensation-summary"]
    assert table.type == "table" and "128.30" in str(table.data)

    filename = url.rsplit("/", 1)[1]
    target = get_settings().exports_dir / filename
    try:
        client = TestClient(create_app())
        assert client.get(f"/exports/{filename}").status_code == 401
        response = client.get(f"/exports/{filename}", headers={"X-Api-Key": stack.env["AFTERSALES_API_KEY"]})
        assert response.status_code == 200
        download = stack.tmp / filename
        download.write_bytes(response.content)
        book = openpyxl.load_workbook(download)
        amounts = [row[5].value for row in book["明细 Detail"].iter_rows(min_row=2)]
        assert sum(Decimal(str(a)) for a in amounts) == Decimal("128.30")
    finally:
        target.unlink(missing_ok=True)

    stats = _run(stack, "monthly-statistics/monthly-statistics", {"month": MONTH})
    artifacts = _artifacts(stack, stats.id)
    assert artifacts["monthly-statistics"].type == "markdown" and MONTH in artifacts["monthly-statistics"].data
    (get_settings().exports_dir / f"statistics-{MONTH}.xlsx").unlink(missing_ok=True)


def test_the_export_headline_shows_what_the_shop_bears_and_what_the_platform_paid(stack, sandbox_clean, tmp_path):
    """Three compensations paid through the real flows (within an agent's limit: no approval) —
    cash the shop bears, cash the carrier bears (the platform pays it all the same), a coupon the
    shop bears (no payment) — exported as their own month: the link artifact's headline and the
    CLI's message give the shop's total and the platform-paid total, and the platform-paid lines
    equal, by reference, what the sandbox platform refunded."""
    import json

    from sqlmodel import select
    from typer.testing import CliRunner

    from aftersales.deployments.cli import app as cli
    from aftersales.intake.compensation import open_compensation
    from aftersales.domain.settings import get_settings
    from aftersales.integrations.db import session_scope
    from tests.support.stack import wait_until

    month = "2019-06"  # another month no other test writes to: these cases' lines are moved there
    cases = []
    for form, amount, bearer in (("cash", "15.00", "seller"), ("cash", "12.00", "carrier"), ("coupon", "10.00", "seller")):
        order = stack.make_order(paid="128.00")
        opened = stack.run(open_compensation(order["order_id"], form, amount, "物流延误 parcel late", "S001", bearer=bearer))
        cases.append((order, opened.case_id))
    for _order, case_id in cases:
        wait_until(lambda: _recorded(case_id), 60, f"{case_id} to be recorded")
        assert stack.finished(case_id).outcome == "compensated"
    case_ids = [case_id for _order, case_id in cases]
    with session_scope() as session:
        lines = list(session.exec(select(LedgerLine).where(LedgerLine.case_id.in_(case_ids)).order_by(LedgerLine.id)))
        assert len(lines) == 3
        for i, line in enumerate(lines):
            line.created_at = datetime(2019, 6, 10, 2 + i, tzinfo=timezone.utc)
            session.add(line)
    platform = {r["refund_id"]: Decimal(r["amount"]) for order, _ in cases for r in stack.refunds(order["order_id"])}
    assert sorted(platform.values()) == [Decimal("12.00"), Decimal("15.00")]  # the coupon is no refund

    run = _run(stack, "compensation-export/compensation-export", {"month": month})
    artifacts = _artifacts(stack, run.id)
    description = artifacts["compensation-export"].description
    # the shop bears 15 + 10 (not the carrier's 12); the platform paid 15 + 12 (not the coupon)
    assert "shop bears ¥25.00" in description and "platform paid ¥27.00" in description, description
    table = artifacts["compensation-summary"].data
    rows = {row["key"]: row for row in (json.loads(table) if isinstance(table, str) else table)}
    assert (rows["platform paid 平台实付"]["count"], rows["platform paid 平台实付"]["amount_cny"]) == (2, "27.00")
    assert rows["shop bears 店铺承担"]["amount_cny"] == "25.00" and rows["all lines 全部"]["amount_cny"] == "37.00"

    target = get_settings().exports_dir / f"compensation-{month}.xlsx"
    try:
        detail = list(openpyxl.load_workbook(target)["明细 Detail"].iter_rows(values_only=True))
        header, body = detail[0], detail[1:]
        ref, paid_col, kind = header.index("平台单号 Platform ref."), header.index("平台实付 Platform paid"), header.index("类型 Kind")
        paid_by_ref: dict[str, Decimal] = {}
        for row in body:
            if row[paid_col] is not None:
                paid_by_ref[row[ref]] = paid_by_ref.get(row[ref], Decimal("0")) + Decimal(str(row[paid_col]))
        assert paid_by_ref == platform  # the platform-paid lines are the platform's refunds, by reference
        assert [row[paid_col] for row in body if row[kind] == "coupon"] == [None]  # the coupon: informational
    finally:
        target.unlink(missing_ok=True)

    output = tmp_path / f"compensation-{month}.xlsx"
    done = CliRunner(env={"COLUMNS": "250"}).invoke(cli, ["export", "compensation", "--month", month, "--output", str(output)])
    assert done.exit_code == 0, done.output
    assert "shop bears CNY 25.00" in done.output and "platform paid CNY 27.00" in done.output, done.output
    assert "37.00" in done.output and output.is_file()  # all lines, the check figure


def _recorded(case_id: str) -> bool:
    from aftersales.integrations.db import session_scope

    with session_scope() as session:
        return session.get(Case, case_id) is not None


def test_reporting_deployments_are_served_with_their_schedules(stack):
    import httpx
    from prefect.schedules import Cron

    from aftersales.domain.settings import prefect_auth_header
    from aftersales.flows import early_warning, finance, satisfaction

    for name in ("compensation-export/compensation-export", "monthly-statistics/monthly-statistics",
                 "satisfaction-survey/satisfaction-survey", "early-warning/early-warning"):
        assert httpx.get(f"{stack.env['PREFECT_API_URL']}/deployments/name/{name}", headers=prefect_auth_header(), timeout=5).status_code == 200, name
        # the tests' Prefect server is locked as production's is: nothing without the credentials
        assert httpx.get(f"{stack.env['PREFECT_API_URL']}/deployments/name/{name}", timeout=5).status_code == 401, name

    def schedule(cron: str) -> list:
        return [Cron(cron, timezone="Asia/Shanghai")]

    crons = {d.name: d.schedules[0].schedule for d in finance.deployments(schedule) + satisfaction.deployments(schedule)
             + early_warning.deployments(schedule)}
    assert crons["compensation-export"].cron == "0 6 1 * *" and crons["compensation-export"].timezone == "Asia/Shanghai"
    assert crons["satisfaction-survey"].cron == "0 10 1 1,4,7,10 *"


def test_a_closed_case_asks_the_buyer_for_a_score_once(stack, sandbox_clean):
    from aftersales.api.app import create_app

    order = stack.make_order(paid="66.00")
    case_id = stack.open_return(order)
    stack.approve(case_id, "seller-review", "S002", decision="refuse", note="商品已使用")
    stack.finished(case_id)

    def asked():
        texts = [str(m.json) for m in stack.customer_messages(order)]
        return [t for t in texts if "/satisfaction/" in t]

    from tests.support.stack import wait_until

    messages = wait_until(asked, 30, "the satisfaction request")
    assert len(messages) == 1
    token = re.search(r"/satisfaction/([A-Za-z0-9_.=-]+)", messages[0]).group(1)
    client = TestClient(create_app())
    key = {"X-Api-Key": stack.env["AFTERSALES_API_KEY"]}
    assert client.post(f"/satisfaction/{token}", json={"score": 2, "comment": "太慢"}, headers=key).status_code == 201
    assert client.post(f"/satisfaction/{token}", json={"score": 5}, headers=key).status_code == 409
