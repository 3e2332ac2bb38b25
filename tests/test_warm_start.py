"""Warm flow runs (aftersales/deployments/warm_start.py): each flow run is a fork of serve's warm
process, it dies with the launcher the runner started, and without the warm process runs start cold."""

from __future__ import annotations

import os
import signal

from tests.support.live import alive, children_of, environ
from tests.support.stack import wait_until


def warm_pid(stack) -> int | None:
    found = [pid for pid, cmd in children_of(stack.serve_process.pid) if "aftersales.deployments.warm_start" in cmd]
    assert len(found) <= 1, found
    return found[0] if found else None


def run_id_of(case_id: str) -> str:
    from aftersales.integrations import case_store
    from aftersales.integrations.db import session_scope

    with session_scope() as session:
        return case_store.get_case(session, case_id).flow_run_id


def test_a_flow_run_is_a_fork_of_the_warm_process_and_dies_with_its_launcher(stack, sandbox_clean, team):
    warm = wait_until(lambda: warm_pid(stack), 30, "serve's warm process")
    order = stack.make_order(paid="31.00")
    # the platform answers slowly: the case's first run is caught in flight, in its first task
    stack.faults(latency_ms=8000)
    case_id = stack.open_return(order)
    launchers = wait_until(lambda: [pid for pid, cmd in children_of(stack.serve_process.pid) if "flow_run_launcher.py" in cmd],
                           60, "the run's launcher (serve's child)")
    assert len(launchers) == 1, launchers
    assert "PREFECT__FLOW_RUN_ID" in environ(launchers[0])
    engines = wait_until(lambda: [pid for pid, _cmd in children_of(warm)], 10, "the engine forked by the warm process")
    assert len(engines) == 1, engines
    # to the runner the launcher is the flow run: killed, it takes the engine with it
    os.kill(launchers[0], signal.SIGKILL)
    wait_until(lambda: not alive(engines[0]), 10, "the engine to die with its launcher")
    stack.faults()

    # the runner marks the run Crashed and the crash hook queues it again: the case opens once
    stack.waiting(case_id, "seller-review", timeout=120)
    assert stack.run_state(run_id_of(case_id)) == "PAUSED"
    assert warm_pid(stack) == warm


def test_without_the_warm_process_runs_start_cold_and_it_comes_back(stack, sandbox_clean, team):
    warm = wait_until(lambda: warm_pid(stack), 30, "serve's warm process")
    os.kill(warm, signal.SIGKILL)
    wait_until(lambda: warm_pid(stack) != warm, 10, "the warm process to die")

    order = stack.make_order(paid="32.00")
    case_id = stack.open_return(order)
    stack.waiting(case_id, "seller-review")  # started the ordinary way, `python -m prefect.engine`
    again = wait_until(lambda: warm_pid(stack), 30, "a new warm process")
    assert again != warm

    stack.approve(case_id, "seller-review", team["S002"])
    stack.waiting(case_id, "buyer-shipment")
