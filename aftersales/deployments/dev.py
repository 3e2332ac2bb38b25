"""`make run`: the whole system on this machine, for a newcomer to try.

Starts (or reuses) a Prefect server with its UI on 127.0.0.1:4200, the sandbox platform on :8765,
our intake API on :8766 and the `serve` process with every deployment, then opens a few demo
cases so the UI shows runs waiting for a person. Then it supervises: a component that dies
(`kill -9`, a crash) has its process group stopped — a dead serve's flow-run processes with it — and
is started again while the rest goes on; serve's start re-queues the runs the dead one left.
Ctrl-C stops what it started. Addresses and the home (var/) come from the settings (`.env`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from aftersales.domain.settings import get_settings, prefect_auth_header

RESTART_WINDOW_SECONDS = 600


def _up(url: str, headers: dict | None = None) -> bool:
    try:
        return httpx.get(url, timeout=2, headers=headers).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Component:
    """One process of the stack, kept running by the supervisor."""

    name: str
    args: list[str]
    ready_url: str
    what: str
    headers: dict | None = None
    ready_timeout: float = 120
    # started with these instead of the stack's environment (a worker's: settings exported, heartbeats)
    env: dict | None = None
    # ready when this says so (a worker: registered with its work pool) instead of ready_url answering
    ready: Callable[[], bool] | None = None
    process: subprocess.Popen | None = None
    restarts: deque = field(default_factory=deque)

    def start(self, env: dict[str, str], logs) -> None:
        log = (logs / f"{self.name}.log").open("ab")
        # its own session: the whole group (serve and its flow-run processes) can be stopped at once
        self.process = subprocess.Popen([sys.executable, *self.args], env=self.env or env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        # for operations (and the operations tests): which process is which
        (logs.parent / "run").mkdir(exist_ok=True)
        pid_file = logs.parent / "run" / f"{self.name}.pid"
        partial = pid_file.with_suffix(".pid.partial")  # renamed into place: a reader never sees it half written
        partial.write_text(f"{self.process.pid}\n")
        partial.replace(pid_file)

    def wait_ready(self, logs) -> None:
        started = time.monotonic()
        while not (self.ready() if self.ready else _up(self.ready_url, self.headers)):
            if self.process is not None and self.process.poll() is not None:
                raise SystemExit(f"{self.what} exited with {self.process.returncode}; see {logs / (self.name + '.log')}")
            if time.monotonic() - started > self.ready_timeout:
                raise SystemExit(f"{self.what} did not come up within {self.ready_timeout:.0f} s; see {logs / (self.name + '.log')}")
            time.sleep(0.5)
        print(f"  ✓ {self.what} ({time.monotonic() - started:.0f} s)", flush=True)

    def dead(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        """Signal the component's whole process group: what a dead serve leaves behind (a flow-run
        process still paying a refund) must not go on beside the run's recovery."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass


def last_served() -> str:
    """``flow/deployment`` of the deployment serve registers last (it registers them in this order)."""
    from aftersales.deployments.serve import deployments

    last = deployments()[-1]
    return f"{last.flow_name}/{last.name}"


def _worker_registered(prefect_api: str, name: str) -> bool:
    """The worker has sent its first heartbeat to the work pool: it polls for runs."""
    from aftersales.deployments.commands.deployments import WORK_POOL

    try:
        answer = httpx.post(f"{prefect_api}/work_pools/{WORK_POOL}/workers/filter", json={}, timeout=5, headers=prefect_auth_header())
    except httpx.HTTPError:
        return False
    return answer.status_code == 200 and any(worker.get("name") == name for worker in answer.json())


def main(workers: int = 0) -> int:
    """``workers`` > 0: worker mode (`make run-workers`, see ``aftersales.deployments.workers``) —
    instead of serve, the deployments go to the `aftersales` work pool and this many Prefect
    workers run them; both databases on PostgreSQL."""
    settings = get_settings()
    if workers:
        from aftersales.deployments.workers import require_postgres

        require_postgres()
    env = dict(os.environ)  # with this installation's Prefect settings (aftersales.deployments)
    env["AFTERSALES_HOME"] = str(settings.home)
    logs = settings.var_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    prefect_api = settings.prefect_api_url.rstrip("/")
    prefect = urlsplit(prefect_api)
    platform = urlsplit(settings.platform_url)
    sandbox_key = settings.platform_api_key.get_secret_value()
    api_key = settings.api_key.get_secret_value()

    components = [
        # a fresh Prefect database migrates for about 40 s on a 2-core machine
        Component("prefect-server", ["-m", "prefect", "server", "start", "--host", prefect.hostname, "--port", str(prefect.port)],
                  f"{prefect_api}/health", f"Prefect server + UI on {settings.ui_url}", ready_timeout=300),
        Component("sandbox", ["-m", "sandbox_platform", "--host", platform.hostname, "--port", str(platform.port),
                              "--api-key", sandbox_key],
                  f"{settings.platform_url.rstrip('/')}/api/orders/O20261120-001", f"sandbox platform on {settings.platform_url}",
                  {"X-Api-Key": sandbox_key}, 60),
        Component("api", ["-m", "aftersales.deployments.cli", "api"], f"http://{settings.api_host}:{settings.api_port}/health",
                  f"intake API on http://{settings.api_host}:{settings.api_port} (X-Api-Key)", {"X-Api-Key": api_key}, 60),
    ]
    if not workers:  # serve registers its deployments one after the other: it is ready once the last one exists
        components.append(Component("serve", ["-m", "aftersales.deployments.serve"], f"{prefect_api}/deployments/name/{last_served()}",
                  "flows served (deployments with schedules)", prefect_auth_header()))
    supervised: list[Component] = []

    def stop_all() -> None:
        for component in reversed(supervised):
            if component.process and component.process.poll() is None:
                component.kill_group(signal.SIGTERM)
        deadline = time.monotonic() + 15  # all of them together, not 15 s each
        for component in supervised:
            try:
                component.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            component.kill_group(signal.SIGKILL)  # and whatever the group left behind

    from aftersales.approvals.auth import seed_demo_staff
    from aftersales.integrations.db import migrate, session_scope

    started = time.monotonic()
    print(f"Starting the after-sales system (logs in {logs}/) …", flush=True)
    migrate()
    with session_scope() as session:
        seed_demo_staff(session)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    # Ctrl-C stops the stack, also when started from a background job (which inherits SIGINT ignored)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        for component in components:
            if component.name in ("prefect-server", "sandbox") and _up(component.ready_url, component.headers):
                print(f"  ✓ {component.what} (already running)", flush=True)
                continue  # reuse one that is up already; it is not ours to supervise
            component.start(env, logs)
            supervised.append(component)
            component.wait_ready(logs)
        if workers:
            for component in start_worker_mode(workers, env, prefect_api):
                component.start(env, logs)
                supervised.append(component)
                component.wait_ready(logs)
        asyncio.run(open_demo_cases())
        print(f"  ✓ ready in {time.monotonic() - started:.0f} s", flush=True)
        print(GUIDE.format(ui=settings.ui_url, platform=settings.platform_url.rstrip("/"), sandbox_key=sandbox_key,
                           auth_file=settings.prefect_auth_file, example=example_return()), flush=True)
        while True:
            time.sleep(1)
            for component in supervised:
                if component.dead():
                    restart(component, env, logs, settings.supervisor_max_restarts)
    except KeyboardInterrupt:
        print("\nstopping …", flush=True)
        return 0
    except SystemExit as exc:
        print(exc, flush=True)
        return 1
    finally:
        stop_all()


def start_worker_mode(count: int, env: dict[str, str], prefect_api: str) -> list[Component]:
    """The work pool and its deployments (`prefect deploy --all`), serve's start-up recovery (runs
    a stopped stack left, lost forms), and the workers to start, sharing this home's result storage."""
    from aftersales.deployments import workers
    from aftersales.deployments.serve import check_forms_in_background, deployments, recover_interrupted_runs

    started = time.monotonic()
    prefect_file = workers.deploy(env)
    print(f"  ✓ work pool `aftersales` with every deployment of {prefect_file} ({time.monotonic() - started:.0f} s)", flush=True)
    asyncio.run(workers.remove_old_recovery_automation())
    recovered = asyncio.run(recover_interrupted_runs(deployments()))
    if recovered:
        print(f"  ! re-queued runs interrupted by the last stop: {', '.join(recovered)}", flush=True)
    check_forms_in_background(deployments())
    worker_env = workers.worker_env(env)
    return [Component(name, workers.worker_command(name), "", f"Prefect worker {name} (pool aftersales)", env=worker_env,
                      ready=lambda name=name: _worker_registered(prefect_api, name))
            for name in workers.default_names(count)]


def restart(component: Component, env: dict[str, str], logs, max_restarts: int) -> None:
    """A component died: stop what its process group left behind, then start it again — the rest of
    the stack goes on. Restarting too often in a short while means something is really wrong."""
    code = component.process.returncode
    component.kill_group()
    now = time.monotonic()
    while component.restarts and now - component.restarts[0] > RESTART_WINDOW_SECONDS:
        component.restarts.popleft()
    if len(component.restarts) >= max_restarts:
        raise SystemExit(f"{component.what} stopped {len(component.restarts) + 1} times within "
                         f"{RESTART_WINDOW_SECONDS // 60} minutes (last exit code {code}); see {logs / (component.name + '.log')}")
    component.restarts.append(now)
    print(f"  ! {component.name} stopped (exit code {code}); restarting it", flush=True)
    component.start(env, logs)


async def open_demo_cases(timeout: float = 300) -> None:
    """Every process's demo cases (its registry entry) are opened on the sandbox's seeded orders;
    returns once each case's run waits for its first answer (or has ended), so that "Ready" means
    the README's walkthrough can start."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from aftersales.domain.rules import InvalidRequest
    from aftersales.intake.registry import processes

    opened_runs: dict = {}
    on_taobao = get_settings().platform == "taobao"
    for process in processes():
        if on_taobao and process.name == "return":
            opened_runs.update(await apply_at_taobao(process.demo))
            continue
        for request in process.demo:
            if on_taobao:  # a Taobao shop's order id is the trade's tid
                request = request.model_copy(update=on_tids(request))
            try:
                opened = await process.open(request)
            except InvalidRequest as exc:  # e.g. the seeded order's window has passed since the seed
                print(f"  – a demo {process.name} case was not opened: {exc.message}", flush=True)
                continue
            opened_runs[opened.flow_run_id] = opened.case_id
    print(f"  … {len(opened_runs)} demo cases opened; waiting for each to reach its first wait", flush=True)
    pending = dict(opened_runs)
    started = time.monotonic()
    async with get_client() as client:
        while pending and time.monotonic() - started < timeout:
            runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(pending))))
            for run in runs:
                if run.state and (run.state.is_paused() or run.state.is_final()):
                    state = "waiting" if run.state.is_paused() else run.state.name
                    print(f"  ✓ demo case {pending.pop(str(run.id))} ({state})", flush=True)
            await asyncio.sleep(0.5)
    for case_id in pending.values():
        print(f"  – demo case {case_id} not waiting yet after {timeout:.0f} s; see var/logs/serve.log", flush=True)


def demo_tid(order_id: str) -> int:
    """The sandbox's tid of a seeded order on TOP: its id's digits (O20261120-002 → 20261120002)."""
    return int("".join(char for char in order_id if char.isdigit()))


def on_tids(request) -> dict:
    """A demo request's order ids (``order_id``, ``orders``) as the sandbox's tids."""
    changed: dict = {}
    if getattr(request, "order_id", None):
        changed["order_id"] = str(demo_tid(request.order_id))
    if getattr(request, "orders", None):
        changed["orders"] = [str(demo_tid(order)) for order in request.orders]
    return changed


async def apply_at_taobao(requests) -> dict:
    """``AFTERSALES_PLATFORM=taobao``: the demo returns start where a Taobao shop's do — the buyers
    apply at the sandbox's TOP, and one run of the ``platform-sync`` deployment (served like the
    rest; afterwards on its schedule) opens their cases. Returns {flow run id: case id}."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
    from prefect.deployments import run_deployment
    from sqlmodel import select

    from aftersales.domain.models import Case, Process
    from aftersales.integrations.db import session_scope

    settings = get_settings()
    base = settings.platform_url.rstrip("/")
    headers = {"X-Api-Key": settings.platform_api_key.get_secret_value()}
    async with httpx.AsyncClient(timeout=10, headers=headers) as sandbox:
        for request in requests:
            tid = demo_tid(request.order_id)
            answer = await sandbox.post(f"{base}/sandbox/top/refunds", json={
                "tid": tid, "refund_fee": request.amount, "has_good_return": True, "reason": request.reason or "七天无理由退货"})
            if answer.status_code != 201:  # e.g. the sandbox kept its state from an earlier start
                print(f"  – the demo buyer of {request.order_id} could not apply at TOP: {answer.text[:200]}", flush=True)
    run = await run_deployment("platform-sync/platform-sync", timeout=120, as_subflow=False)
    print(f"  ✓ platform-sync read the demo buyers' refunds from TOP ({run.state.name if run.state else 'unknown'})", flush=True)
    with session_scope() as session:
        case_ids = session.exec(select(Case.id).where(Case.process == Process.RETURN, Case.id.like("return-%-tb%"),
                                                      Case.status != "closed")).all()
    async with get_client() as client:  # each case's run is named after it
        runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=list(case_ids))))
    return {str(run.id): run.name for run in runs}


def example_return() -> str:
    """The demo return a supervisor approves in the guide: order O20261120-002's (128.00); on Taobao
    the case of the refund its buyer applied for at TOP (tid 20261120002)."""
    if get_settings().platform != "taobao":
        return "return-O20261120-002"
    from sqlmodel import select

    from aftersales.domain.models import Case
    from aftersales.integrations.db import session_scope

    with session_scope() as session:
        found = session.exec(select(Case.id).where(Case.id.like("return-20261120002-tb%"))).first()
    return found or "return-20261120002-tb<refund id>"


GUIDE = """
Ready. Open {ui} → Runs: the demo return cases are Suspended, waiting for a person.
The UI asks for a password first: paste the line of {auth_file} (`cat {auth_file}`); the Prefect
API answers nobody without it, and the CLI and every component read it from there by themselves.

Approve one (in another terminal, `source .venv/bin/activate` first):
  aftersales waits list                       # who waits for what, with deadlines
  aftersales staff code S002                  # demo supervisor 李娜's current one-time code
  In the UI: open the run (e.g. {example}) → Resume → staff id S002, the code,
  decision agree → Submit.   Or: aftersales waits resume {example} --staff S002 --code <code>
  aftersales case show {example}   # the audit trail

Messages to staff and buyers land in the sandbox inbox: {platform}/sandbox/messages/staff-supervisor
(header X-Api-Key: {sandbox_key}). Ctrl-C stops everything.
"""


if __name__ == "__main__":
    sys.exit(main())
