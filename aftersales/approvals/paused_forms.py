"""The form a suspended run shows, kept so that a crash cannot lose it.

Prefect's ``suspend_flow_run`` first sets the run Suspended and only then saves the form's schema
and description (the inputs the UI's Resume modal, our CLI and the sweeper read). A process that
dies between the two (``kill -9``, the machine's power) leaves a run that waits for an answer
nobody can give: the UI has no form and the server refuses any input. So before suspending, the
wait keeps a copy of its form under keys of its own (``copy-<wait key>-…``), and ``make run``'s
serve puts back any form a suspended run lacks from that copy when it starts, which is when the
runs of a dead process are looked at (``aftersales.deployments.serve``).
"""

from __future__ import annotations

import asyncio
import logging
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
    whose process is gone: Prefect's own save, still to come, would find the keys taken."""
    state = run.state
    if not (state and state.is_paused() and state.state_details.run_input_keyset and state.state_details.pause_key):
        return False
    keyset, copy = keyset_from_paused_state(state), copy_keyset(state.state_details.pause_key)
    restored = False
    for part in ("schema", "description"):
        if await _read(client, run.id, keyset[part]) is not None:
            continue
        kept = await _read(client, run.id, copy[part])
        if kept is None:
            continue
        try:
            await client.create_flow_run_input(run.id, keyset[part], kept)
            restored = True
        except httpx.HTTPStatusError as taken:
            if taken.response.status_code != 409:
                raise
    if restored:
        log.warning("run %s: its form (wait %s) was lost by a crash as it suspended; put back from its copy", run.name, state.state_details.pause_key)
    return restored


async def restore_lost_forms(client: Any, runs: list[Any]) -> list[str]:
    """``restore_form`` for each of ``runs`` (a page of suspended runs), a few at a time."""
    gate = asyncio.Semaphore(16)

    async def one(run: Any) -> str | None:
        async with gate:
            return run.name if await restore_form(client, run) else None

    return [name for name in await asyncio.gather(*(one(run) for run in runs)) if name]

