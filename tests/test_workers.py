"""Past one machine (issue 13): the same deployments on Prefect workers, both databases on PostgreSQL.

One `aftersales dev --workers 2` (what `make run-workers` runs) in a home of its own, started and
used as `tests/test_unattended.py` uses `make run`: commands typed in a clean environment, the
server's scheduler starting the sweeper, processes killed the way a machine kills them. No serve:
every case run is started by one of the two workers of the `aftersales` work pool, which share the
home's result storage. PostgreSQL leg only (worker mode refuses SQLite).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from sqlalchemy import create_engine

from tests.support.live import alive, children_of, start_live_stack, stop_live_stack
from tests.support.stack import case_database_url, prefect_database, wait_until
from tests.test_unattended import (_prefect, answered_by_the_sweeper, assert_paid_once, closed, code_for, drive_to_inspection, ok, rows,
                                   waiting_at)

pytestmark = pytest.mark.postgres_only  # worker mode runs on PostgreSQL: the PostgreSQL leg runs it (conftest)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    home = tmp_path_factory.mktemp("workers-home")
    case_url, drop_cases = case_database_url("postgres", home)
    prefect_url, drop_prefect = prefect_database("postgres")
    started = time.monotonic()
    stack = start_live_stack(
        home, case_url, ("dev", "--workers", "2"),
        AFTERSALES_PREFECT_DATABASE_URL=prefect_url,
        AFTERSALES_SWEEPER_CRON="* * * * *", AFTERSALES_OUTBOX_RETRY_CRON="* * * * *",
        # the compensation demo cases' approval waits expire at once: only the scheduled sweeper can answer them
        AFTERSALES_RULE_COMPENSATION_APPROVAL_HOURS="0",
        AFTERSALES_RUNNER_POLL_SECONDS="0.5",
        # a run whose worker died is re-queued after a minute without heartbeats (default 120 s)
        AFTERSALES_WORKER_UNRESPONSIVE_SECONDS="60",
    )
    stack.startup_seconds = time.monotonic() - started
    print(f"make run-workers: ready (demo cases opened) after {stack.startup_seconds:.0f} s")
    stack.engine = create_engine(case_url)
    yield stack
    stop_live_stack(stack)
    stack.engine.dispose()
    drop_cases()
    drop_prefect()


# --- helpers ----------------------------------------------------------------------------------------


def flow_run(live, case_id: str):
    (run_id,) = rows(live, "SELECT flow_run_id FROM \"case\" WHERE id = :case", case=case_id)[0]

    async def read():
        async with _prefect(live) as client:
            return await client.read_flow_run(UUID(run_id))

    return asyncio.run(read())


def worker_of(live, case_id: str) -> str:
    """The worker that started the case's run last (Prefect labels the run with it at each start)."""
    return flow_run(live, case_id).labels.get("prefect.worker.name")


def pool_command(pool) -> str | None:
    return pool.base_job_template["variables"]["properties"]["command"]["default"]


def worker_pids(live) -> dict[str, int]:
    return {path.stem: int(path.read_text()) for path in (live.var / "run").glob("*-worker-*.pid")}


def warm_process_of(worker_pid: int) -> int:
    """The worker's warm flow-run process (aftersales/deployments/warm_start.py): its runs are forks of it."""
    found = wait_until(lambda: [pid for pid, cmd in children_of(worker_pid) if "aftersales.deployments.warm_start" in cmd],
                       60, "the worker's warm flow-run process")
    assert len(found) == 1, found
    return found[0]


def state_names(live, case_id: str) -> list[str]:
    run_id = flow_run(live, case_id).id

    async def read():
        async with _prefect(live) as client:
            return await client.read_flow_run_states(run_id)

    return [state.name for state in asyncio.run(read())]


# --- the tests --------------------------------------------------------------------------------------


def test_make_run_workers_deploys_to_the_work_pool_and_serves_nothing(live):
    assert "Ready." in live.output()
    assert "work pool `aftersales`" in live.output()
    assert len(worker_pids(live)) == 2 and all(alive(pid) for pid in worker_pids(live).values())
    assert not (live.var / "run" / "serve.pid").exists()

    async def deployments():
        async with _prefect(live) as client:
            return await client.read_deployments()

    async def queues():
        async with _prefect(live) as client:
            return {queue.name: queue.concurrency_limit for queue in await client.read_work_queues(work_pool_name="aftersales")}

    # serve's limit, for the case runs: without one a worker starts every due run at once, a process
    # each; the scheduled work (the sweep that re-queues a dead machine's runs) is never held behind them
    assert {name: limit for name, limit in asyncio.run(queues()).items() if name in ("cases", "ops")} == {"cases": 8, "ops": None}

    async def pool():
        async with _prefect(live) as client:
            return await client.read_work_pool("aftersales")

    # the engine started directly (not through Prefect's workspace supervisor, a second cold process per
    # run), through the seam each worker routes to its warm process
    assert pool_command(asyncio.run(pool())) == "python -m prefect.engine"
    for worker_pid in worker_pids(live).values():
        warm_process_of(worker_pid)
    deployed = {d.name: d for d in asyncio.run(deployments())}
    assert {"return", "deadline-sweeper", "outbox-retry"} <= set(deployed)
    assert {d.work_pool_name for d in deployed.values()} == {"aftersales"}
    assert deployed["deadline-sweeper"].schedules[0].schedule.cron == "* * * * *"  # the home's settings


def test_a_return_waits_on_one_worker_and_finishes_on_the_other(live):
    """The case suspends at seller review on one worker; that worker then stops answering (SIGSTOP,
    as a machine taken away), and the approval resumes the case on the other worker, which runs
    it to the refund: nothing of the case lived in the first worker."""
    case_id, order_id = "return-O20261120-002", "O20261120-002"
    waiting_at(live, case_id, "seller-review")
    first = worker_of(live, case_id)
    pids = worker_pids(live)
    assert first in pids, (first, pids)
    (other,) = set(pids) - {first}
    first_engine = flow_run(live, case_id).infrastructure_pid

    os.killpg(pids[first], signal.SIGSTOP)
    try:
        ok(live.cli("waits", "resume", case_id, "--staff", "S002", "--code", code_for("S002")))
        waiting_at(live, case_id, "buyer-shipment")
        assert worker_of(live, case_id) == other
        assert flow_run(live, case_id).infrastructure_pid != first_engine
        ok(live.cli("waits", "resume", case_id, "--set", "carrier=yuantong", "--set", "tracking_number=YT7770002222"))
        waiting_at(live, case_id, "receipt")
        ok(live.cli("waits", "resume", case_id, "--staff", "S007", "--code", code_for("S007")))
        waiting_at(live, case_id, "inspection")
        ok(live.cli("waits", "resume", case_id, "--staff", "S004", "--code", code_for("S004"), "--set", "result=pass"))
        assert closed(live, case_id).outcome == "refunded"
        wait_until(lambda: flow_run(live, case_id).state.is_completed(), 60, "the run to complete")
        assert worker_of(live, case_id) == other
    finally:
        os.killpg(pids[first], signal.SIGCONT)
    # one refund at the platform, the one our ledger holds (¥128.00 less the buyer's half of the free outbound postage)
    (line,) = rows(live, "SELECT amount FROM ledger_line WHERE case_id = :case AND kind = 'refund'", case=case_id)
    assert_paid_once(live, case_id, order_id, str(line.amount))
    assert Decimal(line.amount) == Decimal("122.00")
    assert alive(pids[first]) and worker_pids(live)[first] == pids[first]


def test_the_scheduled_sweeper_answers_an_expired_wait_on_a_worker(live):
    """The compensation approval's deadline is 0 h here: the sweeper, created by the server's
    scheduler and run by a worker, applies the rulebook's default with the system as actor."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName, FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    answered_by_the_sweeper(live, "compensation-O20261120-002")

    async def sweeps():
        async with _prefect(live) as client:
            return await client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["deadline-sweeper"])),
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.COMPLETED]))))

    runs = wait_until(lambda: [r for r in asyncio.run(sweeps()) if r.auto_scheduled], 120, "a scheduled sweep to complete", interval=2)
    assert {r.labels.get("prefect.worker.name") for r in runs} <= set(worker_pids(live))


def test_kill_9_of_the_worker_paying_a_refund(live):
    """The worker running the case and its flow-run process are killed with -9 (the machine lost)
    while the platform is paying the refund: nobody is left to mark the run Crashed. It stops
    sending heartbeats, a scheduled sweep re-queues it (`Recovering`), a worker runs it again
    from the top, and the refund is paid once and recorded once. No other case was touched: every
    case still waiting for someone is suspended where it was (an earlier recovery, Prefect's
    "zombie flows" automation, resumed such cases without their answer)."""
    case_id, order_id = "return-O20261120-001", "O20261120-001"
    drive_to_inspection(live, case_id, "S001", "YT7770001111")
    # the other cases waiting for someone (not those the sweeper may answer meanwhile)
    later = datetime.now(timezone.utc) + timedelta(days=1)
    waiting = {case: key for case, key in rows(live, "SELECT case_id, key FROM wait WHERE status = 'open' AND (deadline IS NULL OR deadline > :later)",
                                               later=later) if case != case_id}
    assert waiting

    # the platform commits the refund, then answers slowly: the worker dies with the refund paid but not recorded
    live.faults(answer_delay_ms=8000)
    ok(live.cli("waits", "resume", case_id, "--staff", "S004", "--code", code_for("S004"), "--set", "result=pass"))
    wait_until(lambda: live.sandbox("GET", "/api/refunds", params={"order_id": order_id}), 60, "the refund to reach the platform")
    run = flow_run(live, case_id)
    assert run.state.is_running(), run.state
    worker = run.labels["prefect.worker.name"]
    worker_pid, launcher_pid = worker_pids(live)[worker], int(run.infrastructure_pid)
    # the run is a fork of the worker's warm process; what the worker started is its launcher
    assert "flow_run_launcher.py" in " ".join(cmd for pid, cmd in children_of(worker_pid) if pid == launcher_pid)
    engines = [pid for pid, _cmd in children_of(warm_process_of(worker_pid))]
    assert engines
    killed = time.monotonic()
    os.kill(worker_pid, signal.SIGKILL)
    os.kill(launcher_pid, signal.SIGKILL)
    live.faults()
    # the machine's flow-run processes die with it: the forked engine paying the refund too
    wait_until(lambda: not any(alive(pid) for pid in engines), 30, "the worker's forked engines to die with it")

    wait_until(lambda: worker_pids(live)[worker] != worker_pid and alive(worker_pids(live)[worker]), 60,
               "the supervisor to start the worker again")
    assert closed(live, case_id, timeout=300).outcome == "refunded"
    print(f"killed worker: the case closed {time.monotonic() - killed:.0f} s later")
    assert "Recovering" in state_names(live, case_id)
    assert_paid_once(live, case_id, order_id, "18.00")
    still = {case: key for case, key in rows(live, "SELECT case_id, key FROM wait WHERE status = 'open'") if case in waiting}
    assert still == waiting
    for case, key in waiting.items():
        run = flow_run(live, case)
        assert run.state.is_paused() and run.state.state_details.pause_key == key, (case, run.state)
        assert "Recovering" not in state_names(live, case), case


def test_worker_mode_creates_a_missing_database_and_names_the_one_it_cannot():
    """`make run-workers` does its own set-up: a PostgreSQL database named in the settings that
    does not exist yet is created (once); one it may not create stops it with the database named."""
    import sqlalchemy as sa

    from aftersales.deployments.workers import create_database
    from tests.support.stack import POSTGRES_ADMIN_URL

    name = f"aftersales_new_{uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        assert create_database(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}") is True
        assert create_database(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}") is False
        with admin.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM pg_database WHERE datname = :name"), {"name": name}).scalar() == 1
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    with pytest.raises(SystemExit, match=r"could not create the PostgreSQL database 'elsewhere' on 127\.0\.0\.1:5432 .*no_such_role"):
        create_database("postgresql+psycopg://no_such_role@127.0.0.1:5432/elsewhere")
