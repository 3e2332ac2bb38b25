"""The real `make run` stack (`aftersales dev`) in a home of its own, used the way operations use it.

The home is what a shop's checkout has: a ``.env`` with its settings (here: free ports, one-minute
schedules, the case database of the leg) and ``var/`` filled by the stack itself. Every command runs
in a clean environment — no Prefect variable and no test setting inherited — with the home as its
working directory, as a user types it in a second terminal after ``source .venv/bin/activate``.
Nothing is driven by hand: the server's scheduler starts the sweeper and the outbox retry, the
supervisor restarts what dies.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.receivers import free_port
from tests.support.stack import ROOT, wait_until

VENV_BIN = Path(sys.executable).parent
SANDBOX_KEY = "sandbox-platform-key"


def clean_env(home: Path) -> dict[str, str]:
    """What a new terminal has after `source .venv/bin/activate`: PATH, HOME, a locale."""
    return {"PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home / "user-home"), "LANG": "C.UTF-8",
            "VIRTUAL_ENV": str(VENV_BIN.parent)}


@dataclass
class LiveStack:
    home: Path
    prefect_api: str
    platform_url: str
    api_url: str
    process: subprocess.Popen
    log: Path

    @property
    def var(self) -> Path:
        return self.home / "var"

    @property
    def prefect_auth(self) -> str:
        """The Prefect API's credentials `make run` wrote on first start (var/prefect-auth)."""
        return (self.var / "prefect-auth").read_text(encoding="utf-8").strip()

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """``aftersales …`` typed in a second terminal (clean environment, the home as cwd)."""
        return subprocess.run([str(VENV_BIN / "aftersales"), *args], cwd=self.home, env=clean_env(self.home),
                              capture_output=True, text=True, timeout=timeout)

    def screenshot(self, *args: str) -> Path:
        """``scripts/screenshots.py …`` (the README's pictures), typed in a second terminal as the CLI
        is; the picture lands in ``AFTERSALES_SCREENSHOTS_DIR`` (``docs/screenshots`` to refresh the
        README's) or in the home. Returns the picture's path; fails with what the page did not show."""
        *command, name = args
        folder = Path(os.environ.get("AFTERSALES_SCREENSHOTS_DIR") or self.home / "screenshots").resolve()
        done = subprocess.run([str(VENV_BIN / "python"), str(ROOT / "scripts" / "screenshots.py"), *command, str(folder / name)],
                              cwd=self.home, env=clean_env(self.home), capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, f"screenshots {' '.join(args)}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        return folder / name

    def pid(self, component: str) -> int:
        return int((self.var / "run" / f"{component}.pid").read_text())

    def sandbox(self, method: str, path: str, **kwargs):
        response = httpx.request(method, f"{self.platform_url}{path}", headers={"X-Api-Key": SANDBOX_KEY}, timeout=10, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def faults(self, **knobs) -> None:
        self.sandbox("POST", "/sandbox/faults", json={"error_rate": 0, "latency_ms": 0, "fail_after_commit": 0, "answer_delay_ms": 0, **knobs})

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def write_home(home: Path, database_url: str | None, **settings: str) -> dict[str, str]:
    ports = {"prefect": free_port(), "platform": free_port(), "api": free_port()}
    platform = f"http://127.0.0.1:{ports['platform']}"
    # the shipped channel config, pointed at this stack's sandbox inbox
    apprise = (ROOT / "config" / "apprise.yml").read_text(encoding="utf-8").replace("127.0.0.1:8765", f"127.0.0.1:{ports['platform']}")
    (home / "apprise.yml").write_text(apprise, encoding="utf-8")
    values = {
        "AFTERSALES_HOME": str(home),
        "AFTERSALES_PREFECT_API_URL": f"http://127.0.0.1:{ports['prefect']}/api",
        "AFTERSALES_PLATFORM_URL": platform,
        "AFTERSALES_CARRIER_URL": f"{platform}/poll/query.do",
        "AFTERSALES_API_PORT": str(ports["api"]),
        "AFTERSALES_APPRISE_CONFIG": str(home / "apprise.yml"),
        "AFTERSALES_CUSTOMER_NOTIFY_URL": f"json://127.0.0.1:{ports['platform']}/sandbox/messages/{{customer_id}}?+X-Api-Key={SANDBOX_KEY}",
        "AFTERSALES_STAFF_NOTIFY_URL": f"json://127.0.0.1:{ports['platform']}/sandbox/messages/staff-{{staff_id}}?+X-Api-Key={SANDBOX_KEY}",
        **settings,
    }
    if database_url:
        values["AFTERSALES_DATABASE_URL"] = database_url
    (home / ".env").write_text("".join(f"{k}='{v}'\n" for k, v in values.items()), encoding="utf-8")
    return values


def start_live_stack(home: Path, database_url: str | None = None, command: tuple[str, ...] = ("dev",), **settings: str) -> LiveStack:
    """`make run` in ``home`` (``command``: `aftersales dev --workers 2` is `make run-workers`):
    returns once it printed "Ready" (demo cases opened)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "user-home").mkdir(exist_ok=True)
    values = write_home(home, database_url, **settings)
    log = home / "make-run.log"
    process = subprocess.Popen([str(VENV_BIN / "aftersales"), *command], cwd=home, env=clean_env(home),
                               stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    stack = LiveStack(home=home, prefect_api=values["AFTERSALES_PREFECT_API_URL"], platform_url=values["AFTERSALES_PLATFORM_URL"],
                      api_url=f"http://127.0.0.1:{values['AFTERSALES_API_PORT']}", process=process, log=log)

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"`aftersales dev` exited with {process.returncode}:\n{stack.output()[-4000:]}")
        return "Ready." in stack.output()

    wait_until(ready, 420, f"`aftersales {' '.join(command)}` to be ready", interval=1)
    return stack


def stop_live_stack(stack: LiveStack) -> None:
    if stack.process.poll() is None:
        stack.process.send_signal(signal.SIGTERM)  # what a service manager sends
        try:
            stack.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(stack.process.pid, signal.SIGKILL)
    # nothing of the stack may outlive it
    for pid_file in (stack.var / "run").glob("*.pid"):
        try:
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def children_of(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            state = stat.rsplit(")", 1)[1].split()[0]
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and state != "Z":
            found.append((int(entry.name), cmdline))
    return found


def environ(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().replace(b"\0", b"\n").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def first_code(text: str) -> str:
    match = re.search(r"\b(\d{6})\b", text)
    assert match, f"no one-time code in: {text!r}"
    return match.group(1)


def elapsed(since: float) -> float:
    return time.monotonic() - since
