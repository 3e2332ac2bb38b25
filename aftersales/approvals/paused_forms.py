"""The form a suspended run shows, kept so that a crash cannot lose it.

Prefect's ``suspend_flow_run`` first sets the run Suspended and only then saves the form's schema
and description (the inputs the UI's Resume modal, our CLI and the sweeper read). A process that
dies between the two (``kill -9``, the machine's power) leaves a run that waits for an answer
nobody can give: the UI has no form and the server refuses any input. So before suspending, the
wait keeps a copy of its form under keys of its own (``copy-<wait key>-…``), and ``make run``'s
serve puts back any form a suspended run lacks from that copy when it starts, which is when the
runs of a dead process are looked at (``aftersales.deployments.serve``): in the background once
it serves (a shop holds thousands of suspended runs; checking them all took minutes, see
bench/hold_bench.py), the runs of the most recently opened waits first — a crash can only have
hit the runs that were suspending as it came, the newest ones — and then every other one.

A run whose process lives but whose save failed (a Prefect server too busy to write: SQLite's
`database is locked` past the client's minute of retries) puts its own form back from the copy at
once (``put_form_back``), before it stops as Prefect would have.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from uuid import UUID

import httpx
from prefect.input import RunInput
from prefect.input.run_input import Keyset, keyset_from_base_key, keyset_from_paused_state

log = logging.getLogger(__name__)


def copy_keyset(pause_key: str) -> Keyset:
    return keyset_from_base_key(f"copy-{pause_key}")


async def keep_copy(client: Any, flow_run_id: UUID, pause_key: str, form: type[RunInput]) -> None:
    """Save the form under the copy's keys before the run suspends (once per wait: a run that runs
    again up to the same wait finds its copy there)."""
    try:
        await form.asave(copy_keyset(pause_key), flow_run_id=flow_run_id)
    except httpx.HTTPStatusError as exists:
        if exists.response.status_code != 409:
            raise


async def _read(client: Any, flow_run_id: UUID, key: str) -> str | None:
    try:
        return await client.read_flow_run_input(flow_run_id, key)
    except httpx.HTTPStatusError as missing:
        if missing.response.status_code != 404:
            raise
        return None


async def restore_form(client: Any, run: Any) -> bool:
    """Put back the schema and description a suspended run lacks, from its copy. Only for a run
    whose process is gone: Prefect's own save, still to come, would find the keys taken. One call
    for a run whose form is whole (the keys there are read together). True if anything was put back."""
    return (await _put_back(client, run))[0]


async def _put_back(client: Any, run: Any) -> tuple[bool, bool]:
    """``restore_form``'s work: (whether anything was put back, whether the form is now whole)."""
    state = run.state
    if not (state and state.is_paused() and state.state_details.run_input_keyset and state.state_details.pause_key):
        return False, False
    keyset, copy = keyset_from_paused_state(state), copy_keyset(state.state_details.pause_key)
    base = keyset["schema"].removesuffix("schema")
    present = {found.key for found in await client.filter_flow_run_input(run.id, key_prefix=base, limit=10, exclude_keys=set())}
    restored, whole = False, True
    for part in ("schema", "description"):
        if keyset[part] in present:
            continue
        kept = await _read(client, run.id, copy[part])
        if kept is None:
            whole = False
            continue
        try:
            await client.create_flow_run_input(run.id, keyset[part], kept)
            restored = True
        except httpx.HTTPStatusError as taken:
            if taken.response.status_code != 409:
                raise
    if restored:
        log.warning("run %s: its form (wait %s) was lost by a crash as it suspended; put back from its copy", run.name, state.state_details.pause_key)
    return restored, whole


# How long a run whose own save of its form failed keeps trying to put it back: well inside the 10
# minutes after which an answer or the sweeper puts back a form whose run died (resume.FORM_LOST_AFTER_SECONDS),
# so that the two never act on one run at once. Past it the run fails as before, and that check still applies.
PUT_BACK_PATIENCE_SECONDS = 300.0


async def put_form_back(client: Any, flow_run_id: UUID, pause_key: str, patience: float = PUT_BACK_PATIENCE_SECONDS) -> bool:
    """After Prefect's save of the form failed in this run's own process: if the run is suspended
    at ``pause_key``, put its form back from the copy, retrying a busy server (every HTTP error)
    for up to ``patience`` seconds, and return True once the form is whole. False for a run that
    is not suspended there (the failure came before the Suspended state: nothing to put back)."""
    give_up, pause = time.monotonic() + patience, 0.5
    while True:
        try:
            run = await client.read_flow_run(flow_run_id)
            state = run.state
            if not (state and state.is_paused() and state.state_details.pause_key == pause_key):
                return False
            if (await _put_back(client, run))[1]:
                return True
        except httpx.HTTPError as busy:
            log.warning("run %s: its form (wait %s) cannot be put back yet: %s", flow_run_id, pause_key, busy)
        if time.monotonic() > give_up:
            return False
        await asyncio.sleep(pause)
        pause = min(pause * 2, 10.0)


async def restore_lost_forms(client: Any, runs: list[Any], at_once: int = 16) -> list[str]:
    """``restore_form`` for each of ``runs`` (a page of suspended runs), ``at_once`` at a time."""
    gate = asyncio.Semaphore(at_once)

    async def one(run: Any) -> str | None:
        async with gate:
            return run.name if await restore_form(client, run) else None

    return [name for name in await asyncio.gather(*(one(run) for run in runs)) if name]


def newest_waiting_runs(count: int = 200) -> list[UUID]:
    """The runs of the ``count`` most recently opened waits still open: those a crash could have
    caught suspending."""
    from sqlmodel import select

    from aftersales.domain.models import Wait, WaitStatus
    from aftersales.integrations.db import session_scope

    with session_scope() as session:
        ids = session.exec(select(Wait.flow_run_id).where(Wait.status.in_([WaitStatus.OPEN, WaitStatus.EXPIRING]),
                                                          Wait.flow_run_id.is_not(None))
                           .order_by(Wait.opened_at.desc()).limit(count)).all()
    return [UUID(run_id) for run_id in dict.fromkeys(ids)]


async def check_suspended_forms(client: Any, deployment_ids: list[UUID], newest: int = 200, at_once: int = 4) -> dict[str, Any]:
    """Every suspended run of ``deployment_ids`` has its form, or gets it back from its copy: the
    runs of the ``newest`` most recently opened waits first, then the others, 200 a page and
    ``at_once`` at a time (gently: this runs beside serve's own work). Returns how many were
    checked and the names of those put back."""
    from prefect.client.schemas.filters import (DeploymentFilter, DeploymentFilterId, FlowRunFilter, FlowRunFilterId,
                                                FlowRunFilterState, FlowRunFilterStateType)
    from prefect.client.schemas.objects import StateType

    paused = FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
    of_ours = DeploymentFilter(id=DeploymentFilterId(any_=deployment_ids))
    seen: set = set()
    restored: list[str] = []
    recent = newest_waiting_runs(newest)
    if recent:
        runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=recent), state=paused),
                                           deployment_filter=of_ours, limit=len(recent))
        seen.update(run.id for run in runs)
        restored += await restore_lost_forms(client, runs, at_once=16)
    offset = 0
    while True:
        runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(state=paused), deployment_filter=of_ours, limit=200, offset=offset)
        if not runs:
            return {"checked": len(seen), "restored": restored}
        offset += len(runs)
        fresh = [run for run in runs if run.id not in seen]
        seen.update(run.id for run in fresh)
        restored += await restore_lost_forms(client, fresh, at_once=at_once)
