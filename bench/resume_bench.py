"""Benchmark: what a flow-run process costs — serve's warm start against Prefect's own cold start.

    .venv/bin/python bench/resume_bench.py --cases 10

Each answered wait is a new flow-run process. For each mode, a stack of its own (Prefect server,
serve, sandbox platform; tests/support/stack.py) opens N return cases and approves each at seller
review (each case approved by its own staff, so no one-time code is waited for), and measures:

- wall time from the first open to the last case waiting for the buyer's parcel;
- CPU-seconds used by all flow-run processes (serve's children and the warm process's, waited for);
- per case: open → first wait, and approval → next wait.

1. floor — ``AFTERSALES_WARM_FLOW_RUNS=false``: every flow run is ``python -m prefect.engine``, as
           Prefect's runner starts it;
2. warm  — the default: every flow run is a fork of serve's warm process.

Writes bench/results/resume.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu_of_tree(pid: int) -> float:
    """CPU-seconds of a process and of the children it has waited for (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def one_mode(cases: int) -> dict:
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="bench-prefect-"))
    sys.path.insert(0, str(ROOT))
    from tests.support.stack import build_stack, wait_until

    stack, stops = build_stack(Path(tempfile.mkdtemp(prefix="bench-resume-")), "sqlite")
    try:
        serve = stack.serve_process.pid

        def flow_run_cpu() -> float:
            warm = subprocess.run(["pgrep", "-P", str(serve), "-f", "warm_start"], capture_output=True, text=True).stdout.split()
            return cpu_of_tree(serve) + sum(cpu_of_tree(int(pid)) for pid in warm)

        def warm_ready() -> bool:
            if os.environ.get("AFTERSALES_WARM_FLOW_RUNS") == "false":
                return True
            for pid in subprocess.run(["pgrep", "-P", str(serve), "-f", "warm_start"], capture_output=True, text=True).stdout.split():
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if Path(argv[3].decode()).exists():  # python -m aftersales.deployments.warm_start <socket> …
                    return True
            return False

        teams = [stack.enrol_team() for _ in range(cases)]
        orders = [stack.make_order() for _ in range(cases)]
        wait_until(warm_ready, 60, "the warm process to accept flow runs")
        cpu_before, started = flow_run_cpu(), time.monotonic()
        first_wait, next_wait = [], []
        for order, team in zip(orders, teams):
            stack.current_team = team
            began = time.monotonic()
            case_id = stack.open_return(order)
            stack.waiting(case_id, "seller-review")
            first_wait.append(time.monotonic() - began)
            began = time.monotonic()
            stack.approve(case_id, "seller-review", "S002")
            stack.waiting(case_id, "buyer-shipment")
            next_wait.append(time.monotonic() - began)
        wall = time.monotonic() - started
        cpu = flow_run_cpu() - cpu_before
        return {"cases": cases, "flow_runs": 2 * cases, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                "cpu_per_flow_run_s": round(cpu / (2 * cases), 2),
                "open_to_first_wait_median_s": round(statistics.median(first_wait), 2),
                "approval_to_next_wait_median_s": round(statistics.median(next_wait), 2)}
    finally:
        for stop in stops:
            try:
                stop()
            except Exception as exc:
                print(f"teardown: {exc}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10)
    parser.add_argument("--mode", choices=["floor", "warm"], help=argparse.SUPPRESS)  # one mode, in a process of its own
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(one_mode(args.cases)))
        return
    results = {}
    for mode, warm in (("floor", "false"), ("warm", "true")):
        done = subprocess.run([sys.executable, __file__, "--cases", str(args.cases), "--mode", mode], cwd=ROOT,
                              env={**os.environ, "AFTERSALES_WARM_FLOW_RUNS": warm}, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"the {mode} run failed:\n{done.stderr[-3000:]}")
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{mode:5}  {results[mode]}")
    results["cpu_ratio_warm_to_floor"] = round(results["warm"]["cpu_s"] / results["floor"]["cpu_s"], 2)
    print(f"CPU per flow run, warm / floor: {results['cpu_ratio_warm_to_floor']}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "resume.json").write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
