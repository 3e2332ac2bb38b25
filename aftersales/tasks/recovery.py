"""A case whose process died goes on: crash recovery of case runs.

A case run's process can die at any step — ``kill -9``, the machine's power, the OOM killer —
also with a refund in flight, paid at the platform but not yet recorded by us. Such a run is put
back in the queue and runs again from the top: finished steps are skipped through their business
cache keys and persisted results, and the money step is asked again with the same idempotency key,
so the platform answers with the refund it already paid and we record that one, once.

Two ways in, one action (``requeue``):
- ``requeue_crashed_run``, the flows' ``on_crashed`` hook: the runner (serve or a worker) saw the
  flow-run process die and marked the run Crashed;
- ``recover_interrupted_runs`` at serve's start: the runner itself died, so nobody marked the runs
  it was running (see ``aftersales.deployments.serve``).
"""

from __future__ import annotations

import logging
from uuid import UUID

from prefect.client.orchestration import get_client
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


async def requeue_crashed_run(flow, flow_run, state) -> None:
    """``on_crashed`` hook of every case flow."""
    await requeue(flow_run.id, flow_run.name)


# How every case's run is declared (policy once): named after the case, results persisted so a
# resumed or recovered run skips its finished steps, re-queued when its process dies.
CASE_RUN = dict(flow_run_name="{case_id}", persist_result=True, log_prints=True, on_crashed=[requeue_crashed_run])
