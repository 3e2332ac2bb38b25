"""Benchmark: N return cases at once on the real stack, against a bare Prefect floor in the same run.

    .venv/bin/python bench/cases_bench.py --cases 100
    .venv/bin/python bench/cases_bench.py --cases 100 1000 --db sqlite postgres
    .venv/bin/python bench/cases_bench.py --mode workers --cases 100 --db postgres

For each mode, size and database, a stack of its own and, in that one run, the same phases:

``--mode serve`` (the default): a real ``prefect server start``, our ``serve`` with its warm
flow-run process, the sandbox platform over loopback (tests/support/stack.py, as
bench/resume_bench.py). ``--mode workers`` (PostgreSQL only): the real `aftersales dev --workers 2`
(`make run-workers`) in a home of its own, started as tests/test_workers.py starts it
(tests/support/live.py): Prefect server and case database on PostgreSQL, every deployment in the
`process` work pool `aftersales`, two `aftersales worker` processes (Prefect's process worker),
each flow run a fork of its worker's warm process (the engine started directly, no workspace
supervisor: aftersales/deployments/workers.py); at most ``--worker-limit`` (8, serve's run limit) case runs Pending or Running at
once (the case queue's limit that `make run-workers` sets, ``AFTERSALES_FLOW_RUNS_AT_ONCE``; the floor's
pool gets the same limit); every schedule once a year, so that only the bench's sweep
runs; the workers poll every 0.2 s as serve does here; the ~19 demo cases it opens at start are
not counted, and their waits are kept out of the sweep (deadlines a year on).

1. open — N sandbox orders made in bulk (``/sandbox/orders/bulk``), N returns opened at once through
   our intake (``aftersales.intake.returns.open_return``, 32 at a time, in this process, against
   the stack's case database and Prefect API) → until every case waits at seller review (its
   ``Wait`` row open at ``seller-review`` and its run Suspended at that key): cases/s to the first wait;
2. sweep — the real ``deadline-sweeper`` flow, in a process of its own, ``as_of`` six days on (the
   5-day seller review has expired, the 7-day buyer shipment has not), claiming 500 waits a batch as scheduled: the platform's
   default (agree) applied to every wait → until every case waits at buyer-shipment: resumes/s;
3. floor — our serving stopped (serve; or our two workers, SIGSTOPped since the supervisor would
   restart them), a bare Prefect flow (bench/cases_floor.py) with as many (cached, persisted)
   tasks before its first wait and between its two waits as our return ran (counted on the
   server), the same ``suspend_flow_run(wait_for_input=…, key=…)``, run the way ours are: served by
   Prefect's ``serve`` with the same run limit, poll interval and warm flow-run process; or, in
   worker mode, deployed (file entrypoint, pull step) to a `process` work pool of its own with the
   same limit and run by two bare `prefect worker start` processes with our workers' settings
   (heartbeats, poll interval); N runs started with ``run_deployment`` at once → all suspended;
   then a bare loop of ``client.resume_flow_run(id, run_input=…)`` → all suspended at the second key.

Times are from the first call to the last run's Suspended state (the server's timestamp, so the
polling interval does not count). Peak memory: the Prefect server's process group, the serving
group's — serve (serve, its warm process and every flow-run process) or the two workers with
their flow-run processes (which a worker starts in sessions of their own: a group is its sessions
and every descendant) — summed over the group at 0.5 s samples (RSS, and PSS which shares the
forked processes' common pages fairly), and the sweeper's own peak (VmHWM).
CPU-seconds per case, each phase: the Prefect server, the serving group (its flow runs counted in
the process that waited for them), the caller while it calls (our intake, or the floor's
``run_deployment`` and resume loop; not the bench's polling) and the sweeper's process — the ratio that holds when the machine is shared, where the
wall times do not. In worker mode the sandbox is a process of the stack: its CPU is reported
aside, not in the total (in serve mode it is a thread of this process, in the caller's while it calls).

``--floor-only`` runs phase 3 alone, on a stack started as for phases 1 and 2 (its serving stopped
the same way before the floor starts), with the task counts every return measured (1 before the
first wait, 1 more between the waits): for a size whose two halves do not fit in one sitting (1,000
cases here: about 45 minutes each); ``--skip-floor`` runs phases 1 and 2 alone.

Prints a table and writes bench/results/cases-<db>.json (worker mode: cases-<db>-workers.json;
``--skip-floor``/``--floor-only`` add ``-ours``/``-floor`` to the name, so a run of one half keeps the other's file).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from aftersales.domain.settings import Settings  # no Prefect import: its settings are still to be set

ROOT = Path(__file__).resolve().parents[1]
OPEN_CONCURRENCY = 32
SWEEP_AHEAD_DAYS = 6


# --- memory of process groups (/proc; no psutil here) --------------------------------------------------


def _processes() -> dict[int, tuple[int, int]]:
    """pid → (parent pid, session) of every live process (/proc)."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                found[int(entry)] = (int(fields[1]), int(fields[3]))
            except (OSError, ValueError, IndexError):
                continue
    return found


def group_pids(sessions: tuple[int, ...]) -> list[int]:
    """The processes of a group: every process of these sessions (start_new_session groups) and
    every descendant of theirs, also one in a session of its own (a Prefect process worker starts
    each flow run in a new session; serve's warm forks stay in serve's)."""
    table = _processes()
    members = {pid for pid, (_parent, session) in table.items() if session in sessions}
    children: dict[int, list[int]] = {}
    for pid, (parent, _session) in table.items():
        children.setdefault(parent, []).append(pid)
    todo = list(members)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in members:
                members.add(child)
                todo.append(child)
    return sorted(members)


def _kb(path: str, field: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def group_memory_mb(sessions: tuple[int, ...]) -> tuple[float, float, int]:
    """(RSS, PSS, processes) summed over every process of a group (``group_pids``)."""
    rss = pss = count = 0
    for pid in group_pids(sessions):
        rss += _kb(f"/proc/{pid}/status", "VmRSS:")
        pss += _kb(f"/proc/{pid}/smaps_rollup", "Pss:")
        count += 1
    return rss / 1024, pss / 1024, count


def group_cpu_s(sessions: tuple[int, ...]) -> float:
    """CPU-seconds of a group's processes, each with its reaped children's (a flow run, once
    ended, counts in the warm process, serve or worker that waited for it): take it before and after."""
    total = 0
    for pid in group_pids(sessions):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    """This process's CPU-seconds: the callers' side (our intake, or the floor's run_deployment and resume loop)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU-seconds over one phase: the Prefect server, the serving group, the caller's calls (this
    process while it opens or resumes — not while it polls for the result) and another process.
    ``aside``: groups measured too but left out of the total (worker mode's sandbox process, which
    in serve mode is a thread of this process: there its work during the calls is the caller's)."""

    def __init__(self, server: tuple[int, ...], serving: tuple[int, ...], aside: dict[str, tuple[int, ...]] | None = None) -> None:
        self.groups = {"prefect_server": server, "serving": serving}
        self.aside = aside or {}
        self.start = self._now()
        self.caller = 0.0

    def _now(self) -> dict[str, float]:
        return {name: group_cpu_s(sessions) for name, sessions in {**self.groups, **self.aside}.items()}

    def calling(self, call):
        """Run ``call()`` and count this process's CPU during it as the caller's."""
        before = own_cpu_s()
        try:
            return call()
        finally:
            self.caller += own_cpu_s() - before

    def stop(self, other: float = 0.0) -> dict:
        now = self._now()
        used = {name: round(now[name] - self.start[name], 1) for name in self.groups}
        used["caller"] = round(self.caller, 1)
        used["other"] = round(other, 1)  # the sweeper's own process
        used["total"] = round(sum(used.values()), 1)
        if self.aside:
            used["aside"] = {name: round(now[name] - self.start[name], 1) for name in self.aside}
        return used


class Sampler(threading.Thread):
    """Peak memory of named process groups, sampled every 0.5 s, per phase."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.groups: dict[str, tuple[int, ...]] = {}
        self.phase = "start"
        self.peaks: dict[str, dict[str, dict]] = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            for name, sessions in list(self.groups.items()):
                rss, pss, count = group_memory_mb(sessions)
                if count == 0:
                    continue
                peak = self.peaks.setdefault(self.phase, {}).setdefault(name, {"rss_mb": 0.0, "pss_mb": 0.0, "processes": 0})
                peak["rss_mb"] = round(max(peak["rss_mb"], rss), 1)
                peak["pss_mb"] = round(max(peak["pss_mb"], pss), 1)
                peak["processes"] = max(peak["processes"], count)


# --- the sweeper, in a process of its own -----------------------------------------------------------------


def sweep(as_of: str, limit: int) -> None:
    import resource

    from aftersales.flows.deadline_sweeper import deadline_sweeper

    started = time.time()
    result = asyncio.run(deadline_sweeper(as_of=datetime.fromisoformat(as_of), limit=limit))
    print("RESULT " + json.dumps({"started": started, "seconds": round(time.time() - started, 1), "cpu_s": round(own_cpu_s(), 1),
                                  "resumed": len(result["resumed"]), "pending": len(result["pending"]), "stuck": len(result["stuck"]),
                                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


# --- the stack under test, in either mode --------------------------------------------------------------------

FLOOR_POOL = "bench-floor"
# serve's (and the serve-mode floor's) runs at once, and the case runs' queue's in worker mode: the installation's default
SERVE_RUN_LIMIT = Settings.model_fields["flow_runs_at_once"].default
# Worker mode deploys every schedule (`prefect deploy --all`); set once a year here, so that, as in
# serve mode (whose bench stack serves no schedule), nothing but the bench's own sweep runs
FAR_CRON = "0 3 1 1 *"


@dataclass
class Stage:
    """What the phases use of the stack under test, either mode's."""

    mode: str
    tmp: Path
    env: dict[str, str]  # for the processes the bench starts: the sweeper, the floor
    server: tuple[int, ...]  # the Prefect server's session
    serving: tuple[int, ...]  # the serving group's sessions: serve's, or the two workers'
    sandbox: Callable  # (method, path, **kwargs): the sandbox platform's API
    prefect: Callable  # the bench's one synchronous Prefect client
    logs: dict[str, list[Path]]  # the serving group's and the server's, counted for errors
    stop_serving: Callable  # before the floor
    start_floor: Callable  # (stage) → (the floor's sessions, its logs, a function that stops it)
    stops: list  # the teardown, in order
    run_limit: int | None = SERVE_RUN_LIMIT
    aside: dict = field(default_factory=dict)  # groups measured but left out of the CPU total
    notes: dict = field(default_factory=dict)  # for the result

    @property
    def group(self) -> str:
        """The serving group's name in the memory peaks: ``serve`` or ``workers``."""
        return "serve" if self.mode == "serve" else "workers"


def teardown(stops: list) -> None:
    for stop in stops:
        try:
            stop()
        except Exception as exc:
            print(f"teardown: {exc}", file=sys.stderr)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _signal(pids, sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def stop_group(sessions: tuple[int, ...], processes: list[subprocess.Popen]) -> None:
    """SIGTERM to every process of a group the bench started (``processes``, the sessions'
    leaders), its flow runs included; SIGKILL to what is left after 15 s."""
    _signal(group_pids(sessions), signal.SIGTERM)
    deadline = time.monotonic() + 15
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    while time.monotonic() < deadline and any(_alive(pid) for pid in group_pids(sessions)):
        time.sleep(0.5)
    _signal(group_pids(sessions), signal.SIGKILL)
    for process in processes:
        process.wait(10)


def serve_stage(tmp: Path, db: str, worker_limit: int) -> Stage:
    """Serve mode: a real ``prefect server start``, our ``serve`` with its warm flow-run process,
    the sandbox in a thread of this process (tests/support/stack.py ``build_stack``)."""
    from tests.support.stack import build_stack

    stack, stops = build_stack(tmp, db)
    try:
        server = next(int(pid) for pid in subprocess.run(["pgrep", "-P", str(os.getpid()), "-f", "prefect server start"],
                                                          capture_output=True, text=True).stdout.split())
    except BaseException:
        teardown(stops)
        raise
    return Stage("serve", tmp, stack.env, (server,), (stack.serve_process.pid,), stack.sandbox, stack.prefect,
                 {"serve": [stack.serve_log], "prefect_server": [tmp / "prefect-server.log"]}, stack.stop_serving, serve_floor, stops)


def serve_floor(stage: Stage) -> tuple[tuple[int, ...], list[Path], Callable]:
    """Serve mode's floor: bench/cases_floor.py served by Prefect's ``serve`` with our serve's run
    limit, poll interval and warm flow-run process, and the Prefect settings our serve gets from
    apply_prefect_defaults."""
    from aftersales.domain.settings import prefect_client_tls
    from tests.support.stack import wait_until

    log = stage.tmp / "serve-floor.log"
    floor_env = {**stage.env, **prefect_client_tls(stage.env["PREFECT_API_URL"])}
    process = subprocess.Popen([sys.executable, "bench/cases_floor.py"], cwd=ROOT, env=floor_env,
                               stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)

    def stop() -> None:
        stop_group((process.pid,), [process])

    try:
        wait_until(lambda: "Your deployments are being served" in log.read_text(errors="replace"), 120, "the floor's serve")
    except BaseException:
        stop()
        raise
    time.sleep(5)  # its warm process up, as for ours
    return (process.pid,), [log], stop


def limit_pool(client, pool: str, limit: int | None) -> None:
    """At most ``limit`` runs of the floor's work pool Pending or Running at once (a Suspended run
    holds no slot), as serve runs at most 8 and ours in worker mode (the case queue's limit):
    without it the two bare workers start every scheduled run at once, each a cold process of ~200 MB."""
    from prefect.client.schemas.actions import WorkPoolUpdate

    if limit:
        client.update_work_pool(pool, WorkPoolUpdate(concurrency_limit=limit))


def workers_stage(tmp: Path, db: str, worker_limit: int) -> Stage:
    """Worker mode: the real `aftersales dev --workers 2` (`make run-workers`) in a home of its own,
    started as tests/test_workers.py starts it (tests/support/live.py): the Prefect server and the
    case database on PostgreSQL, the `aftersales` process work pool with every deployment, two
    `aftersales worker` processes sharing the home's result storage; its ~19 demo cases opened."""
    if db != "postgres":
        raise SystemExit("worker mode runs on PostgreSQL only (`aftersales dev --workers` refuses SQLite): use --db postgres")
    from dotenv import dotenv_values

    from tests.support.live import children_of, start_live_stack, stop_live_stack
    from tests.support.stack import _clear_caches, case_database_url, prefect_database

    home = tmp / "home"
    stops: list = []
    try:
        case_url, drop_cases = case_database_url("postgres", tmp)
        stops.insert(0, drop_cases)
        prefect_url, drop_prefect = prefect_database("postgres")
        stops.insert(0, drop_prefect)
        started = time.monotonic()
        try:
            live = start_live_stack(home, case_url, ("dev", "--workers", "2"), AFTERSALES_PREFECT_DATABASE_URL=prefect_url,
                                    # serve's poll in the serve-mode bench (build_stack): our workers' too (workers.worker_env)
                                    AFTERSALES_RUNNER_POLL_SECONDS="0.2",
                                    # the case queue's limit (`--worker-limit`; 0: as good as none, the setting's maximum)
                                    AFTERSALES_FLOW_RUNS_AT_ONCE=str(worker_limit or 1000),
                                    **{f"AFTERSALES_{name.upper()}": FAR_CRON for name in Settings.model_fields if name.endswith("_cron")})
        except BaseException:  # not ready in time, or it exited: nothing of it may outlive the bench
            for pid, command in children_of(os.getpid()):
                if "aftersales dev" in command:
                    _signal([pid], signal.SIGTERM)
                    deadline = time.monotonic() + 30
                    while time.monotonic() < deadline and os.waitpid(pid, os.WNOHANG) == (0, 0):
                        time.sleep(0.5)
            for pid_file in (home / "var" / "run").glob("*.pid"):
                _signal(group_pids((int(pid_file.read_text()),)), signal.SIGKILL)
            raise
        startup_s = round(time.monotonic() - started, 1)
        workers = tuple(sorted(int(path.read_text()) for path in (live.var / "run").glob("*-worker-*.pid")))
        components = tuple(int(path.read_text()) for path in (live.var / "run").glob("*.pid"))

        def stop_live() -> None:
            left = group_pids(components)  # before: a flow run's own session hangs off its worker only while the worker lives
            _signal(left, signal.SIGCONT)  # the workers stopped for the floor
            stop_live_stack(live)
            _signal([pid for pid in left if _alive(pid)], signal.SIGKILL)

        stops.insert(0, stop_live)
        # this process talks to that stack as its components do: its case database, its Prefect API and
        # credentials, its result storage (set before Prefect is imported: Prefect reads them once)
        if "prefect" in sys.modules:
            raise RuntimeError("Prefect was imported before the worker stack's settings were set")
        env = {**os.environ, **{name: value for name, value in dotenv_values(home / ".env").items() if value is not None},
               "AFTERSALES_HOME": str(home), "PREFECT_API_URL": live.prefect_api, "PREFECT_API_AUTH_STRING": live.prefect_auth,
               "PREFECT_LOCAL_STORAGE_PATH": str(live.var / "results"), "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "INFO"}
        os.environ.update(env)
        _clear_caches()
        import sqlalchemy as sa
        from prefect.client.orchestration import get_client

        from aftersales.domain.models import Wait, WaitStatus
        from aftersales.integrations.db import session_scope

        client = get_client(sync_client=True)
        client.__enter__()
        stops.insert(0, lambda: client.__exit__(None, None, None))
        # the demo cases' waits are kept out of the bench's sweep (their deadlines a year on): it
        # resumes the bench's N cases only, as in serve mode
        with session_scope() as session:
            kept_out = session.execute(sa.update(Wait).where(Wait.status == WaitStatus.OPEN)
                                       .values(deadline=datetime.now(timezone.utc) + timedelta(days=365))).rowcount
    except BaseException:
        teardown(stops)
        raise

    def stop_serving() -> None:
        """Our two workers stopped for the floor, as serve is in serve mode: SIGSTOP (no CPU, no
        polling), since `aftersales dev`'s supervisor would start a killed one again."""
        _signal(group_pids(workers), signal.SIGSTOP)

    logs = {"workers": sorted((live.var / "logs").glob("*-worker-*.log")), "prefect_server": [live.var / "logs" / "prefect-server.log"]}
    return Stage("workers", tmp, env, (live.pid("prefect-server"),), workers, live.sandbox, lambda: client, logs, stop_serving,
                 workers_floor, stops, run_limit=worker_limit or None, aside={"sandbox": (live.pid("sandbox"),)},
                 notes={"stack_start_s": startup_s, "demo_waits_kept_out": kept_out, "home": str(home)})


def workers_floor(stage: Stage) -> tuple[tuple[int, ...], list[Path], Callable]:
    """Worker mode's floor: bench/cases_floor.py deployed as ours are (`prefect deploy` with a file
    entrypoint and a set_working_directory pull step) to a `process` work pool of its own with our
    pool's run limit, Prefect's default job template, and two bare `prefect worker start` processes
    with the settings ours get (``workers.worker_env``: heartbeats, poll interval; the plain-http CA
    file): each run started Prefect's way, a cold workspace supervisor that execs a cold engine."""
    import yaml

    from aftersales.deployments import workers
    from aftersales.domain.settings import prefect_client_tls
    from tests.support.stack import wait_until

    env = workers.worker_env({**stage.env, **prefect_client_tls(stage.env["PREFECT_API_URL"])})
    prefect_file = stage.tmp / "floor-prefect.yaml"
    prefect_file.write_text(yaml.safe_dump({
        "name": "bench-floor", "prefect-version": "3.8.8",
        "pull": [{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}],
        "deployments": [{"name": "floor", "entrypoint": "bench/cases_floor.py:floor_case", "parameters": {},
                         "work_pool": {"name": FLOOR_POOL, "work_queue_name": "default"}}]}, sort_keys=False), encoding="utf-8")
    workers.prefect_commands(env, ["work-pool", "create", FLOOR_POOL, "--type", "process", "--overwrite"],
                             ["deploy", "--all", "--prefect-file", str(prefect_file)])
    limit_pool(stage.prefect(), FLOOR_POOL, stage.run_limit)
    processes, logs = [], []
    for name in ("floor-worker-1", "floor-worker-2"):
        logs.append(stage.tmp / f"{name}.log")
        bare_worker = ["-m", "prefect", "worker", "start", "--pool", FLOOR_POOL, "--type", "process", "--name", name]
        processes.append(subprocess.Popen([sys.executable, *bare_worker],
                                          cwd=ROOT, env=env, stdout=logs[-1].open("wb"), stderr=subprocess.STDOUT, start_new_session=True))
    sessions = tuple(process.pid for process in processes)

    def stop() -> None:
        stop_group(sessions, processes)

    def registered() -> bool:
        if any(process.poll() is not None for process in processes):
            raise RuntimeError(f"a floor worker exited:\n{''.join(log.read_text(errors='replace')[-1500:] for log in logs)}")
        return {"floor-worker-1", "floor-worker-2"} <= {worker.name for worker in stage.prefect().read_workers_for_work_pool(FLOOR_POOL)}

    try:
        wait_until(registered, 120, "the floor's two workers", interval=0.5)
    except BaseException:
        stop()
        raise
    return sessions, logs, stop


# --- one stack, one size ------------------------------------------------------------------------------------


# what our return runs as cached tasks, counted on the server in every measured run (tasks_per_case:
# 1.0 to the first wait, 2.0 from the resume to the next): the floor's shape when it runs alone
RETURN_TASKS = {"before": 1, "between": 1}


def one_run(cases: int, db: str, skip_floor: bool, mode: str = "serve", worker_limit: int = SERVE_RUN_LIMIT,
            floor_only: bool = False) -> dict:
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="bench-prefect-"))
    sys.path.insert(0, str(ROOT))
    from tests.support.stack import wait_until

    tmp = Path(tempfile.mkdtemp(prefix="bench-cases-"))
    stage = (workers_stage if mode == "workers" else serve_stage)(tmp, db, worker_limit)
    sampler = Sampler()
    result: dict = {"cases": cases, "db": db, "mode": mode, "tmp": str(tmp), "run_limit": stage.run_limit, **stage.notes}
    try:
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName, FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
        from prefect.client.schemas.objects import StateType
        from sqlmodel import select

        from aftersales.domain.models import Wait, WaitStatus
        from aftersales.integrations.db import session_scope
        from aftersales.intake.returns import open_return

        sampler.groups.update({"prefect_server": stage.server, stage.group: stage.serving})
        sampler.start()
        client = stage.prefect()

        def paused(deployment: str) -> dict:
            """run id → (pause key, when it suspended) of every run of ``deployment`` now Paused."""
            found, offset = {}, 0
            while True:
                runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))),
                                             deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment])), limit=200, offset=offset)
                found.update({str(run.id): (run.state.state_details.pause_key, run.state.timestamp.timestamp()) for run in runs})
                if len(runs) < 200:
                    return found
                offset += len(runs)

        def our_cases_waiting(step: str, case_ids: set) -> float | None:
            """When the last case got to ``step`` (its run's Suspended timestamp), once all N are there."""
            with session_scope() as session:
                waits = session.exec(select(Wait.case_id, Wait.key, Wait.flow_run_id).where(Wait.step == step, Wait.status == WaitStatus.OPEN)).all()
            waits = [w for w in waits if w[0] in case_ids]
            if len(waits) < len(case_ids):
                return None
            runs = paused("return")
            at = [runs[run_id][1] for _case, key, run_id in waits if runs.get(run_id, (None,))[0] == key]
            return max(at) if len(at) == len(case_ids) else None

        def progress(step: str, case_ids: set) -> str:
            with session_scope() as session:
                waits = session.exec(select(Wait.case_id).where(Wait.step == step, Wait.status == WaitStatus.OPEN)).all()
            runs = paused("return")
            return f"{len([w for w in waits if w in case_ids])} of {len(case_ids)} waits recorded, {sum(1 for k, _ in runs.values() if k and k.startswith(step))} runs suspended there"

        def task_runs(run_ids: list[str]) -> int:
            total = 0
            for start in range(0, len(run_ids), 200):
                answer = client._client.post("/task_runs/count", json={"flow_runs": {"id": {"any_": list(run_ids[start:start + 200])}}})
                answer.raise_for_status()
                total += answer.json()
            return total

        timeout = 300 + 6 * cases
        if floor_only:
            stage.stop_serving()
            time.sleep(5)  # as between phases 2 and 3: the stopped serving group's last writes land
            result.update(floor(stage, sampler, cases, RETURN_TASKS["before"], RETURN_TASKS["between"], paused, timeout, wait_until, task_runs))
            sampler.stopped.set()
            result["peak_memory"] = sampler.peaks
            return result
        # 1. open N returns at once -------------------------------------------------------------
        stage.sandbox("POST", "/sandbox/orders/bulk", json={"count": cases, "prefix": "R", "problem_share": 0})
        order_ids = [f"R{i:07d}" for i in range(cases)]
        time.sleep(5)  # serve's warm process up (resume_bench waits for it the same way, by its socket)
        sampler.phase = "open"
        opened_errors: list[str] = []

        async def open_all() -> list[str]:
            limit = asyncio.Semaphore(OPEN_CONCURRENCY)

            async def one(order_id: str) -> str | None:
                async with limit:
                    try:
                        return (await open_return(order_id, "20.00", reason="bench")).case_id
                    except Exception as error:  # reported, not hidden: a size that breaks the intake
                        opened_errors.append(f"{order_id}: {type(error).__name__} {error}"[:300])
                        return None

            return [c for c in await asyncio.gather(*(one(o) for o in order_ids)) if c]

        cpu = CpuMeter(stage.server, stage.serving, stage.aside)
        began = time.time()
        case_ids = set(cpu.calling(lambda: asyncio.run(open_all())))
        result["open_calls_s"] = round(time.time() - began, 1)
        result["open_errors"] = opened_errors[:10]
        result["opened"] = len(case_ids)
        last = wait_until(lambda: our_cases_waiting("seller-review", case_ids), timeout, "every case at seller-review", interval=2,
                          explain=lambda: progress("seller-review", case_ids))
        result["ours_open_s"] = round(last - began, 1)
        result["ours_open_cpu_s"] = cpu.stop()
        print(f"open: {result}", file=sys.stderr, flush=True)
        with session_scope() as session:
            run_ids = [run_id for case_id, run_id in session.exec(select(Wait.case_id, Wait.flow_run_id).where(Wait.step == "seller-review")).all()
                       if case_id in case_ids]
        tasks_before = task_runs(run_ids)

        # 2. the sweeper applies the default to the N expired waits --------------------------------
        # (what one sweep leaves — a run not yet suspended, a resume the server refused — the next
        # scheduled sweep takes: here the sweeper runs again once nothing moved for a minute, at most 4 sweeps)
        sampler.phase = "sweep"
        as_of = (datetime.now(timezone.utc) + timedelta(days=SWEEP_AHEAD_DAYS)).isoformat()
        sweeps: list[dict] = []
        last = None
        cpu = CpuMeter(stage.server, stage.serving, stage.aside)
        while last is None and len(sweeps) < 4:
            sweep_log = tmp / f"sweeper-{len(sweeps) + 1}.log"
            done = subprocess.run([sys.executable, __file__, "--child", "sweep", "--as-of", as_of, "--limit", "500"],
                                  env=stage.env, cwd=ROOT, capture_output=True, text=True)
            sweep_log.write_text(done.stdout + done.stderr)
            if done.returncode != 0:
                raise RuntimeError(f"the sweeper failed, see {sweep_log}:\n{done.stderr[-3000:]}")
            sweeps.append(json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:]))
            print(f"sweep {len(sweeps)}: {sweeps[-1]}; {progress('buyer-shipment', case_ids)}", file=sys.stderr, flush=True)
            seen, still = None, time.monotonic()
            while time.monotonic() - still < 60:
                last = our_cases_waiting("buyer-shipment", case_ids)
                if last is not None:
                    break
                now_at = progress("buyer-shipment", case_ids)
                if now_at != seen:
                    seen, still = now_at, time.monotonic()
                time.sleep(2)
        result["sweeper"] = {**sweeps[0], "sweeps": sweeps}
        if last is None:
            raise RuntimeError(f"after {len(sweeps)} sweeps: {progress('buyer-shipment', case_ids)}")
        result["ours_resume_s"] = round(last - sweeps[0]["started"], 1)
        result["ours_resume_cpu_s"] = cpu.stop(other=sum(sweep.get("cpu_s", 0.0) for sweep in sweeps))
        print(f"sweep: {result}", file=sys.stderr, flush=True)
        tasks_total = task_runs(run_ids)
        # a resumed run goes through the tasks before its wait again (cache hits, each a task run)
        result["tasks_per_case"] = {"to_first_wait": round(tasks_before / len(case_ids), 1),
                                    "resume_to_next_wait": round((tasks_total - tasks_before) / len(case_ids), 1)}
        result["logs"] = {name: {word: sum(path.read_text(errors="replace").count(word) for path in paths)
                                 for word in ("database is locked", "Traceback", "Crashed", "TimeoutError")}
                          for name, paths in stage.logs.items()}
        stage.stop_serving()

        # 3. the floor --------------------------------------------------------------------------------
        if not skip_floor:
            before = round(tasks_before / len(case_ids))
            between = max(0, round((tasks_total - tasks_before) / len(case_ids)) - before)
            result.update(floor(stage, sampler, cases, before, between, paused, timeout, wait_until, task_runs))
        sampler.stopped.set()
        result["peak_memory"] = sampler.peaks
        return result
    finally:
        sampler.stopped.set()
        teardown(stage.stops)


def floor(stage: Stage, sampler: Sampler, cases: int, before: int, between: int, paused, timeout: float, wait_until, task_runs) -> dict:
    from prefect.deployments import run_deployment
    from prefect import get_client

    sessions, logs, stop = stage.start_floor(stage)

    def log_text() -> str:
        return "".join(path.read_text(errors="replace") for path in logs)

    try:
        sampler.groups.pop(stage.group, None)
        sampler.groups[f"{stage.group}_floor"] = sessions
        sampler.phase = "floor_open"

        async def start_all() -> list[str]:
            limit = asyncio.Semaphore(OPEN_CONCURRENCY)

            async def one(i: int) -> str | None:
                async with limit:
                    try:
                        run = await run_deployment("floor-case/floor", parameters={"case": f"F{i:07d}", "before": before, "between": between},
                                                   flow_run_name=f"floor-F{i:07d}", idempotency_key=f"floor-F{i:07d}", timeout=0, as_subflow=False)
                    except Exception as error:  # as for ours: counted, not hidden
                        floor_errors.append(f"F{i:07d}: {type(error).__name__} {error}"[:300])
                        return None
                    return str(run.id)

            return [run_id for run_id in await asyncio.gather(*(one(i) for i in range(cases))) if run_id]

        def all_at(key: str, ids: set) -> float | None:
            if "Traceback" in log_text():
                raise RuntimeError(f"the floor's serving group logged an error:\n{log_text()[-3000:]}")
            runs = paused("floor")
            at = [when for run_id, (pause_key, when) in runs.items() if run_id in ids and pause_key == key]
            return max(at) if len(at) == len(ids) else None

        floor_errors: list[str] = []
        cpu = CpuMeter(stage.server, sessions, stage.aside)
        began = time.time()
        ids = set(cpu.calling(lambda: asyncio.run(start_all())))
        floor_open = wait_until(lambda: all_at("seller-review", ids), timeout, "every floor run at its first suspend", interval=2,
                                explain=lambda: f"{len(paused('floor'))} suspended; its log: {log_text()[-1500:]}") - began
        floor_open_cpu = cpu.stop()

        sampler.phase = "floor_resume"

        async def resume_all() -> list[str]:
            """Resumes the server did not accept (seen: a run Suspended whose form Prefect failed to
            save under a locked SQLite database takes no input): reported, not waited for."""
            refused = []
            async with get_client() as client:
                for run_id in ids:
                    answer = await client.resume_flow_run(run_id, run_input={"decision": "agree", "staff_id": "system"})
                    if answer.status.value != "ACCEPT":
                        refused.append(f"{run_id}: {answer.status.value} {getattr(answer.details, 'reason', '')}"[:200])
            return refused

        cpu = CpuMeter(stage.server, sessions, stage.aside)
        began = time.time()
        refused = cpu.calling(lambda: asyncio.run(resume_all()))
        moving = ids - {line.split(":")[0] for line in refused}
        floor_resume = wait_until(lambda: all_at("buyer-shipment", moving), timeout, "every floor run at its second suspend", interval=2) - began
        floor_resume_cpu = cpu.stop()
        total = task_runs(sorted(ids))
        return {"floor_open_s": round(floor_open, 1), "floor_resume_s": round(floor_resume, 1), "floor_started": len(ids), "floor_errors": floor_errors[:10],
                "floor_open_cpu_s": floor_open_cpu, "floor_resume_cpu_s": floor_resume_cpu,
                "floor_resumed": len(moving), "floor_resume_refused": refused[:10],
                "floor_tasks_per_case": {"to_first_wait": before, "between_waits": between, "counted_on_server": round(total / len(ids), 1)},
                "floor_log": {word: log_text().count(word) for word in ("database is locked", "Traceback", "Crashed")}}
    finally:
        stop()


# --- the table -----------------------------------------------------------------------------------------------


def table(results: list[dict]) -> str:
    lines = ["| cases | mode | db | ours: open → all at seller review | floor: start → all suspended | ratio | ours: sweep → all at buyer shipment | floor: resume loop → all suspended | ratio | CPU-s per case, ours / floor: open · resume | peak (PSS / RSS MB): server · serving group (floor's) · sweeper | load avg |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "ours_open_s" not in r:  # --floor-only
            r = {**r, "opened": r["floor_started"], "ours_open_s": float("nan"), "ours_resume_s": float("nan"),
                 "sweeper": {"peak_rss_mb": float("nan"), "sweeps": []}}
        n = r["opened"]
        m = r.get("floor_started", n)  # per case: each side over the runs it started
        ratio_open = (r["ours_open_s"] / n) / (r["floor_open_s"] / m) if r.get("floor_open_s") else float("nan")
        k = r.get("floor_resumed", m)
        ratio_resume = (r["ours_resume_s"] / n) / (r["floor_resume_s"] / k) if r.get("floor_resume_s") else float("nan")
        peaks = r["peak_memory"]
        mode = r.get("mode", "serve")
        group = "serve" if mode == "serve" else "workers"

        def peak(group: str) -> str:
            values = [p[group] for p in peaks.values() if group in p]
            if not values:
                return "—"
            return f"{max(v['pss_mb'] for v in values):.0f} / {max(v['rss_mb'] for v in values):.0f}"

        def cpu(ours: str, floor: str, runs: int) -> str:
            if ours not in r:
                return f"— / {r[floor]['total'] / runs:.2f}"
            if not r.get(floor):
                return f"{r[ours]['total'] / n:.2f} / —"
            mine, bare = r[ours]["total"] / n, r[floor]["total"] / runs
            return f"{mine:.2f} / {bare:.2f} = {mine / bare:.2f}×"

        cpu_cells = f"{cpu('ours_open_cpu_s', 'floor_open_cpu_s', m)} · {cpu('ours_resume_cpu_s', 'floor_resume_cpu_s', k)}"
        floor_open = f"{r['floor_open_s']} s = {m / r['floor_open_s']:.2f}/s" if r.get("floor_open_s") else "—"
        floor_resume = f"{r['floor_resume_s']} s = {k / r['floor_resume_s']:.2f}/s" if r.get("floor_resume_s") else "—"
        lines.append(f"| {n} | {mode} | {r['db']} | {r['ours_open_s']} s = {n / r['ours_open_s']:.2f} cases/s | {floor_open} | {ratio_open:.2f}× "
                     f"| {r['ours_resume_s']} s = {n / r['ours_resume_s']:.2f} resumes/s | {floor_resume} | {ratio_resume:.2f}× | {cpu_cells} "
                     f"| {peak('prefect_server')} · {peak(group)} ({peak(group + '_floor')}) · {r['sweeper']['peak_rss_mb']:.0f} (RSS) | {r['load']} |"
                     + (f" ({len(r['sweeper']['sweeps'])} sweeps)" if len(r['sweeper']['sweeps']) > 1 else "")
                     + (f" ({r['cases'] - n} opens failed)" if r['cases'] != n else ""))
    return "\n".join(lines)


def results_file(mode: str, db: str, half: str = "") -> str:
    return f"cases-{db}{half}.json" if mode == "serve" else f"cases-{db}-{mode}{half}.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, nargs="+", default=[100])
    parser.add_argument("--db", nargs="+", choices=["sqlite", "postgres"], default=["sqlite"])
    parser.add_argument("--mode", nargs="+", choices=["serve", "workers"], default=["serve"],
                        help="serve: our `serve` with its warm process (`make run`); workers: `aftersales dev --workers 2` "
                             "(`make run-workers`, PostgreSQL only)")
    parser.add_argument("--worker-limit", type=int, default=SERVE_RUN_LIMIT,
                        help="worker mode: runs Pending or Running at once in each work pool, ours and the floor's "
                             f"(default {SERVE_RUN_LIMIT}, serve's run limit; 0: no limit, every scheduled run started at once)")
    parser.add_argument("--skip-floor", action="store_true", help="ours only (phases 1 and 2)")
    parser.add_argument("--floor-only", action="store_true", help="the floor only (phase 3)")
    parser.add_argument("--child", choices=["run", "sweep"], help=argparse.SUPPRESS)
    parser.add_argument("--as-of", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "sweep":
        return sweep(args.as_of, args.limit)
    if args.child == "run":
        print("RESULT " + json.dumps(one_run(args.cases[0], args.db[0], args.skip_floor, args.mode[0], args.worker_limit, args.floor_only)))
        return
    if args.skip_floor and args.floor_only:
        parser.error("--skip-floor and --floor-only leave nothing to run: give one of them")
    if "workers" in args.mode and "sqlite" in args.db:
        parser.error("worker mode runs on PostgreSQL only (`aftersales dev --workers` refuses SQLite): "
                     "run --mode workers with --db postgres (the default database is sqlite)")

    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for mode in args.mode:
        for db in args.db:
            for cases in args.cases:
                load_before = os.getloadavg()
                command = [sys.executable, __file__, "--child", "run", "--cases", str(cases), "--db", db, "--mode", mode,
                           "--worker-limit", str(args.worker_limit)] + (["--skip-floor"] if args.skip_floor else []) \
                          + (["--floor-only"] if args.floor_only else [])
                done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)  # its progress and errors on stderr
                if done.returncode != 0:
                    print(f"{cases} cases on {db} ({mode}) failed (above)", file=sys.stderr)
                    continue
                result = json.loads(next(line for line in reversed(done.stdout.splitlines()) if line.startswith("RESULT "))[7:])
                result["load"] = " → ".join(f"{a[0]:.2f}" for a in (load_before, os.getloadavg()))
                results.append(result)
                print(json.dumps(result), flush=True)
                (out / results_file(mode, db, "-ours" if args.skip_floor else "-floor" if args.floor_only else "")).write_text(json.dumps([r for r in results if r["db"] == db and r["mode"] == mode], indent=2),
                                                          encoding="utf-8")
    print(table(results))


if __name__ == "__main__":
    main()
