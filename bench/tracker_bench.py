"""Benchmark: the 15-day tracker sweeping N tracked orders against the sandbox carrier API.

    .venv/bin/python bench/tracker_bench.py --orders 100000

Starts the sandbox platform in its own process with N synthetic shipped orders, then, each in a
fresh process so peak memory is its own:

1. floor     — a plain async httpx loop: one Kuaidi100 query per order, same concurrency;
2. tracker   — the real `order-tracker` flow as it polled before pushes (``AFTERSALES_CARRIER_PUSH=
               false``; ephemeral Prefect server): sync the watch list from the platform's order
               feed, then sweep every order in batches from the case database;
3. subscribe — the `order-tracker` flow with pushes: the same watch list, each waybill subscribed
               once at the sandbox's Kuaidi100 push service (``/poll``);
4. pushes    — the sandbox pushes every subscribed waybill's track (signed, form-encoded, 16 at a
               time) to our intake API (its own process, as in `make run`), which verifies and
               applies each through the tracker's findings: pushes applied per second, and the
               API process's peak RSS (VmHWM);
5. after     — the `order-tracker` sweep once the pushes are in: what it still polls.

Prints the figures and writes bench/results/tracker.json.
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


def api(port: int) -> None:
    """Our intake API, alone in this process, receiving the pushes."""
    import uvicorn

    from aftersales.api.app import create_app

    uvicorn.run(create_app(), host="127.0.0.1", port=port, log_level="warning")


def child(kind: str, args) -> None:
    if kind == "api":
        return api(args.api_port)
    out = floor(args.base, args.orders, args.concurrency) if kind == "floor" else tracker(args.batch_size, args.concurrency)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out))


def run_child(kind: str, args, env: dict) -> dict:
    output = subprocess.run([sys.executable, __file__, "--child", kind, "--base", args.base, "--orders", str(args.orders),
                             "--concurrency", str(args.concurrency), "--batch-size", str(args.batch_size)],
                            env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return json.loads(next(line for line in output.splitlines() if line.startswith("RESULT "))[7:])


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pushes(args, env: dict) -> dict:
    """The sandbox pushes every subscription to our API in its own process; that process's peak."""
    receiver = subprocess.Popen([sys.executable, __file__, "--child", "api", "--api-port", str(args.api_port)], env=env, cwd=ROOT)
    try:
        for _ in range(240):
            try:
                httpx.get(f"http://127.0.0.1:{args.api_port}/health", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.5)
        idle = peak_rss_mb(receiver.pid)
        answer = httpx.post(f"{args.base}/sandbox/carrier/push-all", json={"concurrency": args.concurrency},
                            headers={"X-Api-Key": KEY}, timeout=7200).json()
        answer.update(peak_rss_mb=peak_rss_mb(receiver.pid), idle_rss_mb=idle)
        return answer
    finally:
        receiver.terminate()
        receiver.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--api-port", type=int, default=8798)
    parser.add_argument("--skip", nargs="*", default=[], choices=["floor"], help="leave out the floor (the push figures do not need it)")
    parser.add_argument("--child", choices=["floor", "tracker", "api"])
    parser.add_argument("--base")
    args = parser.parse_args()
    if args.child:
        return child(args.child, args)

    base = args.base = f"http://127.0.0.1:{args.port}"
    work = Path(tempfile.mkdtemp(prefix="tracker-bench-"))
    env = {**os.environ, "AFTERSALES_PLATFORM_URL": base, "AFTERSALES_PLATFORM_API_KEY": KEY, "AFTERSALES_CARRIER_URL": f"{base}/poll/query.do",
           "AFTERSALES_DATABASE_URL": f"sqlite:///{work / 'cases.db'}", "PREFECT_HOME": str(work / "prefect"), "PREFECT_API_URL": "",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
           "PREFECT_LOGGING_LEVEL": "WARNING", "AFTERSALES_APPRISE_CONFIG": str(work / "none.yml"),
           "AFTERSALES_CARRIER_SUBSCRIBE_URL": f"{base}/poll",
           "AFTERSALES_CARRIER_CALLBACK_URL": f"http://127.0.0.1:{args.api_port}/carrier/kuaidi100/push"}
    sandbox = start_sandbox(args.port, args.orders)
    results = {}
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)

    def phase(name: str, measure) -> None:
        if name in args.skip:
            return
        results[name] = measure()
        print(f"{name}: {json.dumps(results[name], default=str)}", flush=True)
        (out / "tracker.json").write_text(json.dumps(results, indent=2, default=str))  # kept as it goes: a long run

    try:
        phase("floor", lambda: run_child("floor", args, env))
        phase("tracker", lambda: run_child("tracker", args, {**env, "AFTERSALES_CARRIER_PUSH": "false"}))  # the polling sweep of today
        # the pushes are sent below, all at once, not as each subscription is made
        httpx.post(f"{base}/sandbox/carrier/push-knobs", json={"auto": False}, headers={"X-Api-Key": KEY}).raise_for_status()
        phase("subscribe", lambda: run_child("tracker", args, env))
        phase("pushes", lambda: pushes(args, env))
        phase("after", lambda: run_child("tracker", args, env))
    finally:
        sandbox.terminate()
        sandbox.wait(30)
    for kind in ("floor", "tracker"):
        if kind not in results:
            continue
        r = results[kind]
        print(f"{kind:8s} {r['orders']:>7} orders in {r['seconds']:6.1f} s = {r['orders'] / r['seconds']:7.0f} orders/s, peak RSS {r['peak_rss_mb']:.0f} MB")
    r = results["subscribe"]
    subscribed = r["result"].get("subscribed", 0)
    print(f"subscribe {subscribed:>7} waybills in {r['seconds']:6.1f} s = {subscribed / r['seconds']:7.0f} /s, peak RSS {r['peak_rss_mb']:.0f} MB")
    r = results["pushes"]
    print(f"pushes   {r['accepted']:>7} of {r['pushes']} applied in {r['seconds']:6.1f} s = {r['accepted'] / r['seconds']:7.0f} pushes/s, "
          f"API peak RSS {r['peak_rss_mb']:.0f} MB (idle {r['idle_rss_mb']:.0f} MB)")
    r = results["after"]
    print(f"after    sweep polled {r['orders']} orders in {r['seconds']:6.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
