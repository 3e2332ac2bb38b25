"""The deadline sweeper: when a wait's deadline passes, apply the rulebook's default action.

Deadlines are in calendar or working days with holidays (rulebook §4), which Prefect automations
cannot express, hence this flow. It runs every few minutes: it claims every expired wait in one
batch and resumes each case's run with the wait's default input as ``system``; the case's own flow
then records the default (e.g. §1.1: 10 days without receipt confirmation → automatic refund).
"""

from __future__ import annotations

from datetime import datetime

from prefect import flow, get_client, get_run_logger
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.responses import SetStateStatus

from aftersales.approvals.resume import ResumeRefused, as_form_input, form_schema, suspended_at
from aftersales.approvals.waits import claim_expired, default_run_input, flow_run_uuid, release_claim
from aftersales.domain.calendar import utcnow
from aftersales.domain.settings import get_settings

FINISHED = {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}


@flow(name="deadline-sweeper", log_prints=True)
async def deadline_sweeper(as_of: datetime | None = None, limit: int = 500, case_id: str | None = None) -> dict:
    """Apply the default action of every wait whose deadline is before ``as_of`` (default: now);
    ``case_id`` sweeps one case only."""
    logger = get_run_logger()
    moment = as_of or utcnow()
    resumed, pending, stuck = [], [], []
    async with get_client() as client:
        for wait in claim_expired(moment, limit, case_id):
            run = await suspended_at(client, flow_run_uuid(wait), wait.key)
            state = run.state
            if state and state.is_paused() and state.state_details.pause_key == wait.key:
                try:  # the default as the form takes it: a required choice left out gets its prefilled value
                    answer_input = as_form_input(default_run_input(wait), await form_schema(client, run))
                except ResumeRefused as refused:  # e.g. paused, its form not saved yet: the next sweep takes it
                    logger.warning("%s %s: the default was not sent (%s); the next sweep tries again", wait.case_id, wait.key, refused)
                    release_claim(wait.id)
                    pending.append(wait.case_id)
                    continue
                answer = await client.resume_flow_run(run.id, run_input=answer_input)
                if answer.status == SetStateStatus.ACCEPT:
                    resumed.append(wait.case_id)
                    continue
            if state is None or state.type in FINISHED:
                # the run is gone; give the wait back so it stays visible to operations
                release_claim(wait.id)
                stuck.append(wait.case_id)
            else:
                pending.append(wait.case_id)  # someone resumed it first; their answer is being processed
    logger.info("deadline sweep as of %s: %d resumed with the default, %d already moving, %d stuck",
                moment.isoformat(), len(resumed), len(pending), len(stuck))
    if stuck:
        logger.warning("waits whose run has ended and cannot be resumed: %s", ", ".join(stuck))
    return {"resumed": resumed, "pending": pending, "stuck": stuck}


def deployments(schedule) -> list:
    return [
        deadline_sweeper.to_deployment(
            name="deadline-sweeper", tags=["ops"], schedules=schedule(get_settings().sweeper_cron),
            description="到期处理 Applies the rulebook's default action to every wait past its deadline.",
        )
    ]

