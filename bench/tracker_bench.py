"""Benchmark: the 15-day tracker sweeping N tracked orders against the sandbox carrier API.

    .venv/bin/python bench/tracker_bench.py --orders 100000

Starts the sandbox platform in its own process with N synthetic shipped orders, then, each in a
fresh process so peak memory is its own:

1. floor   — a plain async httpx loop: one Kuaidi100 query per order, same concurrency;
2. tracker — the real `order-tracker` flow (ephemeral Prefect server): sync the watch list from the
             platform's order feed, then sweep every order in batches from the case database.

Prints orders per second and peak RSS for each, and writes bench/results/tracker.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-sandbox-key"


def start_sandbox(port: int, orders: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "sandbox_platform", "--host", "127.0.0.1", "--port", str(port),
                                "--api-key", KEY, "--log-level", "warning"], cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            if httpx.get(f"{base}/sandbox/state", headers={"X-Api-Key": KEY}, timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    httpx.post(f"{base}/sandbox/orders/bulk", json={"count": orders, "prefix": "B", "problem_share": 0}, headers={"X-Api-Key": KEY}, timeout=600).raise_for_status()
    return process


def floor(base: str, orders: int, concurrency: int) -> dict:
    """The least any sweep can cost: sign and send one query per waybill, read the answer."""
    import asyncio

    from aftersales.integrations.platform import kuaidi100_sign
    from sandbox_platform.bulk import bulk_waybill
    from aftersales.domain.settings import get_settings

    settings = get_settings()
    customer, key = settings.carrier_customer, settings.carrier_key.get_secret_value()

    async def run() -> int:
        limit = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            async def one(i: int) -> int:
                param = json.dumps({"com": "zhongtong", "num": bulk_waybill("B", i), "resultv2": "4"})
                async with limit:
                    response = await client.post("/poll/query.do", data={"customer": customer, "param": param, "sign": kuaidi100_sign(param, key, customer)})
                return len(response.json().get("data", []))

            done = 0
            for start in range(0, orders, 5000):  # bounded fan-out, as the tracker's batches
                done += len(await asyncio.gather(*(one(i) for i in range(start, min(start + 5000, orders)))))
            return done

    started = time.perf_counter()
    done = asyncio.run(run())
    return {"orders": done, "seconds": time.perf_counter() - started}


def tracker(batch_size: int, concurrency: int) -> dict:
    import asyncio

    from aftersales.flows.order_tracker import order_tracker
    from aftersales.integrations.db import migrate

    migrate()
    started = time.perf_counter()
    result = asyncio.run(order_tracker(batch_size=batch_size, concurrency=concurrency))
    return {"orders": result.get("polled", 0), "seconds": time.perf_counter() - started, "result": result}


def child(kind: str, args) -> None:
    out = floor(args.base, args.orders, args.concurrency) if kind == "floor" else tracker(args.batch_size, args.concurrency)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--child", choices=["floor", "tracker"])
    parser.add_argument("--base")
    args = parser.parse_args()
    if args.child:
        return child(args.child, args)

    base = f"http://127.0.0.1:{args.port}"
    work = Path(tempfile.mkdtemp(prefix="tracker-bench-"))
    env = {**os.environ, "AFTERSALES_PLATFORM_URL": base, "AFTERSALES_PLATFORM_API_KEY": KEY, "AFTERSALES_CARRIER_URL": f"{base}/poll/query.do",
           "AFTERSALES_DATABASE_URL": f"sqlite:///{work / 'cases.db'}", "PREFECT_HOME": str(work / "prefect"), "PREFECT_API_URL": "",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
           "PREFECT_LOGGING_LEVEL": "WARNING", "AFTERSALES_APPRISE_CONFIG": str(work / "none.yml")}
    sandbox = start_sandbox(args.port, args.orders)
    results = {}
    try:
        for kind in ("floor", "tracker"):
            output = subprocess.run([sys.executable, __file__, "--child", kind, "--base", base, "--orders", str(args.orders),
                                     "--concurrency", str(args.concurrency), "--batch-size", str(args.batch_size)],
                                    env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout
            results[kind] = json.loads(next(line for line in output.splitlines() if line.startswith("RESULT "))[7:])
    finally:
        sandbox.terminate()
        sandbox.wait(30)
    for kind, r in results.items():
        print(f"{kind:8s} {r['orders']:>7} orders in {r['seconds']:6.1f} s = {r['orders'] / r['seconds']:7.0f} orders/s, peak RSS {r['peak_rss_mb']:.0f} MB")
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "tracker.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
