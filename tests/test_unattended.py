"""It runs unattended (issue 8): the real `make run` stack, used as operations use it.

One `aftersales dev` in a home of its own (``tests/support/live.py``): the server's scheduler starts
the sweeper and the outbox retry by itself (schedules of one minute, set in the home's ``.env``), the
README's commands are typed in a clean environment, and processes are killed the way a machine
kills them. Nothing here runs the sweeper, the schedules or the recovery by hand.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.support.live import LiveStack, alive, children_of, environ, first_code, start_live_stack, stop_live_stack
from tests.support.stack import case_database_url, unused_code, wait_until


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    home = tmp_path_factory.mktemp("live-home")
    database_url, drop = case_database_url(os.environ.get("AFTERSALES_TEST_DB", "sqlite"), home)
    if database_url.startswith("sqlite"):
        database_url = None  # make run's own default: var/aftersales.db in the home
    started = time.monotonic()
    stack = start_live_stack(
        home, database_url,
        AFTERSALES_SWEEPER_CRON="* * * * *", AFTERSALES_OUTBOX_RETRY_CRON="* * * * *",
        # the compensation demo cases' approval waits expire at once: only the scheduled sweeper can answer them
        AFTERSALES_RULE_COMPENSATION_APPROVAL_HOURS="0",
        AFTERSALES_RUNNER_POLL_SECONDS="0.2",  # resumed waits picked up sooner; the cadence is a setting
    )
    stack.startup_seconds = time.monotonic() - started
    stack.engine = create_engine(database_url or f"sqlite:///{home / 'var' / 'aftersales.db'}")
    yield stack
    stop_live_stack(stack)
    stack.engine.dispose()
    drop()


# --- helpers ----------------------------------------------------------------------------------------


_used: set[tuple[str, int]] = set()


def code_for(staff_id: str) -> str:
    """A code from the demo member's authenticator, one this test has not used yet."""
    from aftersales.approvals.auth import DEMO_STAFF

    return unused_code(staff_id, {m.id: m.totp_secret for m in DEMO_STAFF}[staff_id], _used)


def ok(done) -> str:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done.stdout


def rows(live: LiveStack, sql: str, **params) -> list:
    with live.engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def wait_row(live: LiveStack, case_id: str, step: str):
    found = rows(live, "SELECT key, status FROM wait WHERE case_id = :case AND step = :step ORDER BY id DESC",
                 case=case_id, step=step)
    return found[0] if found else None


def waiting_at(live: LiveStack, case_id: str, step: str, timeout: float = 120) -> str:
    def check():
        row = wait_row(live, case_id, step)
        return row and row.status == "open" and _run_paused(live, case_id) and row.key

    return wait_until(check, timeout, f"{case_id} to wait at {step}", interval=0.5)


def _prefect(live: LiveStack):
    from prefect.client.orchestration import PrefectClient

    return PrefectClient(api=live.prefect_api, auth_string=live.prefect_auth)


def _run(coroutine):
    return asyncio.run(coroutine)


def _run_paused(live: LiveStack, case_id: str) -> bool:
    (run_id,) = rows(live, "SELECT flow_run_id FROM \"case\" WHERE id = :case", case=case_id)[0]

    async def read():
        async with _prefect(live) as client:
            return await client.read_flow_run(UUID(run_id))

    run = _run(read())
    return bool(run.state and run.state.is_paused())


def closed(live: LiveStack, case_id: str, timeout: float = 180):
    def check():
        found = rows(live, "SELECT status, outcome FROM \"case\" WHERE id = :case", case=case_id)
        return found and found[0].status == "closed" and found[0]

    return wait_until(check, timeout, f"{case_id} to close", interval=0.5)


def count(live: LiveStack, sql: str, **params) -> int:
    return rows(live, sql, **params)[0][0]


def drive_to_inspection(live: LiveStack, case_id: str, approver: str, waybill: str) -> None:
    waiting_at(live, case_id, "seller-review")
    ok(live.cli("waits", "resume", case_id, "--staff", approver, "--code", code_for(approver)))
    waiting_at(live, case_id, "buyer-shipment")
    ok(live.cli("waits", "resume", case_id, "--set", "carrier=yuantong", "--set", f"tracking_number={waybill}"))
    waiting_at(live, case_id, "receipt")
    # the other warehouse member signs for the parcel and S004 inspects: a member has about two
    # codes per 30 s, and the tests of this module follow each other closely
    ok(live.cli("waits", "resume", case_id, "--staff", "S007", "--code", code_for("S007")))
    waiting_at(live, case_id, "inspection")


def assert_paid_once(live: LiveStack, case_id: str, order_id: str, amount: str) -> None:
    refunds = live.sandbox("GET", "/api/refunds", params={"order_id": order_id})
    assert [Decimal(r["amount"]) for r in refunds] == [Decimal(amount)], refunds
    assert count(live, "SELECT count(*) FROM ledger_line WHERE case_id = :case AND kind = 'refund'", case=case_id) == 1
    assert count(live, "SELECT count(*) FROM case_event WHERE case_id = :case AND action = 'refund.paid'", case=case_id) == 1


# --- the tests --------------------------------------------------------------------------------------


def test_make_run_comes_up_and_says_how_long_it_took(live):
    assert "Ready." in live.output()
    assert "ready in" in live.output()
    print(f"make run: ready (demo cases opened) after {live.startup_seconds:.0f} s")
    logs = live.output() + "".join(p.read_text(errors="replace") for p in (live.var / "logs").glob("*.log"))
    # one Prefect server: no component started a temporary one of its own (Prefect says "Starting
    # temporary server on …" when a client has no API URL). Prefect's own SQLite may still report
    # "database is locked" under load (16 demo runs at once on 2 cores); its clients retry.
    assert "temporary server" not in logs.lower()
    assert len(list((live.home / "user-home").glob("**/prefect.db"))) == 0


def test_the_prefect_api_of_make_run_answers_nobody_without_its_credentials(live):
    """`make run` wrote the credentials on first start (var/prefect-auth, this user's only) and said
    how to log in. Without them the API reads nothing and resumes nothing — the forged "buyer
    shipped" answer of the security review is refused and the case does not move. (The CLI in a new
    terminal reads them by itself: every `waits resume` of this module goes through them.)"""
    import stat

    auth = live.var / "prefect-auth"
    assert stat.S_IMODE(auth.stat().st_mode) == 0o600
    assert live.prefect_auth.startswith("aftersales:") and len(live.prefect_auth) > 30
    assert f"cat {auth}" in live.output()
    case_id = "return-O20261120-003"
    waiting_at(live, case_id, "seller-review")
    (run_id,) = rows(live, "SELECT flow_run_id FROM \"case\" WHERE id = :case", case=case_id)[0]
    events = count(live, "SELECT count(*) FROM case_event WHERE case_id = :case", case=case_id)

    forged = {"reported_by": "buyer", "carrier": "yuantong", "tracking_number": "YT0000000000"}
    for credentials in (None, ("aftersales", "guessed"), ("admin", "pass")):
        assert httpx.post(f"{live.prefect_api}/flow_runs/filter", json={}, auth=credentials, timeout=10).status_code == 401
        assert httpx.post(f"{live.prefect_api}/flow_runs/{run_id}/resume", json={"run_input": forged}, auth=credentials,
                          timeout=10).status_code == 401
        assert httpx.delete(f"{live.prefect_api}/flow_runs/{run_id}", auth=credentials, timeout=10).status_code == 401
    user, password = live.prefect_auth.split(":", 1)
    assert httpx.post(f"{live.prefect_api}/flow_runs/filter", json={"limit": 1}, auth=(user, password), timeout=10).status_code == 200
    assert _run_paused(live, case_id)
    assert count(live, "SELECT count(*) FROM case_event WHERE case_id = :case", case=case_id) == events
    assert httpx.get(f"{live.prefect_api}/health", timeout=10).status_code == 200  # probes stay open


def test_the_scheduler_itself_runs_the_sweeper_and_the_outbox_retry(live):
    """No schedule fired with SQLAlchemy 2.1 (the scheduler failed every loop); here the server's
    own scheduler creates the runs and serve completes them."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName, FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    async def completed(name: str) -> list:
        async with _prefect(live) as client:
            return await client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name])),
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.COMPLETED]))))

    for deployment in ("deadline-sweeper", "outbox-retry"):
        runs = wait_until(lambda: [r for r in _run(completed(deployment)) if r.auto_scheduled], 240,
                          f"a scheduled {deployment} run to complete", interval=2)
        assert runs[0].auto_scheduled
    server_log = (live.var / "logs" / "prefect-server.log").read_text(errors="replace")
    assert "Can't evaluate bulk DML" not in server_log


def test_an_expired_wait_is_answered_by_the_scheduled_sweeper(live):
    """The compensation approval's deadline is 0 h here: the sweeper, started by the scheduler,
    applies the rulebook's default (escalate to the next level) with the system as actor."""
    answered_by_the_sweeper(live, "compensation-O20261120-002")


def answered_by_the_sweeper(live, case_id: str) -> None:
    """The case's first wait (its deadline 0 h) answered by the scheduled sweeper: the system as
    actor, the default action in the case's timeline."""
    def answered():
        first = rows(live, "SELECT status, actor FROM wait WHERE case_id = :case ORDER BY id", case=case_id)[0]
        return first.status in ("answered", "escalated") and first

    first = wait_until(answered, 240, f"the sweeper to answer {case_id}'s expired approval", interval=2)
    assert first.actor == "system"
    events = rows(live, "SELECT actor, action FROM case_event WHERE case_id = :case AND actor = 'system'", case=case_id)
    assert events, "the default action is in the case's timeline with the system as actor"


def test_a_wait_is_not_logged_as_an_error(live):
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    waiting_at(live, "return-O20261120-003", "seller-review")
    (run_id,) = rows(live, "SELECT flow_run_id FROM \"case\" WHERE id = 'return-O20261120-003'")[0]

    async def logs():
        async with _prefect(live) as client:
            return await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(run_id)])))

    finished = wait_until(lambda: [r for r in _run(logs()) if r.task_run_id is None and r.message.startswith("Finished in state")],
                          60, "the suspended run's closing log line")
    assert [r.level for r in finished] == [20] * len(finished), [(r.level, r.message) for r in finished]
    assert "Suspended" in finished[0].message


def test_the_readme_walkthrough_typed_in_a_second_terminal(live):
    """README "Try it": each command as written, in a new terminal (no variable exported by hand)."""
    case_id = "return-O20261120-002"
    waiting_at(live, case_id, "seller-review")
    pictures = os.environ.get("AFTERSALES_TEST_DB", "sqlite") == "sqlite"  # the UI is the same on either leg: once
    if pictures:  # the README's pictures, each checked for what it must show (scripts/screenshots.py)
        the_pictures_of_the_readme(live, case_id, "seller-review")
    started = time.monotonic()
    listed = ok(live.cli("waits", "list"))
    assert case_id in listed
    assert time.monotonic() - started < 30, "the CLI took as long as starting a temporary Prefect server"
    code = first_code(ok(live.cli("staff", "code", "S002")))
    _used.add(("S002", int(time.time() // 30)))
    resumed = ok(live.cli("waits", "resume", case_id, "--staff", "S002", "--code", code))
    assert "answered" in resumed
    waiting_at(live, case_id, "buyer-shipment")
    if pictures:
        the_pictures_of_the_readme(live, case_id, "buyer-shipment")
    ok(live.cli("waits", "resume", case_id, "--set", "carrier=yuantong", "--set", "tracking_number=YT1234567890"))
    waiting_at(live, case_id, "receipt")
    if pictures:
        the_pictures_of_the_readme(live, case_id, "receipt")
    ok(live.cli("waits", "resume", case_id, "--staff", "S004", "--code", code_for("S004")))
    waiting_at(live, case_id, "inspection")
    if pictures:
        the_pictures_of_the_readme(live, case_id, "inspection")
    ok(live.cli("waits", "resume", case_id, "--staff", "S004", "--code", code_for("S004"), "--set", "result=pass"))
    assert closed(live, case_id).outcome == "refunded"
    shown = ok(live.cli("case", "show", case_id))
    assert "refund.paid" in shown
    assert "已结束 closed refunded 已退款" in " ".join(shown.split()) and "closed / 已结束" not in shown  # closed, said once
    assert not (live.home / "user-home" / ".prefect").exists(), "the CLI used a Prefect home of its own"
    the_buyer_rates_the_service_from_the_link_in_their_message(live, case_id)


def the_pictures_of_the_readme(live: LiveStack, case_id: str, step: str) -> None:
    """Each return form as the person it waits for sees it; at the first step also the run page with
    its case card and the supervisors' queue saved as a view through the UI's own "Save View"."""
    # what each form must show: its fields, and on the receipt the waybill the buyer reported
    expect = {"seller-review": ["审核结果 Decision", "主管 supervisors", "¥128.00"], "buyer-shipment": ["运单号 Tracking number", "买家 the buyer"],
              "receipt": ["YT1234567890", "仓库 the warehouse"], "inspection": ["验货结果 Result", "部分通过时"]}[step]
    picture = live.screenshot("form", case_id, *[arg for text in expect for arg in ("--expect", text)], f"form-{step}.png")
    assert picture.stat().st_size > 20_000  # a rendered page, not a blank one
    if step == "seller-review":
        # the UI asks for var/prefect-auth's line first; pasted, the runs show
        assert live.screenshot("login", "login.png").with_name("login-done.png").stat().st_size > 20_000
        run_page = live.screenshot("card", case_id, "--expect", "等待 Waiting for", "--expect", "主管 supervisors", "run-page.png")
        assert run_page.with_name("run-page-card.png").stat().st_size > 20_000
        live.screenshot("queue", "waiting:supervisor", "主管待办 Supervisor queue", "queue-supervisor.png")


def the_buyer_rates_the_service_from_the_link_in_their_message(live: LiveStack, case_id: str) -> None:
    """The closed case's message to the buyer carries a link; on a phone, with nothing but that link
    (no key, no script of ours), the buyer gives a score and a comment, once."""
    import re

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.support.browser import phone_browser

    (customer_id,) = rows(live, "SELECT customer_id FROM \"case\" WHERE id = :case", case=case_id)[0]

    def link_in_inbox():
        for message in live.sandbox("GET", f"/sandbox/messages/{customer_id}"):
            found = re.search(r"(http://\S+/satisfaction/\S+)", message["message"])
            if found:
                return found.group(1)

    link = wait_until(link_in_inbox, 120, "the buyer's satisfaction link", interval=1)
    assert link.startswith(live.api_url), link

    def answers():
        return rows(live, "SELECT actor, details FROM case_event WHERE case_id = :case AND action = 'satisfaction.answered'", case=case_id)

    with phone_browser() as browser:
        browser.get(link)
        assert "服务评价" in browser.title
        assert "O20261120-002" in browser.page_source
        browser.find_element(By.CSS_SELECTOR, "input[name=score][value='4']").click()
        browser.find_element(By.ID, "comment").send_keys("退款很快 quick refund")
        browser.save_screenshot(str(live.home / "satisfaction-page.png"))
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(browser, 20).until(seen.text_to_be_present_in_element((By.ID, "result"), "感谢您的评价"))
        assert "4 分" in browser.page_source
        (answer,) = answers()
        details = answer.details if isinstance(answer.details, dict) else __import__("json").loads(answer.details)
        assert answer.actor == "buyer" and details == {"score": 4, "comment": "退款很快 quick refund"}

        browser.get(link)  # the link again: the answer stands, no second one
        assert "您已评价过" in browser.find_element(By.ID, "result").text
        browser.get(link[:-2] + ("xx" if not link.endswith("xx") else "yy"))  # a tampered link
        assert "链接无效" in browser.find_element(By.ID, "result").text
    assert len(answers()) == 1


def test_a_supervisor_decides_from_the_link_in_their_message_on_a_phone(live):
    """The out-of-scope repair waits for a supervisor's approval: S002's own message carries a link;
    on a phone, with nothing but that link (no code, no key), the page shows the case and its form,
    and submitting it moves the case on, decided by S002, once."""
    import re

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.support.browser import phone_browser

    (case_id,) = rows(live, "SELECT id FROM \"case\" WHERE process = 'repair' AND order_id = 'O20261120-003'")[0]
    waiting_at(live, case_id, "repair-approval")

    def link_in_inbox():
        for message in live.sandbox("GET", "/sandbox/messages/staff-S002"):
            found = re.search(r"(http://\S+/approve/[A-Za-z0-9_.-]+)", message["message"])
            if found and case_id in message["message"]:
                return found.group(1)

    link = wait_until(link_in_inbox, 120, "S002's approval link", interval=1)
    assert link.startswith(live.api_url), link
    pictures = Path(os.environ.get("AFTERSALES_SCREENSHOTS_DIR") or live.home / "screenshots").resolve()
    pictures.mkdir(parents=True, exist_ok=True)
    with phone_browser() as browser:
        browser.get(link)
        assert "售后审批" in browser.title
        summary = browser.find_element(By.ID, "summary").text
        assert case_id in summary and "主管 supervisors" in summary
        assert browser.find_element(By.CSS_SELECTOR, "input[name=decision][value=approve]").is_selected()
        quote = browser.find_element(By.ID, "f-quote")
        quote.clear()
        quote.send_keys("80.00")
        browser.save_screenshot(str(pictures / "approval-page.png"))
        browser.find_element(By.ID, "submit").click()
        WebDriverWait(browser, 60).until(seen.text_to_be_present_in_element((By.ID, "result"), "处理结果"))
        assert browser.find_element(By.CSS_SELECTOR, ".verdict").get_attribute("data-outcome") == "accepted"
        browser.save_screenshot(str(pictures / "approval-done.png"))
        browser.get(link)  # once: the link no longer decides anything
        assert "此事项已处理" in browser.find_element(By.ID, "result").text
    (approval,) = rows(live, "SELECT status, actor FROM wait WHERE case_id = :case AND step = 'repair-approval'", case=case_id)
    assert (approval.status, approval.actor) == ("answered", "S002")
    waiting_at(live, case_id, "buyer-ships")


def test_kill_9_of_serve_with_a_refund_in_flight(live):
    """The supervisor stops what the dead serve left behind and starts serve again; the run is
    re-queued and finishes from the platform's record: paid once, recorded once."""
    case_id, order_id = "return-O20261120-003", "O20261120-003"
    drive_to_inspection(live, case_id, "S003", "YT5550003333")
    others = {name: live.pid(name) for name in ("prefect-server", "sandbox", "api")}
    serve = live.pid("serve")

    # the platform commits the refund, then answers slowly: serve dies with the refund paid but not recorded
    live.faults(answer_delay_ms=8000)
    ok(live.cli("waits", "resume", case_id, "--staff", "S004", "--code", code_for("S004"), "--set", "result=pass"))
    wait_until(lambda: live.sandbox("GET", "/api/refunds", params={"order_id": order_id}), 60, "the refund to reach the platform")
    flow_runs = [pid for pid, _cmd in children_of(serve)]
    os.kill(serve, signal.SIGKILL)

    wait_until(lambda: live.pid("serve") != serve and alive(live.pid("serve")), 60, "the supervisor to start serve again")
    wait_until(lambda: not any(alive(pid) for pid in flow_runs), 30, "the dead serve's flow-run processes to be stopped")
    live.faults()
    assert closed(live, case_id, timeout=240).outcome == "refunded"
    assert_paid_once(live, case_id, order_id, "899.00")
    assert {name: live.pid(name) for name in others} == others, "the rest of the stack was torn down"
    assert all(alive(pid) for pid in others.values())
    assert "restarting it" in live.output()


def test_kill_9_of_a_flow_run_process_with_a_refund_in_flight(live):
    """The runner sees its flow-run process die and marks the run Crashed; the flow's crash hook
    re-queues it; it finishes, paying once."""
    case_id, order_id = "return-O20261120-001", "O20261120-001"
    drive_to_inspection(live, case_id, "S001", "YT5550001111")
    serve = live.pid("serve")

    live.faults(answer_delay_ms=8000)
    ok(live.cli("waits", "resume", case_id, "--staff", "S004", "--code", code_for("S004"), "--set", "result=pass"))
    wait_until(lambda: live.sandbox("GET", "/api/refunds", params={"order_id": order_id}), 60, "the refund to reach the platform")
    (run_id,) = rows(live, "SELECT flow_run_id FROM \"case\" WHERE id = :case", case=case_id)[0]
    engines = wait_until(lambda: [pid for pid, _cmd in children_of(serve) if run_id in environ(pid)], 30, "the case's flow-run process")
    assert len(engines) == 1, engines
    os.kill(engines[0], signal.SIGKILL)
    live.faults()

    assert closed(live, case_id, timeout=240).outcome == "refunded"
    assert_paid_once(live, case_id, order_id, "18.00")
    assert live.pid("serve") == serve and alive(serve)
