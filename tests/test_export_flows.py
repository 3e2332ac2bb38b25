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


def test_reporting_deployments_are_served_with_their_schedules(stack):
    import httpx
    from prefect.schedules import Cron

    from aftersales.flows import early_warning, finance, satisfaction

    for name in ("compensation-export/compensation-export", "monthly-statistics/monthly-statistics",
                 "satisfaction-survey/satisfaction-survey", "early-warning/early-warning"):
        assert httpx.get(f"{stack.env['PREFECT_API_URL']}/deployments/name/{name}", timeout=5).status_code == 200, name

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
