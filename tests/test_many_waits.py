"""Many cases waiting at once (issue 13: 10,000 held in bench/hold_bench.py): an operations person
gets the open waits a page at a time, filtered, with how many there are in all — from the CLI and
the intake API — and the deadline sweeper's claim reads only the expired ones, through its index.

A few hundred rows in a fresh case database of the leg (SQLite file or PostgreSQL schema); the
bench holds the 10,000 on the real stack.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from aftersales.domain.calendar import utcnow
from aftersales.domain.models import Case, CaseStatus, Process, Wait, WaitStatus
from aftersales.domain.settings import get_settings
from aftersales.integrations import case_store
from aftersales.integrations.db import get_engine, migrate, session_scope
from tests.support.stack import case_database_url

TEST_DB = os.environ.get("AFTERSALES_TEST_DB", "sqlite")
ROLES = ("agent", "supervisor", "manager")
CASES = 300
EXPIRED = 30  # the first 30 are past their deadline
ANSWERED = 100  # and 100 more waits of the past, answered


@pytest.fixture
def case_db(tmp_path, monkeypatch):
    """A fresh case database of the leg with CASES open waits (every third a supervisor's) and
    ANSWERED answered ones, behind the application's own settings and engine."""
    url, drop = case_database_url(TEST_DB, tmp_path)
    monkeypatch.setenv("AFTERSALES_DATABASE_URL", url)
    monkeypatch.setenv("AFTERSALES_API_KEY", "test-api-key")
    _forget()
    migrate(url)
    now = utcnow()
    cases, waits = [], []
    for i in range(CASES + ANSWERED):
        case_id = f"return-M{i:07d}"
        answered = i >= CASES
        cases.append({"id": case_id, "process": Process.RETURN.value, "order_id": f"M{i:07d}", "customer_id": f"C{i:07d}",
                      "status": CaseStatus.CLOSED.value if answered else CaseStatus.WAIT_SELLER.value, "stage": "seller-review",
                      "requested_by": "buyer", "amount": "128.00", "details": {}, "opened_at": now, "updated_at": now,
                      "platform": "gateway", "currency": "CNY", "reason": ""})
        # open: deadlines one hour apart, the first EXPIRED ones passed; answered: long passed
        deadline = now + timedelta(hours=i - EXPIRED + 0.5) if not answered else now - timedelta(days=30, hours=i)
        waits.append({"case_id": case_id, "key": "seller-review-1", "step": "seller-review", "form": "SellerReview",
                      "flow_run_id": None, "addressed_to": ROLES[i % 3], "deadline": deadline, "default_action": "同意 agree",
                      "default_input": {"decision": "agree"}, "status": WaitStatus.ANSWERED.value if answered else WaitStatus.OPEN.value,
                      "notice": "", "opened_at": deadline - timedelta(days=5), "decision": {}, "reason": ""})
    with session_scope() as session:
        session.execute(sa.insert(Case), cases)
        session.execute(sa.insert(Wait), waits)
    yield url
    get_engine().dispose()
    drop()
    _forget()


def _forget() -> None:
    get_settings.cache_clear()
    get_engine.cache_clear()


def test_open_waits_come_a_page_at_a_time_with_the_count(case_db):
    with session_scope() as session:
        assert case_store.count_open_waits(session) == CASES
        first = case_store.open_waits(session, limit=50)
        last = case_store.open_waits(session, limit=50, offset=CASES - 20)
        supervisors = case_store.open_waits(session, addressed_to="supervisor", limit=1000)
        expired = case_store.count_open_waits(session, due_before=utcnow())
    assert [case.id for _wait, case in first] == [f"return-M{i:07d}" for i in range(50)]  # soonest deadline first
    assert len(last) == 20 and last[-1][1].id == f"return-M{CASES - 1:07d}"
    assert len(supervisors) == CASES // 3 and {wait.addressed_to for wait, _case in supervisors} == {"supervisor"}
    assert expired == EXPIRED


def test_the_cli_lists_a_page_and_says_how_many_there_are(case_db):
    runner = CliRunner()
    from aftersales.deployments.cli import app as cli

    listed = runner.invoke(cli, ["waits", "list"], env={"COLUMNS": "220"})
    assert listed.exit_code == 0, listed.output
    assert "return-M0000049" in listed.output and "return-M0000050" not in listed.output  # 50 a page
    assert f"1–50 of {CASES} open waits; next: --page 2" in listed.output
    page = runner.invoke(cli, ["waits", "list", "--page", "6"], env={"COLUMNS": "220"})
    assert "return-M0000299" in page.output and "return-M0000249" not in page.output and f"251–300 of {CASES}" in page.output
    assert "next:" not in page.output
    mine = runner.invoke(cli, ["waits", "list", "--to", "supervisor", "--expired", "--limit", "0"], env={"COLUMNS": "220"})
    assert mine.exit_code == 0, mine.output
    shown = [line for line in mine.output.splitlines() if "return-M" in line]
    assert len(shown) == EXPIRED // 3 and all("主管 supervisors" in line for line in shown)
    assert f"{EXPIRED // 3} open waits" in mine.output


def test_the_api_pages_the_waits_and_counts_them_in_a_header(case_db):
    from aftersales.api.app import create_app

    with TestClient(create_app()) as api:
        key = {"X-Api-Key": "test-api-key"}
        first = api.get("/waits", headers=key)
        assert first.status_code == 200 and len(first.json()) == 100  # a page, not every open wait
        assert first.headers["X-Total-Count"] == str(CASES)
        rest = api.get("/waits", headers=key, params={"offset": 100, "limit": 1000})
        assert len(rest.json()) == CASES - 100 and rest.json()[0]["case_id"] == "return-M0000100"
        due = api.get("/waits", headers=key, params={"expired": "true", "addressed_to": "manager"})
        assert due.headers["X-Total-Count"] == str(EXPIRED // 3) and {w["addressed_to"] for w in due.json()} == {"manager"}
        assert api.get("/waits", headers=key, params={"limit": 5000}).status_code == 422  # at most 1,000 a page


def test_the_sweepers_claim_reads_the_expired_waits_through_its_index(case_db):
    from aftersales.approvals.waits import claim_expired, expired_waits

    engine = get_engine()
    assert "ix_wait_open_deadline" in {index["name"] for index in sa.inspect(engine).get_indexes("wait")}
    query = expired_waits(WaitStatus.OPEN, utcnow()).limit(500).with_for_update(skip_locked=True)
    compiled = query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("ANALYZE wait"))  # the planner's statistics, as autovacuum keeps them
            conn.execute(sa.text("SET LOCAL enable_seqscan = off"))  # a few hundred rows: the planner would read the table anyway
            plan = " ".join(row[0] for row in conn.execute(sa.text(f"EXPLAIN {compiled}")))
        else:
            plan = " ".join(row[-1] for row in conn.execute(sa.text(f"EXPLAIN QUERY PLAN {compiled}")))
        conn.rollback()
    assert "ix_wait_open_deadline" in plan, plan
    if engine.dialect.name == "sqlite":
        assert "TEMP B-TREE" not in plan, plan  # the index gives them oldest first
    claimed = claim_expired(utcnow(), limit=20)
    assert [wait.case_id for wait in claimed] == [f"return-M{i:07d}" for i in range(20)]  # oldest first, at most the limit
    assert len(claim_expired(utcnow(), limit=500)) == EXPIRED  # the 10 left, and the 20 already claimed (retried)
