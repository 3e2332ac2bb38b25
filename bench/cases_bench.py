"""Benchmark: N return cases at once on the real stack, against a bare Prefect floor in the same run.

    .venv/bin/python bench/cases_bench.py --cases 100
    .venv/bin/python bench/cases_bench.py --cases 100 1000 --db sqlite postgres

For each size and database, a stack of its own (a real ``prefect server start``, our ``serve`` with
its warm flow-run process, the sandbox platform over loopback: tests/support/stack.py, as
bench/resume_bench.py) and, in that one run:

1. open — N sandbox orders made in bulk (``/sandbox/orders/bulk``), N returns opened at once through
   our intake (``aftersales.intake.returns.open_return``, 32 at a time) → until every case waits at
   seller review (its ``Wait`` row open at ``seller-review`` and its run Suspended at that key):
   cases/s to the first wait;
2. sweep — the real ``deadline-sweeper`` flow, in a process of its own, ``as_of`` six days on (the
   5-day seller review has expired, the 7-day buyer shipment has not), claiming 500 waits a batch as scheduled: the platform's
   default (agree) applied to every wait → until every case waits at buyer-shipment: resumes/s;
3. floor — serve stopped, a bare Prefect flow served the same way (Prefect's ``serve``, the same
   run limit, poll interval and warm flow-run process) with as many (cached, persisted) tasks
   before its first wait and between its two waits as our return ran (counted on the server), the
   same ``suspend_flow_run(wait_for_input=…, key=…)``; N runs started with ``run_deployment`` at
   once → all suspended; then a bare loop of ``client.resume_flow_run(id, run_input=…)`` → all
   suspended at the second key.

Times are from the first call to the last run's Suspended state (the server's timestamp, so the
polling interval does not count). Peak memory: the Prefect server's process group, serve's (serve,
its warm process and every flow-run process), summed over the group at 0.5 s samples (RSS, and PSS
which shares the forked processes' common pages fairly), and the sweeper's own peak (VmHWM).
CPU-seconds per case, each phase: the Prefect server, the serving group (its flow runs counted in
the process that waited for them), the caller while it calls (our intake, or the floor's
``run_deployment`` and resume loop; not the bench's polling) and the sweeper's process — the ratio that holds when the machine is shared, where the
wall times do not.

Prints a table and writes bench/results/cases-<db>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPEN_CONCURRENCY = 32
SWEEP_AHEAD_DAYS = 6


# --- memory of process groups (/proc; no psutil here) --------------------------------------------------


def _session_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[3])
    except (OSError, ValueError, IndexError):
        return None


def _kb(path: str, field: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def group_memory_mb(session: int) -> tuple[float, float, int]:
    """(RSS, PSS, processes) summed over every process of a session (start_new_session groups)."""
    rss = pss = count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _session_of(int(entry)) == session:
            rss += _kb(f"/proc/{entry}/status", "VmRSS:")
            pss += _kb(f"/proc/{entry}/smaps_rollup", "Pss:")
            count += 1
    return rss / 1024, pss / 1024, count


def group_cpu_s(session: int) -> float:
    """CPU-seconds of a session's processes, each with its reaped children's (a flow run, once
    ended, counts in the warm process or serve that waited for it): take it before and after."""
    total = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _session_of(int(entry)) == session:
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
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
    process while it opens or resumes — not while it polls for the result) and another process."""

    def __init__(self, server: int, serving: int) -> None:
        self.server, self.serving = server, serving
        self.start = self._now()
        self.caller = 0.0

    def _now(self) -> dict[str, float]:
        return {"prefect_server": group_cpu_s(self.server), "serving": group_cpu_s(self.serving)}

    def calling(self, call):
        """Run ``call()`` and count this process's CPU during it as the caller's."""
        before = own_cpu_s()
        try:
            return call()
        finally:
            self.caller += own_cpu_s() - before

    def stop(self, other: float = 0.0) -> dict[str, float]:
        used = {name: round(value - self.start[name], 1) for name, value in self._now().items()}
        used["caller"] = round(self.caller, 1)
        used["other"] = round(other, 1)  # the sweeper's own process
        used["total"] = round(sum(used.values()), 1)
        return used


class Sampler(threading.Thread):
    """Peak memory of named process groups, sampled every 0.5 s, per phase."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.groups: dict[str, int] = {}
        self.phase = "start"
        self.peaks: dict[str, dict[str, dict]] = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            for name, session in list(self.groups.items()):
                rss, pss, count = group_memory_mb(session)
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


# --- one stack, one size ------------------------------------------------------------------------------------


def one_run(cases: int, db: str, skip_floor: bool) -> dict:
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="bench-prefect-"))
    sys.path.insert(0, str(ROOT))
    from tests.support.stack import build_stack, wait_until

    tmp = Path(tempfile.mkdtemp(prefix="bench-cases-"))
    stack, stops = build_stack(tmp, db)
    sampler = Sampler()
    result: dict = {"cases": cases, "db": db, "tmp": str(tmp)}
    try:
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName, FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
        from prefect.client.schemas.objects import StateType
        from sqlmodel import select

        from aftersales.domain.models import Wait, WaitStatus
        from aftersales.integrations.db import session_scope
        from aftersales.intake.returns import open_return

        server = next(int(pid) for pid in subprocess.run(["pgrep", "-P", str(os.getpid()), "-f", "prefect server start"],
                                                          capture_output=True, text=True).stdout.split())
        sampler.groups.update({"prefect_server": server, "serve": stack.serve_process.pid})
        sampler.start()
        client = stack.prefect()

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
        # 1. open N returns at once -------------------------------------------------------------
        stack.sandbox("POST", "/sandbox/orders/bulk", json={"count": cases, "prefix": "R", "problem_share": 0})
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

        cpu = CpuMeter(server, stack.serve_process.pid)
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
            run_ids = [w for w in session.exec(select(Wait.flow_run_id).where(Wait.step == "seller-review")).all()]
        tasks_before = task_runs(run_ids)

        # 2. the sweeper applies the default to the N expired waits --------------------------------
        # (what one sweep leaves — a run not yet suspended, a resume the server refused — the next
        # scheduled sweep takes: here the sweeper runs again once nothing moved for a minute, at most 4 sweeps)
        sampler.phase = "sweep"
        as_of = (datetime.now(timezone.utc) + timedelta(days=SWEEP_AHEAD_DAYS)).isoformat()
        sweeps: list[dict] = []
        last = None
        cpu = CpuMeter(server, stack.serve_process.pid)
        while last is None and len(sweeps) < 4:
            sweep_log = tmp / f"sweeper-{len(sweeps) + 1}.log"
            done = subprocess.run([sys.executable, __file__, "--child", "sweep", "--as-of", as_of, "--limit", "500"],
                                  env=stack.env, cwd=ROOT, capture_output=True, text=True)
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
        result["logs"] = {name: {word: path.read_text(errors="replace").count(word) for word in ("database is locked", "Traceback", "Crashed", "TimeoutError")}
                          for name, path in (("serve", stack.serve_log), ("prefect_server", tmp / "prefect-server.log"))}
        stack.stop_serving()

        # 3. the floor --------------------------------------------------------------------------------
        if not skip_floor:
            before = round(tasks_before / len(case_ids))
            between = max(0, round((tasks_total - tasks_before) / len(case_ids)) - before)
            result.update(floor(stack, sampler, server, cases, before, between, paused, timeout, wait_until, task_runs))
        sampler.stopped.set()
        result["peak_memory"] = sampler.peaks
        return result
    finally:
        sampler.stopped.set()
        for stop in stops:
            try:
                stop()
            except Exception as exc:
                print(f"teardown: {exc}", file=sys.stderr)


def floor(stack, sampler: Sampler, server: int, cases: int, before: int, between: int, paused, timeout: float, wait_until, task_runs) -> dict:
    from prefect.deployments import run_deployment
    from prefect import get_client

    log = stack.tmp / "serve-floor.log"
    from aftersales.domain.settings import prefect_client_tls

    # the same Prefect settings as our serve gets from apply_prefect_defaults (set before Prefect is imported)
    floor_env = {**stack.env, **prefect_client_tls(stack.env["PREFECT_API_URL"])}
    process = subprocess.Popen([sys.executable, "bench/cases_floor.py"], cwd=ROOT, env=floor_env,
                               stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: "Your deployments are being served" in log.read_text(errors="replace"), 120, "the floor's serve")
        time.sleep(5)  # its warm process up, as for ours
        sampler.groups.pop("serve", None)
        sampler.groups["serve_floor"] = process.pid
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
            if "Traceback" in log.read_text(errors="replace"):
                raise RuntimeError(f"the floor's serve logged an error:\n{log.read_text(errors='replace')[-3000:]}")
            runs = paused("floor")
            at = [when for run_id, (pause_key, when) in runs.items() if run_id in ids and pause_key == key]
            return max(at) if len(at) == len(ids) else None

        floor_errors: list[str] = []
        cpu = CpuMeter(server, process.pid)
        began = time.time()
        ids = set(cpu.calling(lambda: asyncio.run(start_all())))
        floor_open = wait_until(lambda: all_at("seller-review", ids), timeout, "every floor run at its first suspend", interval=2,
                                explain=lambda: f"{len(paused('floor'))} suspended; serve log: {log.read_text(errors='replace')[-1500:]}") - began
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

        cpu = CpuMeter(server, process.pid)
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
                "floor_log": {word: log.read_text(errors="replace").count(word) for word in ("database is locked", "Traceback", "Crashed")}}
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)


# --- the table -----------------------------------------------------------------------------------------------


def table(results: list[dict]) -> str:
    lines = ["| cases | db | ours: open → all at seller review | floor: start → all suspended | ratio | ours: sweep → all at buyer shipment | floor: resume loop → all suspended | ratio | CPU-s per case, ours / floor: open · resume | peak (PSS / RSS MB): server · serve · sweeper | load avg |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        n = r["opened"]
        m = r.get("floor_started", n)  # per case: each side over the runs it started
        ratio_open = (r["ours_open_s"] / n) / (r["floor_open_s"] / m) if r.get("floor_open_s") else float("nan")
        k = r.get("floor_resumed", m)
        ratio_resume = (r["ours_resume_s"] / n) / (r["floor_resume_s"] / k) if r.get("floor_resume_s") else float("nan")
        peaks = r["peak_memory"]

        def peak(group: str) -> str:
            values = [p[group] for p in peaks.values() if group in p]
            if not values:
                return "—"
            return f"{max(v['pss_mb'] for v in values):.0f} / {max(v['rss_mb'] for v in values):.0f}"

        def cpu(ours: str, floor: str, runs: int) -> str:
            if not r.get(floor):
                return f"{r[ours]['total'] / n:.2f} / —"
            mine, bare = r[ours]["total"] / n, r[floor]["total"] / runs
            return f"{mine:.2f} / {bare:.2f} = {mine / bare:.2f}×"

        cpu_cells = f"{cpu('ours_open_cpu_s', 'floor_open_cpu_s', m)} · {cpu('ours_resume_cpu_s', 'floor_resume_cpu_s', k)}"
        floor_open = f"{r['floor_open_s']} s = {m / r['floor_open_s']:.2f}/s" if r.get("floor_open_s") else "—"
        floor_resume = f"{r['floor_resume_s']} s = {k / r['floor_resume_s']:.2f}/s" if r.get("floor_resume_s") else "—"
        lines.append(f"| {n} | {r['db']} | {r['ours_open_s']} s = {n / r['ours_open_s']:.2f} cases/s | {floor_open} | {ratio_open:.2f}× "
                     f"| {r['ours_resume_s']} s = {n / r['ours_resume_s']:.2f} resumes/s | {floor_resume} | {ratio_resume:.2f}× | {cpu_cells} "
                     f"| {peak('prefect_server')} · {peak('serve')} · {r['sweeper']['peak_rss_mb']:.0f} (RSS) | {r['load']} |"
                     + (f" ({len(r['sweeper']['sweeps'])} sweeps)" if len(r['sweeper']['sweeps']) > 1 else "")
                     + (f" ({r['cases'] - n} opens failed)" if r['cases'] != n else ""))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, nargs="+", default=[100])
    parser.add_argument("--db", nargs="+", choices=["sqlite", "postgres"], default=["sqlite"])
    parser.add_argument("--skip-floor", action="store_true")
    parser.add_argument("--child", choices=["run", "sweep"], help=argparse.SUPPRESS)
    parser.add_argument("--as-of", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "sweep":
        return sweep(args.as_of, args.limit)
    if args.child == "run":
        print("RESULT " + json.dumps(one_run(args.cases[0], args.db[0], args.skip_floor)))
        return

    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for db in args.db:
        for cases in args.cases:
            load_before = os.getloadavg()
            command = [sys.executable, __file__, "--child", "run", "--cases", str(cases), "--db", db] + (["--skip-floor"] if args.skip_floor else [])
            done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)  # its progress and errors on stderr
            if done.returncode != 0:
                print(f"{cases} cases on {db} failed (above)", file=sys.stderr)
                continue
            result = json.loads(next(line for line in reversed(done.stdout.splitlines()) if line.startswith("RESULT "))[7:])
            result["load"] = " → ".join(f"{a[0]:.2f}" for a in (load_before, os.getloadavg()))
            results.append(result)
            print(json.dumps(result), flush=True)
            (out / f"cases-{db}.json").write_text(json.dumps([r for r in results if r["db"] == db], indent=2), encoding="utf-8")
    print(table(results))


if __name__ == "__main__":
    main()
