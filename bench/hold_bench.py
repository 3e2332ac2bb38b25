"""Benchmark: hold 10,000 suspended return cases on the real stack (issue 13, part 3).

    .venv/bin/python bench/hold_bench.py                       # 10,000 cases, SQLite
    .venv/bin/python bench/hold_bench.py --cases 10000 --db sqlite postgres

A stack of its own per database (a real ``prefect server start``, our ``serve`` with its warm
flow-run process, the sandbox platform over loopback: tests/support/stack.py, as
bench/cases_bench.py), then:

1. **real cases** — ``--real`` (20) returns opened through our intake (``open_return``, on sandbox
   orders, amounts ¥18 / ¥128 / ¥899 in turn: waiting for an agent, a supervisor, a
   manager), each until its run is Suspended at seller review with its form.
2. **synthetic cases**, up to ``--small`` (100) and then up to ``--cases`` (10,000). Opening 10,000
   through real flow runs would take hours on 2 cores, so the rest are made cheaply from the real
   ones. **What is synthetic**: for each, a flow run of the real ``return`` deployment created
   through the Prefect API (``POST /deployments/{id}/create_flow_run/bulk``, 100 a call) with the
   real runs' parameters, name (the case id) and tags (its ``deadline:`` tag its own), created
   Running and put Suspended through Prefect's orchestration (``POST /flow_runs/bulk_set_state``,
   50 a call, not forced: the server records the pause key in the run's policy, as for a real suspend) with
   the state details of a real suspended run (pause key ``seller-review-1``, reschedule, no
   timeout, the same input keyset); its form saved as Prefect saves it — the real run's two
   flow-run inputs ``suspended-seller-review-1-schema`` and ``-description``, the description with
   the case's own id, order and deadline (not the wait's copy of them, ``copy-…``, which is read
   only when the form is missing: half the calls); and our own ``case`` and ``wait`` rows, bulk-inserted 1,000 at a time, as a
   real case has them at seller review (status ``wait_seller``, stage ``seller-review``, the
   customer's data fake and the reason masked as the intake masks it). Not made for synthetic
   cases: their sandbox orders, the run's task runs, logs and case-card artifacts, our
   ``case_event`` trail, outbox rows and staff messages. Their runs never ran a process: no
   start in a real process, so their ``start_time`` is when they were made. Their waits were
   opened over the last 5.05 days (deadline = opened + 5 days), so about 1 % are past their
   deadline now.
3. **measured at each size** (the ~100 and the 10,000 of the same run):
   - the calls the Prefect UI makes for its **Runs** page and filters (v2 UI, the default in
     3.8.8: ``/flow_runs/paginate`` 100 a page sorted by start time, ``/flow_runs/count``,
     ``/ui/flow_runs/history`` limit 1,000, ``/ui/flow_runs/count-task-runs``; the classic UI's
     ``/flow_runs/filter``), with the default 7-day range and filtered by state Suspended, by the
     tag ``waiting:supervisor`` and by deployment, and a deep page — each over HTTP with the
     server's basic authentication, 3 times, the median;
   - the server's **background services**: its CPU (the process group's utime+stime from /proc)
     and memory over ``--watch`` seconds with nothing else running, and what its log says;
   - **ours**: the deadline sweeper's claim query (``claim_expired``'s ``SELECT … FOR UPDATE SKIP
     LOCKED``, timed inside a transaction that is rolled back, so nothing is claimed) as of now
     (about 1 % expired) and as of six days on (all expired), and its plan (``EXPLAIN`` on both
     databases); ``aftersales waits list`` with ``--limit 0`` (every open wait at once, as it
     printed before it was paged), its first page, and a supervisor's expired ones;
     ``case_store.open_waits`` unpaged (what the CLI, the API's ``/waits`` and the approval page's
     queue read before) and paged; the intake API's ``GET /waits`` and a supervisor's approval
     page (its queue); the full form check that serve made before it served (``restore_lost_forms``
     over every paused run, 200 a page) and **serve's restart** until it serves (and until its
     background form check ends);
   - then the Prefect server restarted on the same database with
     ``PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_LOOP_SECONDS=300`` and watched again;
4. **a real case still moves**: one real case answered with ``aftersales waits resume`` (a demo
   supervisor's code) and another by the deadline sweeper for that case, each until it waits for
   the buyer's parcel.

Prints a summary and writes bench/results/hold-<db>.json.

    .venv/bin/python bench/hold_bench.py --claim-plans --db sqlite postgres

only times and explains the sweeper's claim before and after migration 0009 on a case database of
its own (no stack): 10,000 open waits and 20,000 answered ones of the past (a shop's history) →
bench/results/claim-plans-<db>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.cases_bench import Sampler, group_cpu_s, group_memory_mb  # noqa: E402  (the same process groups and memory sampler)

AMOUNTS = ("18.00", "128.00", "899.00")  # agent, supervisor, manager
REAL_KEY = "seller-review-1"


def auth_header() -> dict:
    return {"Authorization": "Basic " + base64.b64encode(os.environ["PREFECT_API_AUTH_STRING"].encode()).decode()}


# --- the synthetic cases -------------------------------------------------------------------------------------


class Maker:
    """Makes synthetic suspended return cases from real ones (see the module docstring)."""

    def __init__(self, stack, api_url: str, templates: list[dict], deployment_id: str) -> None:
        self.stack, self.api_url, self.templates, self.deployment_id = stack, api_url, templates, deployment_id
        self.made = 0
        self.retried = 0  # calls the server refused for a moment (SQLite: database is locked) and made again
        self.errors: list[str] = []

    async def make(self, count: int) -> dict:
        import httpx

        began = time.monotonic()
        timing = {"create_s": 0.0, "suspend_s": 0.0, "inputs_s": 0.0, "rows_s": 0.0}
        async with httpx.AsyncClient(base_url=self.api_url, headers=auth_header(), timeout=120) as http:
            for start in range(0, count, 1000):
                batch = [self._case(self.made + i) for i in range(min(1000, count - start))]
                # 1. runs, 100 a call, created Running
                t = time.monotonic()
                for chunk in range(0, len(batch), 100):
                    part = batch[chunk:chunk + 100]
                    for attempt in range(10):  # a SQLite Prefect server answers "database is locked" now and then: again, those
                        todo = [c for c in part if not c.get("flow_run_id")]
                        if not todo:
                            break
                        answer = await http.post(f"/deployments/{self.deployment_id}/create_flow_run/bulk", json=[
                            {"name": c["case_id"], "parameters": c["parameters"], "tags": c["tags"], "idempotency_key": c["case_id"],
                             "state": {"type": "RUNNING", "name": "Running"}} for c in todo])
                        answer.raise_for_status()
                        for case, made in zip(todo, answer.json()["results"]):
                            if made["status"] == "CREATED":
                                case["flow_run_id"] = made["flow_run_id"]
                            else:
                                self.retried += 1
                                self.errors.append(str(made.get("error"))[:120])
                        await asyncio.sleep(0.5 * attempt)
                    missing = [c["case_id"] for c in part if not c.get("flow_run_id")]
                    if missing:
                        raise RuntimeError(f"not created after 10 attempts: {missing[:3]}: {self.errors[-1:]}")
                timing["create_s"] += time.monotonic() - t
                # 2. suspended as a real run is (through the orchestration rules)
                t = time.monotonic()
                for chunk in range(0, len(batch), 50):  # the server's bulk limit
                    part = batch[chunk:chunk + 50]
                    for attempt in range(10):
                        answer = await http.post("/flow_runs/bulk_set_state", json={
                            "flow_runs": {"id": {"any_": [c["flow_run_id"] for c in part]}},
                            "state": self.templates[0]["state"], "force": False, "limit": len(part)})
                        if answer.status_code < 500:
                            break
                        self.retried += 1
                        await asyncio.sleep(0.5 * attempt)
                    if answer.status_code >= 400:
                        raise RuntimeError(f"bulk_set_state: {answer.status_code} {answer.text[:1000]}")
                    refused = [r for r in answer.json()["results"] if r["status"] != "ACCEPT"]
                    if refused:
                        raise RuntimeError(f"suspend refused: {refused[:2]}")
                timing["suspend_s"] += time.monotonic() - t
                # 3. its form, as Prefect and keep_copy save it
                t = time.monotonic()
                gate = asyncio.Semaphore(16)

                async def save(case: dict, key: str, value: str) -> None:
                    async with gate:
                        for attempt in range(10):
                            answer = await http.post(f"/flow_runs/{case['flow_run_id']}/input", json={"key": key, "value": value})
                            if answer.status_code < 500:
                                break
                            self.retried += 1
                            await asyncio.sleep(0.5 * attempt)
                        if answer.status_code != 409:  # 409: an earlier attempt had landed
                            answer.raise_for_status()

                await asyncio.gather(*(save(c, key, value) for c in batch for key, value in c["inputs"].items()))
                timing["inputs_s"] += time.monotonic() - t
                # 4. our rows
                t = time.monotonic()
                self._rows(batch)
                timing["rows_s"] += time.monotonic() - t
                self.made += len(batch)
                print(f"  made {self.made} synthetic cases ({time.monotonic() - began:.0f} s)", file=sys.stderr, flush=True)
        return {**{k: round(v, 1) for k, v in timing.items()}, "total_s": round(time.monotonic() - began, 1), "count": count,
                "retried": self.retried, "errors": sorted(set(e[:60] for e in self.errors))[:5]}

    def _case(self, i: int) -> dict:
        from aftersales.domain.calendar import shop_time

        template = self.templates[i % len(self.templates)]
        order_id = f"H{i:07d}"
        case_id = f"return-{order_id}"
        now = datetime.now(timezone.utc)
        opened = now - timedelta(days=5.05 * random.random())
        deadline = opened + timedelta(days=5)
        customer_id = f"C{9000000 + i}"
        replace = {template["case_id"]: case_id, template["order_id"]: order_id, template["deadline_text"]: shop_time(deadline),
                   template["customer_id"]: customer_id}

        def swap(text: str) -> str:
            for old, new in replace.items():
                text = text.replace(old, new)
            return text

        tags = [t for t in template["tags"] if not t.startswith("deadline:")] + [f"deadline:{shop_time(deadline)[:10]}"]
        return {"case_id": case_id, "order_id": order_id, "customer_id": customer_id, "opened": opened, "deadline": deadline,
                "parameters": json.loads(swap(json.dumps(template["parameters"], ensure_ascii=False))), "tags": tags,
                # the form Prefect saves (its copy, read only when it is missing, is left out: half the calls)
                "inputs": {key: swap(value) for key, value in template["inputs"].items() if not key.startswith("copy-")},
                "template": template}

    def _rows(self, batch: list[dict]) -> None:
        import sqlalchemy as sa

        from aftersales.domain.models import Case, Wait
        from aftersales.integrations.db import session_scope

        cases, waits = [], []
        for c in batch:
            t = c["template"]
            case = {**t["case_row"], "id": c["case_id"], "order_id": c["order_id"], "customer_id": c["customer_id"],
                    "flow_run_id": c["flow_run_id"], "opened_at": c["opened"], "updated_at": c["opened"]}
            details = json.loads(json.dumps(case["details"]).replace(t["order_id"], c["order_id"]).replace(t["customer_id"], c["customer_id"]))
            customer = details.get("customer") or {}
            customer.update(name="测试买家", phone=f"139{c['opened'].microsecond:08d}"[:11], email=f"{c['customer_id'].lower()}@buyer.example")
            case["details"] = details
            cases.append(case)
            waits.append({**t["wait_row"], "case_id": c["case_id"], "flow_run_id": c["flow_run_id"], "opened_at": c["opened"],
                          "deadline": c["deadline"]})
        with session_scope() as session:
            session.execute(sa.insert(Case), cases)
            session.execute(sa.insert(Wait), waits)


async def template_of(stack, case_id: str) -> dict:
    """What a real case at seller review is, in Prefect and in our database: the model of the synthetic ones."""
    from uuid import UUID

    from prefect import get_client

    from aftersales.domain.calendar import shop_time
    from aftersales.domain.models import Case, Wait
    from aftersales.integrations.db import session_scope
    from sqlmodel import select

    with session_scope() as session:
        case = session.get(Case, case_id)
        wait = session.exec(select(Wait).where(Wait.case_id == case_id, Wait.key == REAL_KEY)).one()
        case_row = case.model_dump()
        wait_row = wait.model_dump()
    async with get_client() as client:
        run = await client.read_flow_run(UUID(case.flow_run_id))
        inputs = {}
        for prefix in ("suspended-", "copy-", "paused-"):
            for found in await client.filter_flow_run_input(run.id, key_prefix=prefix, limit=100, exclude_keys=set()):
                inputs[found.key] = found.value
    details = run.state.state_details
    state = {"type": "PAUSED", "name": run.state.name, "message": run.state.message,
             "state_details": {"pause_key": details.pause_key, "pause_reschedule": details.pause_reschedule,
                               "pause_timeout": details.pause_timeout.isoformat() if details.pause_timeout else None,
                               "run_input_keyset": details.run_input_keyset}}
    for row in (case_row, wait_row):
        row.pop("id", None)
    return {"case_id": case_id, "order_id": case.order_id, "customer_id": case.customer_id, "deadline_text": shop_time(wait.deadline),
            "parameters": run.parameters, "tags": sorted(run.tags), "inputs": inputs, "state": state,
            "case_row": case_row, "wait_row": wait_row, "empirical_pause_keys": sorted(run.empirical_policy.pause_keys or ())}


# --- the measurements ---------------------------------------------------------------------------------------


def ui_calls(api_url: str, deployment_id: str) -> dict:
    """The Runs page's calls (v2 UI; the classic UI's list), each 3 times, the median (ms) and the answer's size."""
    import httpx

    week = {"expected_start_time": {"after_": (datetime.now(timezone.utc) - timedelta(days=7)).isoformat()}}
    filters = {
        "default (7 days)": {"flow_runs": week},
        "state Suspended": {"flow_runs": {**week, "state": {"name": {"any_": ["Suspended"]}}}},
        "tag waiting:supervisor": {"flow_runs": {**week, "tags": {"all_": ["waiting:supervisor"]}}},
        "deployment return": {"flow_runs": week, "deployments": {"id": {"any_": [deployment_id]}}},
    }
    calls: list[tuple[str, str, dict]] = []
    for name, body in filters.items():
        calls.append((f"paginate 100, {name}", "/flow_runs/paginate", {**body, "page": 1, "limit": 100, "sort": "START_TIME_DESC"}))
        calls.append((f"count, {name}", "/flow_runs/count", body))
        calls.append((f"ui history 1000, {name}", "/ui/flow_runs/history", {**body, "limit": 1000, "offset": 0, "sort": "EXPECTED_START_TIME_DESC"}))
    calls.append(("paginate 100, state Suspended, page 50", "/flow_runs/paginate",
                  {**filters["state Suspended"], "page": 50, "limit": 100, "sort": "START_TIME_DESC"}))
    calls.append(("classic filter 10, state Suspended", "/flow_runs/filter",
                  {**filters["state Suspended"], "limit": 10, "offset": 0, "sort": "START_TIME_DESC"}))
    calls.append(("flow_runs/filter state PAUSED, 200 (serve's start, the bench)", "/flow_runs/filter",
                  {"flow_runs": {"state": {"type": {"any_": ["PAUSED"]}}}, "limit": 200, "offset": 0}))
    out: dict = {}
    with httpx.Client(base_url=api_url, headers=auth_header(), timeout=300) as http:
        first = http.post("/flow_runs/paginate", json={**filters["default (7 days)"], "page": 1, "limit": 100, "sort": "START_TIME_DESC"}).json()
        ids = [r["id"] for r in first["results"]]
        calls.append(("ui count-task-runs, 100 runs", "/ui/flow_runs/count-task-runs", {"flow_run_ids": ids}))
        for name, path, body in calls:
            times, size = [], 0
            for _ in range(3):
                t = time.perf_counter()
                answer = http.post(path, json=body)
                times.append((time.perf_counter() - t) * 1000)
                answer.raise_for_status()
                size = len(answer.content)
            result = answer.json()
            shown = result.get("count") if isinstance(result, dict) else (result if isinstance(result, int) else len(result))
            out[name] = {"ms": round(statistics.median(times), 1), "bytes": size, "answer": shown}
    return out


def watch_server(server_session: int, log: Path, seconds: float) -> dict:
    """The Prefect server's CPU and memory with nothing else asking anything, and its log's new lines."""
    offset = log.stat().st_size if log.exists() else 0
    cpu0, t0 = group_cpu_s((server_session,)), time.monotonic()
    rss = []
    while time.monotonic() - t0 < seconds:
        rss.append(group_memory_mb((server_session,))[0])
        time.sleep(5)
    cpu = group_cpu_s((server_session,)) - cpu0
    elapsed = time.monotonic() - t0
    text = log.read_text(errors="replace")[offset:] if log.exists() else ""
    lines = [line for line in text.splitlines() if line.strip()]
    return {"seconds": round(elapsed), "cpu_s": round(cpu, 1), "cpu_share_of_one_core": round(cpu / elapsed, 3),
            "rss_mb_first": round(rss[0]), "rss_mb_last": round(rss[-1]), "rss_mb_max": round(max(rss)),
            "log_lines": len(lines), "log_warnings": [line[:300] for line in lines if "WARN" in line or "ERROR" in line or "Traceback" in line][:10]}


def claim_timing() -> dict:
    """claim_expired's query as of now and as of six days on, timed in a rolled-back transaction, and its plan."""
    import sqlalchemy as sa

    from aftersales.approvals.waits import expired_waits
    from aftersales.domain.models import WaitStatus
    from aftersales.integrations.db import get_engine

    engine = get_engine()
    out = {}
    for label, as_of in (("as of now", datetime.now(timezone.utc)), ("as of six days on", datetime.now(timezone.utc) + timedelta(days=6))):
        query = expired_waits(WaitStatus.OPEN, as_of).limit(500).with_for_update(skip_locked=True)
        times, rows = [], 0
        for _ in range(3):
            with engine.connect() as conn:
                t = time.perf_counter()
                rows = len(conn.execute(query).all())
                times.append((time.perf_counter() - t) * 1000)
                conn.rollback()
        with engine.connect() as conn:
            compiled = query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
            if engine.dialect.name == "postgresql":
                plan = [r[0] for r in conn.execute(sa.text(f"EXPLAIN (ANALYZE, COSTS OFF) {compiled}"))]
            else:
                plan = [r[-1] for r in conn.execute(sa.text(f"EXPLAIN QUERY PLAN {compiled}"))]
            conn.rollback()
        out[label] = {"ms": round(statistics.median(times), 1), "rows": rows, "plan": plan}
    return out


def open_waits_timing() -> dict:
    """``case_store.open_waits`` unpaged (what the CLI, the API's /waits and the approval page's
    queue read before they were paged) and its first page, in this process (ms)."""
    from aftersales.integrations import case_store
    from aftersales.integrations.db import session_scope

    out = {}
    for name, kwargs in (("every open wait", {}), ("first 50", {"limit": 50}), ("a supervisor's queue, unpaged", {"addressed_to": "supervisor"})):
        t = time.perf_counter()
        with session_scope() as session:
            rows = len(case_store.open_waits(session, **kwargs))
        out[name] = {"ms": round((time.perf_counter() - t) * 1000, 1), "rows": rows}
    return out


def timed_command(args: list[str], env: dict, timeout: float = 900) -> dict:
    t = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    return {"s": round(time.perf_counter() - t, 2), "exit": done.returncode, "lines": len(done.stdout.splitlines()),
            "bytes": len(done.stdout.encode()), "tail": done.stdout.splitlines()[-3:] + done.stderr.splitlines()[-3:]}


def api_timing(api: str, key: str, stack) -> dict:
    """The intake API's list of waits (every page an operations person would ask for) and a supervisor's approval page."""
    import httpx

    from aftersales.approvals.links import link_for
    from aftersales.domain.models import Wait, WaitStatus
    from aftersales.integrations.db import session_scope
    from sqlmodel import select

    out = {}
    with httpx.Client(base_url=api, headers={"X-Api-Key": key}, timeout=600) as http:
        for name, params in (("GET /waits", {}), ("GET /waits?addressed_to=supervisor", {"addressed_to": "supervisor"}),
                             ("GET /waits?limit=50", {"limit": 50})):
            t = time.perf_counter()
            answer = http.get("/waits", params=params)
            body = answer.json()
            rows = len(body["waits"]) if isinstance(body, dict) and "waits" in body else (len(body) if isinstance(body, list) else None)
            out[name] = {"ms": round((time.perf_counter() - t) * 1000, 1), "status": answer.status_code, "bytes": len(answer.content), "rows": rows}
        with session_scope() as session:
            wait = session.exec(select(Wait).where(Wait.status == WaitStatus.OPEN, Wait.addressed_to == "supervisor").limit(1)).first()
            token = link_for("S002", wait).token if wait else None
        if token:
            t = time.perf_counter()
            answer = http.get(f"/approve/{token}")
            out["approval page (a supervisor's link)"] = {"ms": round((time.perf_counter() - t) * 1000, 1), "status": answer.status_code,
                                                          "bytes": len(answer.content), "queue_rows": answer.text.count('name="wait" value=')}
    return out


async def full_form_check(deployment_ids: list) -> dict:
    """What serve's start did before this bench: every paused run of ours, 200 a page, its form checked."""
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    from aftersales.approvals.paused_forms import restore_lost_forms

    t = time.perf_counter()
    checked = 0
    async with get_client() as client:
        offset = 0
        while True:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))),
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=deployment_ids)), limit=200, offset=offset)
            if not runs:
                break
            await restore_lost_forms(client, runs)
            checked += len(runs)
            offset += len(runs)
    return {"s": round(time.perf_counter() - t, 1), "runs": checked}


def restart_serve(stack) -> dict:
    """serve stopped and started again: the time until it serves (its log says so) and what it logged."""
    stack.stop_serving()
    t = time.monotonic()
    stack.start_serving(timeout=1800)
    ready_s = time.monotonic() - t
    checked = None
    # serve checks the suspended runs' forms in the background once it serves: when that ends (its log line)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and "checking the forms" in stack.serve_log.read_text(errors="replace"):
        if "forms checked" in stack.serve_log.read_text(errors="replace"):
            checked = round(time.monotonic() - t, 1)
            break
        time.sleep(0.5)
    return {"ready_s": round(ready_s, 1), "form_check_done_s": checked,
            "log": [line[:200] for line in stack.serve_log.read_text(errors="replace").splitlines() if "WARN" in line or "form" in line][:8]}


def restart_server_with(server_pid: int, settings: dict[str, str], log: Path) -> subprocess.Popen:
    """The stack's Prefect server stopped and started again on the same port, database and
    environment (read from /proc), with ``settings`` added; returns the new process."""
    from tests.support.stack import wait_until
    import httpx

    env = dict(item.split("=", 1) for item in Path(f"/proc/{server_pid}/environ").read_bytes().decode().split("\0") if "=" in item)
    args = Path(f"/proc/{server_pid}/cmdline").read_bytes().decode().rstrip("\0").split("\0")
    port = args[args.index("--port") + 1]
    os.killpg(server_pid, 15)
    wait_until(lambda: not Path(f"/proc/{server_pid}").exists() or Path(f"/proc/{server_pid}/stat").read_text().split(")")[1].split()[0] == "Z",
               60, "the old server to stop")
    process = subprocess.Popen(args, env={**env, **settings}, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)

    def healthy() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, 300, "the Prefect server, restarted")
    return process


# --- one run ------------------------------------------------------------------------------------------------------


def measure(stack, api_url: str, api: str, deployment_ids: list, server_session: int, watch: float, label: str, sampler=None) -> dict:
    from sqlmodel import func, select

    from aftersales.domain.models import Wait, WaitStatus
    from aftersales.integrations.db import session_scope

    with session_scope() as session:
        open_waits = session.exec(select(func.count()).select_from(Wait).where(Wait.status == WaitStatus.OPEN)).one()
    print(f"measuring at {open_waits} open waits ({label})", file=sys.stderr, flush=True)
    result = {"open_waits": open_waits}
    result["ui"] = ui_calls(api_url, str(deployment_ids[0]))
    result["claim"] = claim_timing()
    wide = {**stack.env, "COLUMNS": "200"}
    # every open wait at once (what `waits list` printed before it was paged), then its first page now
    result["waits_list_cli_all"] = timed_command([sys.executable, "-m", "aftersales.deployments.cli", "waits", "list", "--limit", "0"], wide)
    result["waits_list_cli"] = timed_command([sys.executable, "-m", "aftersales.deployments.cli", "waits", "list"], wide)
    result["waits_list_cli_mine"] = timed_command([sys.executable, "-m", "aftersales.deployments.cli", "waits", "list", "--to", "supervisor",
                                                   "--expired"], wide)
    result["open_waits_query"] = open_waits_timing()
    result["api"] = api_timing(api, stack.env["AFTERSALES_API_KEY"], stack)
    result["full_form_check"] = asyncio.run(full_form_check(deployment_ids))
    result["serve_restart"] = restart_serve(stack)
    if sampler is not None:
        sampler.groups["serve"] = (stack.serve_process.pid,)
    result["server_idle"] = watch_server(server_session, stack.tmp / "prefect-server.log", watch)
    print(f"  {label}: {json.dumps(result, ensure_ascii=False)[:3000]}", file=sys.stderr, flush=True)
    return result


def one_run(cases: int, small: int, real: int, db: str, watch: float) -> dict:
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="bench-prefect-"))
    from tests.support.stack import build_stack, free_port

    # the Prefect server first as Prefect ships it (its pause-expiry monitor every 5 s), then with the
    # 300 s our installation sets (Settings.prefect_defaults), which the server would otherwise inherit here
    os.environ["PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_LOOP_SECONDS"] = "5"
    tmp = Path(tempfile.mkdtemp(prefix="bench-hold-"))
    stack, stops = build_stack(tmp, db)
    sampler = Sampler()
    result: dict = {"cases": cases, "small": small, "real": real, "db": db, "tmp": str(tmp), "when": datetime.now(timezone.utc).isoformat()}
    api_process = new_server = None
    try:
        from prefect.client.schemas.filters import FlowRunFilter

        from aftersales.intake.returns import open_return

        server = next(int(pid) for pid in subprocess.run(["pgrep", "-P", str(os.getpid()), "-f", "prefect server start"],
                                                          capture_output=True, text=True).stdout.split())
        sampler.groups.update({"prefect_server": (server,), "serve": (stack.serve_process.pid,)})
        sampler.start()
        api_url = stack.env["PREFECT_API_URL"]
        port = free_port()
        api_process = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "aftersales.api.app:create_app", "--host", "127.0.0.1",
                                        "--port", str(port), "--log-level", "warning"], cwd=ROOT, env=stack.env,
                                       stdout=(tmp / "api.log").open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
        api = f"http://127.0.0.1:{port}"

        # 1. real cases ------------------------------------------------------------------------------
        for i in range(real):  # the sandbox's bulk orders are all ¥20: these are made one by one
            stack.make_order(paid=AMOUNTS[i % 3], order_id=f"R{i:07d}")
        time.sleep(5)  # serve's warm process up
        sampler.phase = "real"

        async def open_all() -> list[str]:
            gate = asyncio.Semaphore(8)

            async def one(i: int) -> str:
                async with gate:
                    for attempt in range(5):  # a SQLite Prefect server's 503 (database is locked): the request again, as the README says
                        try:
                            return (await open_return(f"R{i:07d}", AMOUNTS[i % 3], reason="尺码不合适 联系 13812345678")).case_id
                        except Exception as error:
                            if attempt == 4:
                                raise
                            open_retries.append(f"R{i:07d}: {type(error).__name__} {error}"[:200])

            return await asyncio.gather(*(one(i) for i in range(real)))

        open_retries: list[str] = []
        t = time.monotonic()
        real_ids = asyncio.run(open_all())
        result["real_open_retries"] = open_retries
        for case_id in real_ids:
            stack.waiting(case_id, "seller-review", timeout=600)
        result["real_open_s"] = round(time.monotonic() - t, 1)
        templates = [asyncio.run(template_of(stack, real_ids[i])) for i in range(3)]
        result["template"] = {k: v for k, v in templates[1].items() if k not in ("case_row", "wait_row")}
        deployment_id = str(stack.prefect().read_deployment_by_name("return/return").id)
        deployment_ids = [d.id for d in [stack.prefect().read_deployment_by_name(n) for n in ("return/return",)]]
        maker = Maker(stack, api_url, templates, deployment_id)

        # 2. up to the small size, measured; then up to N, measured --------------------------------------
        sampler.phase = "make_small"
        result["make_small"] = asyncio.run(maker.make(max(0, small - real)))
        result["at_small"] = measure(stack, api_url, api, deployment_ids, server, watch / 2, "small", sampler)
        sampler.phase = "make_large"
        result["make_large"] = asyncio.run(maker.make(max(0, cases - small)))
        sampler.phase = "large"
        result["at_large"] = measure(stack, api_url, api, deployment_ids, server, watch, "large", sampler)

        # the Prefect server again, its pause-expiry monitor every 5 minutes instead of every 5 seconds
        # (PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_LOOP_SECONDS; our suspends have no timeout)
        sampler.phase = "tuned"
        from aftersales.domain.settings import PREFECT_SERVER_TUNING as tuned
        new_server = restart_server_with(server, tuned, tmp / "prefect-server.log")
        server = new_server.pid
        sampler.groups["prefect_server"] = (server,)
        time.sleep(20)  # its start-up done
        result["server_idle_tuned"] = {"settings": tuned, **watch_server(server, tmp / "prefect-server.log", watch)}
        result["ui_tuned"] = ui_calls(api_url, deployment_id)
        print(f"  tuned: {json.dumps(result['server_idle_tuned'])}", file=sys.stderr, flush=True)

        # 3. a real case still moves -----------------------------------------------------------------------
        sampler.phase = "moves"
        case_id = real_ids[1]  # ¥128: a supervisor's
        t = time.monotonic()
        result["resume_cli"] = timed_command([sys.executable, "-m", "aftersales.deployments.cli", "waits", "resume", case_id,
                                              "--staff", "S002", "--code", stack.code("S002"), "--set", "decision=agree"], stack.env)
        stack.waiting(case_id, "buyer-shipment", timeout=600)
        result["resume_cli"]["to_next_wait_s"] = round(time.monotonic() - t, 1)
        swept = real_ids[4]
        t = time.monotonic()
        answer = stack.sweep(swept, days=5.1)
        stack.waiting(swept, "buyer-shipment", timeout=600)
        result["sweeper_one_case"] = {"resumed": answer["resumed"], "to_next_wait_s": round(time.monotonic() - t, 1)}
        result["paused_runs_at_end"] = stack.prefect().count_flow_runs(flow_run_filter=FlowRunFilter(state={"type": {"any_": ["PAUSED"]}}))
        sampler.stopped.set()
        result["peak_memory"] = sampler.peaks
        result["logs"] = {name: {word: path.read_text(errors="replace").count(word) for word in ("database is locked", "Traceback", "Crashed", "TimeoutError")}
                          for name, path in (("serve", stack.serve_log), ("prefect_server", tmp / "prefect-server.log"))}
        return result
    finally:
        sampler.stopped.set()
        if new_server is not None:
            os.killpg(new_server.pid, 15)
            new_server.wait(30)
        if api_process is not None:
            os.killpg(api_process.pid, 15)
            api_process.wait(15)
        for stop in stops:
            try:
                stop()
            except Exception as exc:
                print(f"teardown: {exc}", file=sys.stderr)


def claim_plans(db: str, open_waits: int = 10_000, answered: int = 20_000) -> dict:
    """The claim's plan and time before and after migration 0009, on a case database of its own
    (no stack): ``open_waits`` open waits (about 1 % past their deadline) and ``answered`` answered
    ones of the past, as a shop's history has them; the claim as of now and as of six days on."""
    from alembic import command
    from alembic.config import Config
    import sqlalchemy as sa

    from tests.support.stack import case_database_url
    from aftersales.domain.models import Case, Wait
    from aftersales.integrations.db import MIGRATIONS, get_engine, session_scope
    from aftersales.domain.settings import get_settings

    tmp = Path(tempfile.mkdtemp(prefix="bench-claim-"))
    url, drop = case_database_url(db, tmp)
    os.environ["AFTERSALES_DATABASE_URL"] = url
    get_settings.cache_clear()
    get_engine.cache_clear()
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    out: dict = {"db": db, "open_waits": open_waits, "answered_waits": answered}
    try:
        command.upgrade(cfg, "0008_case_platform")
        now = datetime.now(timezone.utc)
        for start in range(0, open_waits + answered, 5000):
            cases, waits = [], []
            for i in range(start, min(start + 5000, open_waits + answered)):
                is_open = i < open_waits
                opened = now - timedelta(days=5.05 * random.random()) if is_open else now - timedelta(days=30 + 300 * random.random())
                cases.append({"id": f"return-P{i:07d}", "process": "return", "order_id": f"P{i:07d}", "customer_id": f"C{i:07d}",
                              "status": "wait_seller" if is_open else "closed", "stage": "seller-review", "requested_by": "buyer",
                              "amount": "128.00", "details": {}, "opened_at": opened, "updated_at": opened, "platform": "gateway",
                              "currency": "CNY", "reason": ""})
                waits.append({"case_id": f"return-P{i:07d}", "key": "seller-review-1", "step": "seller-review", "form": "SellerReview",
                              "addressed_to": ("agent", "supervisor", "manager")[i % 3], "deadline": opened + timedelta(days=5),
                              "default_action": "agree", "default_input": {}, "status": "open" if is_open else "answered", "notice": "",
                              "opened_at": opened, "decision": {}, "reason": ""})
            with session_scope() as session:
                session.execute(sa.insert(Case), cases)
                session.execute(sa.insert(Wait), waits)
        for label, head in (("before (0008: ix_wait_status, ix_wait_deadline)", None), ("after (0009: ix_wait_open_deadline)", "head")):
            if head:
                command.upgrade(cfg, head)
            if db == "postgres":
                with get_engine().begin() as conn:
                    conn.execute(sa.text("ANALYZE wait"))  # as autovacuum would have
            get_engine.cache_clear()
            out[label] = claim_timing()
    finally:
        get_engine().dispose()
        drop()
    return out


def summary(r: dict) -> str:
    small, large = r["at_small"], r["at_large"]
    lines = [f"## {r['db']}: {small['open_waits']} vs {large['open_waits']} open waits ({r['real']} real)", "",
             f"| call | at {small['open_waits']} | at {large['open_waits']} |", "|---|---|---|"]
    for name in large["ui"]:
        a, b = small["ui"].get(name, {}), large["ui"][name]
        lines.append(f"| UI: {name} | {a.get('ms')} ms | {b['ms']} ms ({b['bytes']:,} B, {b['answer']}) |")
    for label in large["claim"]:
        lines.append(f"| claim {label} | {small['claim'][label]['ms']} ms ({small['claim'][label]['rows']} rows) | {large['claim'][label]['ms']} ms ({large['claim'][label]['rows']} rows) |")
    for key in ("waits_list_cli_all", "waits_list_cli", "waits_list_cli_mine"):
        lines.append(f"| `aftersales {key}` | {small[key]['s']} s, {small[key]['lines']} lines | {large[key]['s']} s, {large[key]['lines']} lines |")
    for name in large["open_waits_query"]:
        a, b = small["open_waits_query"][name], large["open_waits_query"][name]
        lines.append(f"| open_waits: {name} | {a['ms']} ms ({a['rows']}) | {b['ms']} ms ({b['rows']}) |")
    for name in large["api"]:
        a, b = small["api"].get(name, {}), large["api"][name]
        lines.append(f"| API {name} | {a.get('ms')} ms | {b['ms']} ms ({b['bytes']:,} B, {b.get('rows', b.get('queue_rows'))} rows) |")
    lines.append(f"| full form check (serve's old start) | {small['full_form_check']['s']} s | {large['full_form_check']['s']} s |")
    lines.append(f"| serve restart → serving | {small['serve_restart']['ready_s']} s | {large['serve_restart']['ready_s']} s (forms checked at {large['serve_restart']['form_check_done_s']} s) |")
    for phase in ("server_idle",):
        a, b = small[phase], large[phase]
        lines.append(f"| server idle CPU (share of a core) / RSS | {a['cpu_share_of_one_core']} / {a['rss_mb_last']} MB | {b['cpu_share_of_one_core']} / {b['rss_mb_first']}→{b['rss_mb_last']} MB |")
    tuned = r.get("server_idle_tuned")
    if tuned:
        lines.append(f"| server idle CPU, {', '.join(f'{k}={v}' for k, v in tuned['settings'].items())} | | {tuned['cpu_share_of_one_core']} / {tuned['rss_mb_last']} MB |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--real", type=int, default=20)
    parser.add_argument("--watch", type=float, default=180, help="seconds the idle server is watched at the large size")
    parser.add_argument("--db", nargs="+", choices=["sqlite", "postgres"], default=["sqlite"])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--claim-plans", action="store_true", help="only the claim's plan before and after migration 0009 (no stack)")
    args = parser.parse_args()
    if args.claim_plans:
        out = ROOT / "bench" / "results"
        out.mkdir(parents=True, exist_ok=True)
        for db in args.db:
            found = claim_plans(db, args.cases)
            (out / f"claim-plans-{db}.json").write_text(json.dumps(found, indent=2, default=str), encoding="utf-8")
            for label in [k for k in found if k.startswith(("before", "after"))]:
                for when, r in found[label].items():
                    print(f"{db} {label} {when}: {r['ms']} ms, {r['rows']} rows — {' / '.join(line.strip() for line in r['plan'][:4])}")
        return
    if args.child:
        import signal

        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: the stack is stopped too (finally)
        print("RESULT " + json.dumps(one_run(args.cases, args.small, args.real, args.db[0], args.watch), default=str))
        return
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    for db in args.db:
        load_before = os.getloadavg()
        command = [sys.executable, __file__, "--child", "--cases", str(args.cases), "--small", str(args.small), "--real", str(args.real),
                   "--watch", str(args.watch), "--db", db]
        done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        if done.returncode != 0:
            print(f"{db} failed (above)", file=sys.stderr)
            continue
        result = json.loads(next(line for line in reversed(done.stdout.splitlines()) if line.startswith("RESULT "))[7:])
        result["load"] = " → ".join(f"{a[0]:.2f}" for a in (load_before, os.getloadavg()))
        (out / f"hold-{db}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
        print(summary(result), flush=True)


if __name__ == "__main__":
    main()
