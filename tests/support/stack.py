"""The whole system on loopback, for the end-to-end tests.

A real ``prefect server start`` (SQLite in a temporary PREFECT_HOME), the case database (SQLite file
or a fresh schema in the local PostgreSQL), the sandbox platform, a local HTTP receiver for every
notification, and our ``serve`` process running the deployments. Nothing of ours is mocked; time is
moved only by asking the deadline sweeper to sweep "as of" a later moment.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pyotp

from tests.support.receivers import free_port, start_http_receiver
from tests.support.sandbox import start_sandbox

ROOT = Path(__file__).resolve().parents[2]

# The Prefect API is locked as in production (set before Prefect is imported): every server started
# from here requires these credentials and every client of this process, and of the processes it
# starts, sends them. `make run` stacks (tests/support/live.py) make and read their own, in their
# home's var/prefect-auth.
os.environ.setdefault("PREFECT_API_AUTH_STRING", f"aftersales-test:{uuid.uuid4().hex}")
os.environ.setdefault("PREFECT_SERVER_API_AUTH_STRING", os.environ["PREFECT_API_AUTH_STRING"])
PYTHON = sys.executable
STAFF_TAGS = ("agent", "supervisor", "manager", "warehouse", "finance", "review", "dispute", "quality", "logistics")
POSTGRES_ADMIN_URL = os.environ.get("AFTERSALES_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2, explain=None):
    """Poll ``predicate`` until it returns something true. On a timeout, ``explain()`` (when given)
    says where things stand; it goes on the error's first line, the one CI's summary prints."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            where = ""
            if explain is not None:
                try:
                    where = f" ({explain()})"
                except Exception as error:  # the explanation must not hide the timeout
                    where = f" (no explanation: {type(error).__name__} {error})"
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}{where}")
        time.sleep(interval)


TEMPLATE_DIR = ROOT / "var" / "test-cache"


def _prefect_version() -> str:
    from importlib.metadata import version

    return version("prefect")


def _migrate_prefect_database(home: Path, database_url: str | None) -> None:
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": "", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    done = subprocess.run([PYTHON, "-m", "prefect", "server", "database", "upgrade", "-y"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"migrating a Prefect database template failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def prefect_sqlite_template() -> Path:
    """A migrated Prefect database (SQLite) for this Prefect version, built once per checkout under
    var/test-cache/ (both legs share it; a lock keeps them from building it twice). A stack copies it
    into its Prefect home, so its server starts without migrating."""
    import fcntl
    import shutil

    TEMPLATE_DIR.mkdir(parents=True, exist_ok=True)
    template = TEMPLATE_DIR / f"prefect-{_prefect_version()}.db"
    with (TEMPLATE_DIR / "prefect-template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not template.exists():
            build = Path(tempfile.mkdtemp(prefix="build-", dir=TEMPLATE_DIR))
            _migrate_prefect_database(build, None)
            (build / "prefect.db").rename(template)
            shutil.rmtree(build, ignore_errors=True)
    return template


def seed_prefect_home(home: Path) -> None:
    """Put a copy of the migrated template where a Prefect server in ``home`` keeps its SQLite database."""
    import shutil

    home.mkdir(parents=True, exist_ok=True)
    if not (home / "prefect.db").exists():
        shutil.copyfile(prefect_sqlite_template(), home / "prefect.db")


def unused_code(staff_id: str, secret: str, used: set) -> str:
    """A code from the member's authenticator that is not in ``used`` yet (each code works once),
    as the member would type it now; waits only when all usable ones are spent."""
    totp = pyotp.TOTP(secret)
    while True:
        now = datetime.now(timezone.utc)
        step, into = totp.timecode(now), now.timestamp() % 30
        # The flow accepts one step of drift either way, so the current step's code and the next
        # one's stay valid for at least 35 s, the previous one's for 30 s minus the time into this
        # step: offer that one only while it leaves a loaded machine 25 s to check it.
        for candidate in ((step - 1, step, step + 1) if into < 5 else (step, step + 1)):
            if (staff_id, candidate) not in used:
                used.add((staff_id, candidate))
                return totp.generate_otp(candidate)
        time.sleep(0.5)


def start_prefect_server(home: Path, log: Path, database_url: str | None = None) -> tuple[str, subprocess.Popen]:
    from aftersales.domain.settings import PREFECT_SERVER_TUNING

    if database_url is None:
        seed_prefect_home(home)
    port = free_port()
    # the server as the installation runs it (what the environment sets wins, as in Settings.prefect_defaults)
    env = {**PREFECT_SERVER_TUNING, **os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_UI_ENABLED": "false", "PREFECT_API_URL": "", "PREFECT_LOGGING_LEVEL": "WARNING"}
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    process = subprocess.Popen([PYTHON, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                               env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"

    def healthy() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"prefect server exited with {process.returncode}; see {log}")
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    # with a migrated database the server is up in a few seconds (a fresh one migrates first)
    wait_until(healthy, 300, "the Prefect server")
    return url, process


def stop_process(process: subprocess.Popen | None, timeout: float = 15) -> None:
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


def prefect_database(kind: str) -> tuple[str | None, Any]:
    """PostgreSQL mode puts the Prefect server on a fresh database of the local PostgreSQL too."""
    if kind != "postgres":
        return None, lambda: None
    import sqlalchemy as sa

    name = f"prefect_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    server = POSTGRES_ADMIN_URL.split("://", 1)[1].rsplit("/", 1)[0]
    template = "prefect_template_" + _prefect_version().replace(".", "_").replace("+", "_").lower()
    with admin.connect() as conn:
        # a migrated template database per Prefect version, built once (the advisory lock keeps two
        # sessions from building it at once); each stack's database is a copy of it
        conn.execute(sa.text("SELECT pg_advisory_lock(4200)"))
        try:
            if conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": template}).first() is None:
                building = f"{template}_building"
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)'))
                conn.execute(sa.text(f'CREATE DATABASE "{building}"'))
                _migrate_prefect_database(Path(tempfile.mkdtemp(prefix="prefect-template-")), f"postgresql+asyncpg://{server}/{building}")
                conn.execute(sa.text(f'ALTER DATABASE "{building}" RENAME TO "{template}"'))
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(4200)"))
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return f"postgresql+asyncpg://{server}/{name}", drop


def case_database_url(kind: str, tmp: Path) -> tuple[str, Any]:
    """A fresh case database: a SQLite file, or a new schema in the local PostgreSQL."""
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'cases.db'}", lambda: None
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()

    separator = "&" if "?" in POSTGRES_ADMIN_URL else "?"
    return f"{POSTGRES_ADMIN_URL}{separator}options=-csearch_path%3D{schema}", drop


@dataclass
class Stack:
    tmp: Path
    env: dict[str, str]
    sandbox_url: str
    sandbox_key: str
    receiver_url: str
    received: list
    serve_process: subprocess.Popen | None = None
    serve_log: Path | None = None
    _used_codes: set = field(default_factory=set)
    _secrets: dict = field(default_factory=dict)
    # the running test's team (the `team` fixture): demo ids named by shared helpers map onto it
    current_team: dict = field(default_factory=dict)
    _client: Any = None
    _serve_count: int = 0
    # where the Prefect server keeps its data: its PostgreSQL database, or None for prefect.db (SQLite) in its home
    prefect_database_url: str | None = None

    # --- faults --------------------------------------------------------------------------------

    @contextmanager
    def prefect_refuses_form_saves(self, pause_key: str):
        """While open, the Prefect server's own database refuses to store the form (schema and
        description) of any run suspending at ``pause_key`` (a trigger: the real server answers the
        save with an error, as a busy one does with `database is locked`). On both databases the
        refusal is a constraint's, which the server answers at once (a busy server's 503 is retried
        by Prefect's client for about a minute first: the same failure, later)."""
        import sqlalchemy as sa
        from prefect.input.run_input import keyset_from_base_key

        keyset = keyset_from_base_key(f"suspended-{pause_key}")
        when = f"(NEW.key IN ('{keyset['schema']}', '{keyset['description']}'))"
        if self.prefect_database_url is None:
            engine = sa.create_engine(f"sqlite:///{self.tmp / 'prefect' / 'prefect.db'}", connect_args={"timeout": 30})
            install = [f"CREATE TRIGGER refuse_form_saves BEFORE INSERT ON flow_run_input WHEN {when} "
                       "BEGIN SELECT RAISE(ABORT, 'refused by the test: this form cannot be saved'); END"]
            remove = ["DROP TRIGGER IF EXISTS refuse_form_saves"]
        else:
            engine = sa.create_engine(self.prefect_database_url.replace("+asyncpg", "+psycopg"))
            install = ["CREATE FUNCTION refuse_form_saves() RETURNS trigger LANGUAGE plpgsql AS "
                       "$$ BEGIN RAISE EXCEPTION 'refused by the test: this form cannot be saved' USING ERRCODE = 'check_violation'; END $$",
                       f"CREATE TRIGGER refuse_form_saves BEFORE INSERT ON flow_run_input FOR EACH ROW WHEN {when} "
                       "EXECUTE FUNCTION refuse_form_saves()"]
            remove = ["DROP TRIGGER IF EXISTS refuse_form_saves ON flow_run_input", "DROP FUNCTION IF EXISTS refuse_form_saves()"]
        try:
            with engine.begin() as conn:
                for statement in install:
                    conn.exec_driver_sql(statement)
            yield
        finally:
            with engine.begin() as conn:
                for statement in remove:
                    conn.exec_driver_sql(statement)
            engine.dispose()

    # --- processes ------------------------------------------------------------------------

    def start_serving(self, timeout: float = 120) -> None:
        self._serve_count += 1
        self.serve_log = self.tmp / f"serve-{self._serve_count}.log"
        self.serve_process = subprocess.Popen([PYTHON, "-m", "aftersales.deployments.serve"], cwd=ROOT, env=self.env,
                                              stdout=self.serve_log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)

        def ready() -> bool:
            if self.serve_process.poll() is not None:
                raise RuntimeError(f"serve exited with {self.serve_process.returncode}:\n{self.serve_log.read_text()[-3000:]}")
            return "Your deployments are being served" in self.serve_log.read_text(errors="replace")

        wait_until(ready, timeout, "the serve process")

    def stop_serving(self, hard: bool = False) -> None:
        if hard and self.serve_process and self.serve_process.poll() is None:
            os.killpg(self.serve_process.pid, signal.SIGKILL)
            self.serve_process.wait(10)
        stop_process(self.serve_process)
        self.serve_process = None

    # --- the sandbox platform ---------------------------------------------------------------

    def sandbox(self, method: str, path: str, **kwargs) -> Any:
        response = httpx.request(method, f"{self.sandbox_url}{path}", headers={"X-Api-Key": self.sandbox_key}, timeout=10, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def make_order(self, *, paid: str = "128.00", delivered_days_ago: float | None = 2, status: str = "completed",
                   free_shipping: bool = False, items: list[dict] | None = None, refused_hours_ago: float | None = None,
                   language: str = "zh-CN", order_id: str | None = None) -> dict:
        """A fresh order on the sandbox platform, so every test has its own."""
        now = datetime.now(timezone.utc)
        order_id = order_id or f"T{now:%Y%m%d}-{uuid.uuid4().hex[:8].upper()}"
        customer_id = f"C{uuid.uuid4().hex[:8].upper()}"
        items = items or [{"sku": "SKU-TSHIRT-M", "name": "纯棉T恤 M", "category": "apparel", "quantity": 1, "unit_price": paid}]
        waybill = f"ZT{uuid.uuid4().int % 10**12:012d}"
        delivered_at = (now - timedelta(days=delivered_days_ago)).isoformat() if delivered_days_ago is not None else None
        order = {
            "order_id": order_id,
            "customer": {"customer_id": customer_id, "name": "韩梅梅", "phone": "13812345678", "email": f"{customer_id.lower()}@buyer.example",
                         "address": "浙江省杭州市西湖区文三路 123 号 4 幢 501", "language": language},
            "items": items, "paid_amount": paid, "postage_paid": "0.00", "free_shipping": free_shipping, "status": status,
            "shipped_at": (now - timedelta(days=5)).isoformat(), "delivered_at": delivered_at,
            "transaction_success_at": delivered_at, "carrier": "zhongtong", "waybill": waybill, "warehouse_left": True,
        }
        self.sandbox("POST", "/sandbox/orders", json=order)
        if refused_hours_ago is not None:
            self.sandbox("POST", f"/sandbox/parcels/{waybill}/events",
                         json={"state": 14, "status_code": "14", "context": "收件人拒签 recipient refused the parcel",
                               "time": (now - timedelta(hours=refused_hours_ago)).isoformat()})
        return order

    def refunds(self, order_id: str) -> list[dict]:
        return self.sandbox("GET", "/api/refunds", params={"order_id": order_id})

    def reshipments(self, order_id: str) -> list[dict]:
        return self.sandbox("GET", "/api/reshipments", params={"order_id": order_id})

    def faults(self, **knobs) -> None:
        self.sandbox("POST", "/sandbox/faults", json={"error_rate": 0, "latency_ms": 0, "fail_after_commit": 0, **knobs})

    # --- staff ------------------------------------------------------------------------------

    def enrol_team(self) -> "Team":
        """Fresh staff for one test: for each demo member (S001 …) a new member with the same name,
        role and limit and a random TOTP secret; ``team["S002"]`` is its id. A test approving as its
        own team never waits for a shared member's next 30-second code; the code rules are unchanged."""
        from aftersales.approvals.auth import DEMO_STAFF

        ids = [demo.id for demo in DEMO_STAFF]
        return Team(self, dict(zip(ids, self.enrol(*ids))))

    def enrol(self, *demo_ids: str) -> list[str]:
        """New members, one per demo id, each with that demo member's name, role and limit and a
        secret of its own; one transaction for all of them."""
        from aftersales.approvals.auth import DEMO_STAFF
        from aftersales.domain.models import Staff
        from aftersales.integrations.db import session_scope

        demos = {m.id: m for m in DEMO_STAFF}
        members = [Staff(id=f"{demo.id}-{uuid.uuid4().hex[:6].upper()}", name=demo.name, role=demo.role,
                         approval_limit=demo.approval_limit, contact=demo.contact, totp_secret=pyotp.random_base32())
                   for demo in (demos[demo_id] for demo_id in demo_ids)]
        with session_scope() as session:
            session.add_all(members)
        self._secrets.update({member.id: member.totp_secret for member in members})
        return [member.id for member in members]

    def retire(self, staff_ids: list[str]) -> None:
        """A finished test's staff leave (inactive), as people do: each wait's message goes to the
        active members of its role with a link each, and the suite's teams would pile up there."""
        import sqlalchemy as sa

        from aftersales.domain.models import Staff
        from aftersales.integrations.db import session_scope

        with session_scope() as session:
            session.execute(sa.update(Staff).where(Staff.id.in_(staff_ids)).values(active=False))

    def member(self, staff_id: str) -> str:
        """The running test's own member for a demo id (S002 → its team's S002), else the id itself."""
        return self.current_team.get(staff_id, staff_id)

    def _secret(self, staff_id: str) -> str:
        from aftersales.approvals.auth import DEMO_STAFF

        return self._secrets.get(staff_id) or {m.id: m.totp_secret for m in DEMO_STAFF}[staff_id]

    def code(self, staff_id: str) -> str:
        """A one-time code this test run has not used yet (each code works once)."""
        staff_id = self.member(staff_id)
        return unused_code(staff_id, self._secret(staff_id), self._used_codes)

    def mark_code_used(self, staff_id: str, code: str) -> None:
        staff_id = self.member(staff_id)
        totp = pyotp.TOTP(self._secret(staff_id))
        step = totp.timecode(datetime.now(timezone.utc))
        for candidate in (step - 1, step, step + 1):
            if totp.generate_otp(candidate) == code:
                self._used_codes.add((staff_id, candidate))

    # --- cases --------------------------------------------------------------------------------

    def run(self, coroutine):
        return asyncio.run(coroutine)

    def open_return(self, order: dict, amount: str | None = None, **kwargs) -> str:
        from aftersales.intake.returns import open_return

        opened = self.run(open_return(order["order_id"], amount or order["paid_amount"], **kwargs))
        return opened.case_id

    def prefect(self):
        """One long-lived synchronous Prefect client for the test process's polling."""
        if self._client is None:
            from prefect.client.orchestration import get_client

            self._client = get_client(sync_client=True)
            self._client.__enter__()
        return self._client

    def close_client(self) -> None:
        if self._client is not None:
            self._client.__exit__(None, None, None)
            self._client = None

    def waiting(self, case_id: str, step: str, timeout: float = 90):
        """Block until the case's run is suspended at an open wait of ``step``; returns the wait."""
        from aftersales.integrations import case_store
        from aftersales.integrations.db import session_scope

        def paused_at(key: str, run_id: str) -> bool:
            run = self.prefect().read_flow_run(UUID(run_id))
            return bool(run.state and run.state.is_paused() and run.state.state_details.pause_key == key)

        def check():
            with session_scope() as session:
                wait = case_store.find_wait(session, case_id, step)
            if wait is not None and paused_at(wait.key, wait.flow_run_id):
                return wait
            self.assert_run_alive(case_id)
            return None

        return wait_until(check, timeout, f"{case_id} to wait at {step}", explain=lambda: self.where_is(case_id))

    def assert_run_alive(self, case_id: str) -> None:
        from aftersales.integrations import case_store
        from aftersales.integrations.db import session_scope

        with session_scope() as session:
            case = session.get(case_store.Case, case_id)
        if case is None or not case.flow_run_id:
            return
        state = self.run_state(case.flow_run_id)
        if state in ("FAILED", "CRASHED"):
            raise AssertionError(f"the run of {case_id} is {state}:\n{(self.serve_log.read_text()[-4000:] if self.serve_log else '')}")

    def where_is(self, case_id: str) -> str:
        """One line on a case that did not get where a test waited for it: the case's status and
        stage, its run's state, how many runs the server holds as running (serve runs at most 8 at
        once), and the serve log's last lines about that run. The serve log's tail goes to stderr."""
        from aftersales.integrations import case_store
        from aftersales.integrations.db import session_scope
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
        from prefect.client.schemas.objects import StateType

        with session_scope() as session:
            case = session.get(case_store.Case, case_id)
        if case is None:
            return "no case recorded"
        line = f"case {case.status}/{case.stage}"
        if case.flow_run_id:
            run = self.prefect().read_flow_run(UUID(case.flow_run_id))
            line += f", run {run.state.type.value if run.state else 'NONE'} {run.state.name if run.state else ''}"
            running = self.prefect().read_flow_runs(flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING]))))
            line += f", {len(running)} runs running or pending"
            if self.serve_log and self.serve_log.exists():
                text = self.serve_log.read_text(errors="replace")
                about = [entry for entry in text.splitlines() if case.flow_run_id in entry or "limit" in entry.lower()]
                line += f"; serve log on it: {' | '.join(about[-3:])[-600:]}"
                sys.stderr.write(f"--- serve log tail ---\n{text[-6000:]}\n")
        return line

    def run_state(self, flow_run_id: str) -> str:
        run = self.prefect().read_flow_run(UUID(flow_run_id))
        return run.state.type.value if run.state else "NONE"

    def answer(self, case_id: str, step: str, **values) -> Any:
        """Resume the case's wait at ``step`` (as the UI's Resume form would) and return the verdict row."""
        from aftersales.approvals.resume import resume_wait, wait_for_verdict

        if "staff_id" in values:
            values["staff_id"] = self.member(values["staff_id"])
        wait = self.waiting(case_id, step)

        async def go():
            await resume_wait(case_id, values, step)
            return await wait_for_verdict(case_id, wait.key, timeout=90)

        return self.run(go())

    def approve(self, case_id: str, step: str, staff_id: str, **values) -> Any:
        staff_id = self.member(staff_id)
        # the code is read off the phone once the form is there: on a loaded machine the wait can take
        # longer to open than a code lives (seen: a receipt approval refused as an expired code)
        self.waiting(case_id, step)
        return self.answer(case_id, step, staff_id=staff_id, code=self.code(staff_id), **values)

    def sweep(self, case_id: str, days: float) -> dict:
        """The deadline sweeper, run as if ``days`` had passed, for this case only."""
        from aftersales.flows.deadline_sweeper import deadline_sweeper

        return self.run(deadline_sweeper(as_of=datetime.now(timezone.utc) + timedelta(days=days), case_id=case_id))

    def finished(self, case_id: str, timeout: float = 90):
        """Block until the case is closed and its run has completed; returns the case."""
        from aftersales.domain.details import details_model, details_of
        from aftersales.integrations import case_store
        from aftersales.integrations.db import session_scope

        def closed():
            with session_scope() as session:
                case = case_store.get_case(session, case_id)
            if case.status == "closed" and self.run_state(case.flow_run_id) == "COMPLETED":
                return case
            self.assert_run_alive(case_id)
            return None

        case = wait_until(closed, timeout, f"{case_id} to close", explain=lambda: self.where_is(case_id))
        # what every writer put on the case (intake, the opening, the closing, a score) is its
        # process's details model, every key declared (domain/details.py)
        assert isinstance(details_of(case), details_model(case.process)), case.details
        return case

    def messages(self, path_prefix: str) -> list:
        return [r for r in list(self.received) if r.path.startswith(path_prefix)]

    def customer_messages(self, order: dict) -> list:
        return self.messages(f"/customer/{order['customer']['customer_id']}")

    def wait_for_message(self, order: dict, words: str, timeout: float = 30) -> None:
        """Block until the order's buyer has a message saying ``words`` (the outbox delivers soon after)."""
        import json as _json

        def said() -> bool:
            return any(words in _json.dumps(m.json, ensure_ascii=False) for m in self.customer_messages(order))

        wait_until(said, timeout, f"a message to {order['customer']['customer_id']} saying {words!r}")


class Team(dict):
    """A test's own staff, keyed by the demo id whose role and limit each has (``team["S003"]``).

    Each member gets about two one-time codes per 30-second step (a code works once; one step of
    drift), as a person does. Where a test has one role answer many steps and who answers is not
    the point, ``team.colleague("S003")`` is another member of the same role, so the test does not
    wait half a minute for that person's next code."""

    def __init__(self, stack: "Stack", members: dict[str, str]):
        super().__init__(members)
        self._stack = stack
        self._colleagues: dict[str, list[str]] = {}

    def colleagues(self) -> list[str]:
        return [member for members in self._colleagues.values() for member in members]

    def colleague(self, demo_id: str, n: int = 1) -> str:
        """The ``n``-th colleague of ``team[demo_id]``: same role and limit, a member of their own."""
        colleagues = self._colleagues.setdefault(demo_id, [])
        while len(colleagues) < n:
            colleagues.extend(self._stack.enrol(demo_id))
        return colleagues[n - 1]


def build_stack(tmp: Path, db_kind: str) -> tuple[Stack, list]:
    """Start everything; returns the stack and the functions that stop it, in order."""
    stops: list = []
    prefect_home = tmp / "prefect"
    prefect_home.mkdir(parents=True, exist_ok=True)
    prefect_db, drop_prefect_db = prefect_database(db_kind)
    api_url, server = start_prefect_server(prefect_home, tmp / "prefect-server.log", prefect_db)
    stops.append(lambda: stop_process(server))
    stops.append(drop_prefect_db)

    sandbox_key = "test-sandbox-key"
    sandbox_url, _app, stop_sandbox = start_sandbox(sandbox_key)
    stops.append(stop_sandbox)
    receiver_url, received, stop_receiver = start_http_receiver()
    stops.append(stop_receiver)

    receiver = receiver_url.replace("http://", "json://")
    config = tmp / "apprise.yml"
    config.write_text("urls:\n" + "".join(f"  - {receiver}/staff/{tag}:\n      - tag: {tag}\n" for tag in STAFF_TAGS), encoding="utf-8")

    db_url, drop_db = case_database_url(db_kind, tmp)
    api_port = free_port()
    stops.append(drop_db)
    env = {
        **os.environ,
        "PREFECT_API_URL": api_url,
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        # a resumed wait is picked up within 0.2 s instead of 1 s: most of a test is answer → next wait
        "AFTERSALES_RUNNER_POLL_SECONDS": "0.2",
        "PREFECT_LOCAL_STORAGE_PATH": str(tmp / "results"),
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "AFTERSALES_DATABASE_URL": db_url,
        "AFTERSALES_PLATFORM_URL": sandbox_url,
        "AFTERSALES_PLATFORM_API_KEY": sandbox_key,
        "AFTERSALES_PLATFORM_RETRIES": "2",
        "AFTERSALES_CARRIER_URL": f"{sandbox_url}/poll/query.do",
        # TOP on the same sandbox: a return applied for there is decided there, whichever platform is set
        "AFTERSALES_TOP_URL": f"{sandbox_url}/router/rest",
        # the sandbox pushes to our intake API (the intake_api fixture listens on this port)
        "AFTERSALES_API_PORT": str(api_port),
        "AFTERSALES_APPRISE_CONFIG": str(config),
        "AFTERSALES_CUSTOMER_NOTIFY_URL": receiver + "/customer/{customer_id}",
        "AFTERSALES_STAFF_NOTIFY_URL": receiver + "/person/{staff_id}",
        "AFTERSALES_SERVE_SCHEDULES": "false",
        "AFTERSALES_API_KEY": "test-api-key",
        "AFTERSALES_EXPORTS_DIR": str(tmp / "exports"),
    }
    os.environ.update(env)
    _clear_caches()
    # Prefect reads its settings when it is imported: point this process at the test server too.
    from prefect.settings import PREFECT_API_URL, PREFECT_RESULTS_PERSIST_BY_DEFAULT, temporary_settings

    settings_context = temporary_settings(updates={PREFECT_API_URL: api_url, PREFECT_RESULTS_PERSIST_BY_DEFAULT: True})
    settings_context.__enter__()
    stops.append(lambda: settings_context.__exit__(None, None, None))

    from aftersales.approvals.auth import seed_demo_staff
    from aftersales.integrations.db import migrate, session_scope

    migrate()
    with session_scope() as session:
        seed_demo_staff(session)

    stack = Stack(tmp=tmp, env=env, sandbox_url=sandbox_url, sandbox_key=sandbox_key, receiver_url=receiver_url, received=received,
                  prefect_database_url=prefect_db)
    stack.start_serving()
    stops.insert(0, stack.stop_serving)
    stops.insert(0, stack.close_client)
    return stack, stops


def _clear_caches() -> None:
    from aftersales.domain.settings import get_settings
    from aftersales.integrations.db import get_engine

    get_settings.cache_clear()
    get_engine.cache_clear()
