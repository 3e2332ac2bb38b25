"""A case whose process died goes on: crash recovery of case runs.

A case run's process can die at any step — ``kill -9``, the machine's power, the OOM killer —
also with a refund in flight, paid at the platform but not yet recorded by us. Such a run is put
back in the queue and runs again from the top: finished steps are skipped through their business
cache keys and persisted results, and the money step is asked again with the same idempotency key,
so the platform answers with the refund it already paid and we record that one, once.

Three ways in, one action (``requeue``):
- ``requeue_crashed_run``, the flows' ``on_crashed`` hook: the runner (serve or a worker) saw the
  flow-run process die and marked the run Crashed;
- ``recover_interrupted_runs`` at serve's start: the runner itself died, so nobody marked the runs
  it was running (see ``aftersales.deployments.serve``);
- ``requeue_silent_worker_runs``, in every scheduled deadline sweep: a worker's run stopped sending
  heartbeats because its worker died with it (worker mode, ``aftersales.deployments.workers``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
from prefect.client.schemas.objects import StateType
from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter
from prefect.states import Scheduled

log = logging.getLogger(__name__)

RECOVERING = "Recovering"
# A run that crashes again and again (a bug, not a machine) is left Crashed for a person to look at.
MAX_RECOVERIES = 3


async def requeue(flow_run_id: UUID, run_name: str) -> bool:
    """Schedule the run again unless it has been recovered ``MAX_RECOVERIES`` times already."""
    async with get_client() as client:
        states = await client.read_flow_run_states(flow_run_id)
        recoveries = sum(1 for state in states if state.name == RECOVERING)
        if recoveries >= MAX_RECOVERIES:
            log.error("run %s crashed again after %d recoveries; left Crashed for a person to look at", run_name, recoveries)
            return False
        await client.set_flow_run_state(flow_run_id, Scheduled(name=RECOVERING), force=True)
    log.warning("run %s was interrupted by a crash; re-queued (recovery %d of %d)", run_name, recoveries + 1, MAX_RECOVERIES)
    return True


HEARTBEAT = "prefect.flow-run.heartbeat"


async def requeue_silent_worker_runs(silent_for: timedelta) -> list[str]:
    """Worker runs still marked Running that sent heartbeats and then none for ``silent_for``:
    their worker died with them (``kill -9``, the machine lost) and nobody is left to mark them
    Crashed. Each goes back in the queue through ``requeue``; returns their names.

    Only runs started by a worker (served runs send no heartbeats) and only those that did send
    one since they last started running (a worker set up without heartbeats is not taken for
    dead). Prefect's own "zombie flows" automation was tried instead and dropped: its trigger sees
    a run's heartbeat after the run's later state changes (the heartbeat comes from the run's
    events client, the state events from the server), so it fired for nearly every run that
    suspended or finished, and re-queueing a suspended run resumes it without its answer."""
    now = datetime.now(timezone.utc)
    requeued = []
    async with get_client() as client:
        running = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING]))))
        for run in running:
            started = run.state.timestamp if run.state else None
            if not run.work_pool_name or started is None or now - started < silent_for:
                continue
            page = await client.read_events(filter=EventFilter(
                event=EventNameFilter(name=[HEARTBEAT]), resource=EventResourceFilter(id=[f"prefect.flow-run.{run.id}"]),
                occurred=EventOccurredFilter(since=started, until=now)), limit=1)  # the newest first
            if not page.events or now - page.events[0].occurred < silent_for:
                continue
            current = await client.read_flow_run(run.id)  # it may have moved on while we looked
            if current.state and current.state.is_running() and current.state.id == run.state.id:
                log.warning("run %s has sent no heartbeat since %s: its worker died with it", run.name, page.events[0].occurred.isoformat())
                if await requeue(run.id, run.name):
                    requeued.append(run.name)
    return requeued


async def requeue_crashed_run(flow, flow_run, state) -> None:
    """``on_crashed`` hook of every case flow."""
    await requeue(flow_run.id, flow_run.name)


# How every case's run is declared (policy once): named after the case, results persisted so a
# resumed or recovered run skips its finished steps, re-queued when its process dies.
CASE_RUN = dict(flow_run_name="{case_id}", persist_result=True, log_prints=True, on_crashed=[requeue_crashed_run])
