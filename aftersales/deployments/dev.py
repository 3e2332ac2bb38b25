"""`make run`: the whole system on this machine, for a newcomer to try.

Starts (or reuses) a Prefect server with its UI on 127.0.0.1:4200, the sandbox platform on :8765,
our intake API on :8766 and the `serve` process with every deployment, then opens a few demo
return cases so the UI shows runs waiting for a supervisor. Ctrl-C stops what it started.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import httpx

from aftersales.domain.settings import PROJECT_ROOT

VAR = PROJECT_ROOT / "var"
PREFECT_PORT = 4200
PREFECT_API = f"http://127.0.0.1:{PREFECT_PORT}/api"



def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PREFECT_HOME", str(VAR / "prefect"))
    env.setdefault("PREFECT_API_URL", PREFECT_API)
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    env.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "2")
    env.setdefault("PREFECT_LOCAL_STORAGE_PATH", str(VAR / "results"))
    env.setdefault("PREFECT_RESULTS_PERSIST_BY_DEFAULT", "true")
    return env


def _up(url: str, headers: dict | None = None) -> bool:
    try:
        return httpx.get(url, timeout=2, headers=headers).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_for(url: str, what: str, timeout: float, process: subprocess.Popen | None = None, headers: dict | None = None) -> None:
    started = time.monotonic()
    while not _up(url, headers):
        if process is not None and process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}; see {VAR / 'logs'}")
        if time.monotonic() - started > timeout:
            raise SystemExit(f"{what} did not come up within {timeout:.0f} s; see {VAR / 'logs'}")
        time.sleep(1)
    print(f"  ✓ {what} ({time.monotonic() - started:.0f} s)", flush=True)


def main() -> int:
    env = _env()
    os.environ.update({k: env[k] for k in ("PREFECT_API_URL", "PREFECT_HOME")})
    (VAR / "logs").mkdir(parents=True, exist_ok=True)
    children: list[subprocess.Popen] = []

    def start(name: str, *args: str) -> subprocess.Popen:
        log = (VAR / "logs" / f"{name}.log").open("ab")
        process = subprocess.Popen([sys.executable, *args], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT, start_new_session=True)
        children.append(process)
        return process

    def stop_all(*_args) -> None:
        for process in reversed(children):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in children:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    from aftersales.approvals.auth import seed_demo_staff
    from aftersales.domain.settings import get_settings
    from aftersales.integrations.db import migrate, session_scope

    settings = get_settings()
    print("Starting the after-sales system (logs in var/logs/) …", flush=True)
    migrate()
    with session_scope() as session:
        seed_demo_staff(session)
    try:
        if not _up(f"{PREFECT_API}/health"):
            # a fresh Prefect database migrates for about 40 s on a 2-core machine
            server = start("prefect-server", "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(PREFECT_PORT))
            _wait_for(f"{PREFECT_API}/health", "Prefect server + UI on http://127.0.0.1:4200", 300, server)
        sandbox_key = settings.platform_api_key.get_secret_value()
        if not _up(f"{settings.platform_url}/api/orders/O20261120-001", {"X-Api-Key": sandbox_key}):
            host, port = settings.platform_url.split("//")[1].split(":")
            sandbox = start("sandbox", "-m", "aftersales.integrations.sandbox", "--host", host, "--port", port.rstrip("/"), "--api-key", sandbox_key)
            _wait_for(f"{settings.platform_url}/api/orders/O20261120-001", f"sandbox platform on {settings.platform_url}", 60, sandbox, {"X-Api-Key": sandbox_key})
        api = start("api", "-m", "aftersales.deployments.cli", "api")
        _wait_for(f"http://{settings.api_host}:{settings.api_port}/health", f"intake API on http://{settings.api_host}:{settings.api_port} (X-Api-Key)", 60, api,
                  {"X-Api-Key": settings.api_key.get_secret_value()})
        serve = start("serve", "-m", "aftersales.deployments.serve")
        _wait_for(f"{PREFECT_API}/deployments/name/return/return", "flows served (deployments with schedules)", 120, serve)
        asyncio.run(open_demo_cases())
        print(GUIDE, flush=True)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while all(process.poll() is None for process in children):
            time.sleep(2)
        print("a component stopped; see var/logs/", flush=True)
        return 1
    except KeyboardInterrupt:
        print("\nstopping …", flush=True)
        return 0
    finally:
        stop_all()


async def open_demo_cases() -> None:
    """Every flow module's ``demo_cases()`` opens a few cases from the sandbox's seeded orders."""
    import importlib
    import pkgutil

    import aftersales.flows
    from aftersales.domain.rules import InvalidRequest

    for module_info in sorted(pkgutil.iter_modules(aftersales.flows.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"aftersales.flows.{module_info.name}")
        if not hasattr(module, "demo_cases"):
            continue
        try:
            for opened in await module.demo_cases():
                print(f"  ✓ demo case {opened.case_id}", flush=True)
        except InvalidRequest as exc:  # e.g. the seeded order's window has passed since the seed
            print(f"  – demo cases of {module_info.name} not opened: {exc.message}", flush=True)


GUIDE = """
Ready. Open http://127.0.0.1:4200 → Runs: the demo return cases are Suspended, waiting for a person.

Approve one (in another terminal, `source .venv/bin/activate` first):
  aftersales waits list                       # who waits for what, with deadlines
  aftersales staff code S002                  # demo supervisor 李娜's current one-time code
  In the UI: open the run (e.g. return-O20261120-002) → Resume → staff id S002, the code,
  decision agree → Submit.   Or: aftersales waits resume return-O20261120-002 --staff S002 --code <code>
  aftersales case show return-O20261120-002   # the audit trail

Messages to staff and buyers land in the sandbox inbox: http://127.0.0.1:8765/sandbox/messages/staff-supervisor
(header X-Api-Key: sandbox-platform-key). Ctrl-C stops everything.
"""


if __name__ == "__main__":
    sys.exit(main())
