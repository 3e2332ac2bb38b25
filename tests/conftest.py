"""Fixtures: the whole system on loopback (see tests/support/stack.py).

``AFTERSALES_TEST_DB=postgres`` puts the case database in a fresh schema of the local PostgreSQL
(127.0.0.1:5432, database ``test``); the default is a SQLite file.
"""

from __future__ import annotations

import os
import tempfile

# Before Prefect is imported: logs outside a flow run stay local (no temporary API server), and
# this process's Prefect home is a temporary one (not var/ of the checkout, not ~/.prefect).
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="aftersales-test-prefect-"))

import pytest  # noqa: E402

from tests.support.stack import build_stack  # noqa: E402


# The fixtures through which a test reaches the case database of its leg (SQLite or PostgreSQL).
LEG_DATABASE_FIXTURES = {"stack", "case_db", "live"}


# The files that take longest (measured, `--durations`), handed out first: with `-n 2 --dist loadfile`
# (scripts/test-legs.sh) a long file started last would finish alone.
LONGEST_FIRST = ("test_unattended.py", "test_complaint_flow.py", "test_exchange_flow.py", "test_repair_flow.py",
                 "test_dispute_flow.py", "test_review_flow.py", "test_return_flow.py")


def pytest_collection_modifyitems(config, items):
    """The PostgreSQL leg runs only the tests that touch its database; the pure ones (rules,
    masking, calendar, workbook layout on a SQLite file of their own) run once, in the SQLite leg.
    The longest files come first (the order is the same in every worker, as xdist requires)."""
    def rank(item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: within a file, and among the rest, the order stays as collected
    if os.environ.get("AFTERSALES_TEST_DB", "sqlite") != "postgres":
        # what runs on PostgreSQL only (worker mode) is the other leg's, not a skip in this one
        elsewhere = [item for item in items if item.get_closest_marker("postgres_only")]
        if elsewhere:
            config.hook.pytest_deselected(items=elsewhere)
            items[:] = [item for item in items if item not in elsewhere]
        return
    keep = [item for item in items
            if LEG_DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker("postgres_only")]
    dropped = [item for item in items if item not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    stack, stops = build_stack(tmp_path_factory.mktemp("stack"), os.environ.get("AFTERSALES_TEST_DB", "sqlite"))
    yield stack
    for stop in stops:
        try:
            stop()
        except Exception as exc:  # keep stopping the rest
            print(f"teardown: {exc}")


@pytest.fixture
def sandbox_clean(stack):
    """No fault knobs left over from another test."""
    stack.faults()
    yield stack
    stack.faults()


@pytest.fixture
def team(stack):
    """This test's own staff: ``team["S002"]`` has S002's name, role and limit and a secret of its
    own, so the test never waits for a demo member's next one-time code (see Stack.enrol_team).
    While it runs, the demo ids that shared helpers name (``reviewer="S002"``) map onto it."""
    stack.current_team = stack.enrol_team()
    yield stack.current_team
    stack.retire([*stack.current_team.values(), *stack.current_team.colleagues()])
    stack.current_team = {}


@pytest.fixture(scope="module")
def intake_api(stack):
    """Our HTTP intake API on a free loopback port, in this process (against the stack)."""
    import contextvars
    import threading
    import time

    import uvicorn

    from aftersales.api.app import create_app

    port = int(stack.env["AFTERSALES_API_PORT"])  # where the sandbox's carrier pushes go
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    # the server's thread gets this thread's context: Prefect's settings (the test server's URL) live there
    thread = threading.Thread(target=contextvars.copy_context().run, args=(server.run,), daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
