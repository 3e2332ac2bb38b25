"""The deadline sweeper: when a wait's deadline passes, apply the rulebook's default action.

Deadlines are in calendar or working days with holidays (rulebook §4), which Prefect automations
cannot express, hence this flow. It runs every few minutes: it claims the expired waits in batches
of ``limit`` until none is left and resumes each case's run with the wait's default input as
``system``, a few at a time; the case's own flow then records the default (e.g. §1.1: 10 days
without receipt confirmation → automatic refund). It also asks again for the run of a case recorded
at the door whose run never started (``intake.core.start_missing_runs``) and re-queues a worker's
run whose worker died with it (``tasks.recovery.requeue_silent_worker_runs``).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from prefect import flow, get_client, get_run_logger
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.exceptions import ObjectNotFound

from aftersales.approvals.resume import ResumeRefused, as_form_input, form_schema, suspended_at
from aftersales.approvals.waits import claim_expired, default_run_input, flow_run_uuid, release_claim
from aftersales.domain.calendar import utcnow
from aftersales.domain.models import Wait
from aftersales.domain.settings import get_settings
from aftersales.intake.core import start_missing_runs
from aftersales.tasks.recovery import requeue_silent_worker_runs

FINISHED = {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}
# Resumes sent at once: each is three calls to the Prefect server (read the run, its form, resume);
# one after the other they took 0.7 s a wait on a loaded machine (bench/cases_bench.py, README).
RESUMES_AT_ONCE = 8


@flow(name="deadline-sweeper", log_prints=True)
async def deadline_sweeper(as_of: datetime | None = None, limit: int = 500, case_id: str | None = None) -> dict:
    """Apply the default action of every wait whose deadline is before ``as_of`` (default: now);
    ``case_id`` sweeps one case only; ``limit`` waits are claimed at a time."""
    logger = get_run_logger()
    moment = as_of or utcnow()
    outcomes: dict[str, list[str]] = {"resumed": [], "pending": [], "stuck": []}
    not_resumed: set[int] = set()  # given back (open again) or left claimed: not tried again in this sweep
    async with get_client() as client:
        gate = asyncio.Semaphore(RESUMES_AT_ONCE)

        async def apply_default(wait: Wait) -> None:
            async with gate:
                try:
                    outcome = await resume_with_default(client, wait, logger)
                except Exception as error:  # noqa: BLE001 — e.g. the Prefect server busy (503) past its retries
                    # one wait's failure does not stop the others; it stays claimed and the next sweep retries it
                    logger.warning("%s %s: the default was not sent (%s: %s); the next sweep tries again",
                                   wait.case_id, wait.key, type(error).__name__, error)
                    outcome = "pending"
            outcomes[outcome].append(wait.case_id)
            if outcome != "resumed":
                not_resumed.add(wait.id)

        batch = claim_expired(moment, limit, case_id)
        while batch:
            await asyncio.gather(*(apply_default(wait) for wait in batch))
            # a full batch may have left more behind
            more = len(batch) >= limit
            batch = claim_expired(moment, limit, case_id, retry_claimed=False, excluding=frozenset(not_resumed)) if more else []
    resumed, pending, stuck = outcomes["resumed"], outcomes["pending"], outcomes["stuck"]
    logger.info("deadline sweep as of %s: %d resumed with the default, %d already moving, %d stuck",
                moment.isoformat(), len(resumed), len(pending), len(stuck))
    if stuck:
        logger.warning("waits whose run has ended and cannot be resumed: %s", ", ".join(stuck))
    if case_id is None:  # the scheduled sweep is also the safety net for a case whose run never started
        outcomes["runs_asked_again"] = await start_missing_runs()
        if outcomes["runs_asked_again"]:
            logger.warning("cases recorded without a started run, their run asked for again: %s", ", ".join(outcomes["runs_asked_again"]))
        # … and for a worker's run whose worker died with it (worker mode)
        try:
            outcomes["silent_runs_requeued"] = await requeue_silent_worker_runs(timedelta(seconds=get_settings().worker_unresponsive_seconds))
        except Exception as error:  # noqa: BLE001 — the defaults above are applied; the next sweep looks again
            logger.warning("the check for runs whose worker died failed (%s: %s); the next sweep looks again", type(error).__name__, error)
            outcomes["silent_runs_requeued"] = []
        if outcomes["silent_runs_requeued"]:
            logger.warning("runs whose worker died with them, re-queued: %s", ", ".join(outcomes["silent_runs_requeued"]))
    return outcomes


async def resume_with_default(client: Any, wait: Wait, logger: Any) -> str:
    """Resume one claimed wait's run with its default: ``resumed``, ``pending`` (someone else's answer
    is being processed, or the run is not ready: the next sweep takes it) or ``stuck`` (the run ended)."""
    try:
        run = await suspended_at(client, flow_run_uuid(wait), wait.key)
    except ObjectNotFound:  # its run was deleted (e.g. in the UI): nothing can resume it
        release_claim(wait.id)
        return "stuck"
    state = run.state
    if state and state.is_paused() and state.state_details.pause_key == wait.key:
        try:  # the default as the form takes it: a required choice left out gets its prefilled value
            answer_input = as_form_input(default_run_input(wait), await form_schema(client, run))
        except ResumeRefused as refused:  # e.g. paused, its form not saved yet: the next sweep takes it
            logger.warning("%s %s: the default was not sent (%s); the next sweep tries again", wait.case_id, wait.key, refused)
            release_claim(wait.id)
            return "pending"
        answer = await client.resume_flow_run(run.id, run_input=answer_input)
        if answer.status == SetStateStatus.ACCEPT:
            return "resumed"
    if state is None or state.type in FINISHED:
        # the run is gone; give the wait back so it stays visible to operations
        release_claim(wait.id)
        return "stuck"
    return "pending"  # someone resumed it first; their answer is being processed


def deployments(schedule) -> list:
    return [
        deadline_sweeper.to_deployment(
            name="deadline-sweeper", tags=["ops"], schedules=schedule(get_settings().sweeper_cron),
            description="到期处理 Applies the rulebook's default action to every wait past its deadline.",
        )
    ]

