"""Running it as operations does (issue 4): crash safety of the serving process."""

from __future__ import annotations

from decimal import Decimal

from sqlmodel import select

from aftersales.domain.models import CaseEvent, LedgerLine
from aftersales.integrations.db import session_scope
from tests.support.stack import wait_until


def test_a_crash_while_a_refund_is_in_flight_pays_once_after_restart(stack, sandbox_clean, team):
    order = stack.make_order(paid="77.00")
    case_id = stack.open_return(order)
    stack.approve(case_id, "seller-review", team["S006"])
    stack.answer(case_id, "buyer-shipment", carrier="yuantong", tracking_number="YT5550001112")
    stack.approve(case_id, "receipt", team["S007"])
    stack.waiting(case_id, "inspection")

    # the platform answers slowly: kill -9 the serving process while the refund call is in flight
    stack.faults(latency_ms=6000)
    stack.approve(case_id, "inspection", team["S007"], result="pass", refund_amount="77.00")
    wait_until(lambda: _refund_task_running(stack, _run_id(case_id)), 60, "the refund call to be in flight")
    stack.stop_serving(hard=True)
    assert stack.run_state(_run_id(case_id)) in ("RUNNING", "PENDING")
    stack.faults()

    stack.start_serving()  # re-queues the interrupted run; it runs again from the top
    case = stack.finished(case_id, timeout=150)
    assert case.outcome == "refunded"
    assert [Decimal(r["amount"]) for r in stack.refunds(order["order_id"])] == [Decimal("77.00")]
    with session_scope() as session:
        assert len(session.exec(select(LedgerLine).where(LedgerLine.case_id == case_id, LedgerLine.kind == "refund")).all()) == 1
        assert len(session.exec(select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.action == "refund.paid")).all()) == 1


def _refund_task_running(stack, flow_run_id: str) -> bool:
    """The case's refund task has started: its first call is the (slow) refund request."""
    from uuid import UUID

    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, TaskRunFilter, TaskRunFilterName

    runs = stack.prefect().read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)])),
                                          task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="refund-buyer")))
    return any(run.state is not None and run.state.is_running() for run in runs)


def _run_id(case_id: str) -> str:
    from aftersales.integrations import case_store

    with session_scope() as session:
        return case_store.get_case(session, case_id).flow_run_id


def test_prefect_yaml_declares_what_serve_serves_and_deploys_to_a_work_pool(tmp_path):
    """`prefect deploy --all` against a server of its own (so the served deployments stay as they are)."""
    import os
    import subprocess
    import sys

    import yaml
    from prefect.client.orchestration import get_client

    from aftersales.deployments.commands.deployments import manifest, render
    from tests.support.stack import ROOT, start_prefect_server, stop_process

    assert (ROOT / "prefect.yaml").read_text(encoding="utf-8") == render(), "run `aftersales deployments write-yaml`"
    declared = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))["deployments"]
    assert {d["name"] for d in declared} >= {"return", "deadline-sweeper", "outbox-retry", "order-tracker", "review-monitor"}

    api_url, server = start_prefect_server(tmp_path / "prefect", tmp_path / "server.log")
    try:
        env = {**os.environ, "PREFECT_API_URL": api_url, "AFTERSALES_HOME": str(ROOT)}
        prefect = [sys.executable, "-m", "prefect", "--no-prompt"]
        template = tmp_path / "work-pool-template.json"
        subprocess.run([sys.executable, "-m", "aftersales.deployments.cli", "deployments", "job-template", "--path", str(template)],
                       env=env, check=True, capture_output=True)
        subprocess.run([*prefect, "work-pool", "create", "aftersales", "--type", "process", "--base-job-template", str(template)],
                       env=env, check=True, capture_output=True)
        done = subprocess.run([*prefect, "deploy", "--all"], env=env, cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

        async def read_all():
            from prefect.settings import PREFECT_API_URL, temporary_settings

            with temporary_settings(updates={PREFECT_API_URL: api_url}):
                async with get_client() as client:
                    return await client.read_deployments(), await client.read_work_pool("aftersales")

        deployments, pool = __import__("asyncio").run(read_all())
        deployed = {d.name: d for d in deployments}
        for entry in manifest()["deployments"]:
            deployment = deployed[entry["name"]]
            assert deployment.work_pool_name == "aftersales"
            assert deployment.entrypoint == entry["entrypoint"] and deployment.entrypoint.startswith("aftersales.flows.")
            crons = [(s.schedule.cron, s.schedule.timezone) for s in deployment.schedules]
            assert crons == [(s["cron"], s["timezone"]) for s in entry.get("schedules", [])]
        assert deployed["deadline-sweeper"].schedules[0].schedule.timezone == "Asia/Shanghai"

        # flow runs start as the engine, not through Prefect's workspace supervisor (aftersales/deployments/workers.py)
        command = pool.base_job_template["variables"]["properties"]["command"]
        assert command["default"] == "python -m prefect.engine"
    finally:
        stop_process(server)
