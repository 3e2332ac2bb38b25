"""Resuming a wait from outside the Prefect UI: our CLI and the intake API use this.

The Prefect server validates the input against the form's schema and keeps the run paused on bad
input; the flow then checks who answered (see ``waits.settle``). ``wait_for_verdict`` lets a caller
see that check's outcome.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from uuid import UUID

import httpx

from prefect import get_client
from prefect.client.schemas.responses import SetStateStatus
from prefect.input.run_input import keyset_from_paused_state
from sqlmodel import select

from aftersales.domain.masking import mask_text
from aftersales.domain.models import Wait, WaitStatus
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope


class ResumeRefused(RuntimeError):
    pass


def current_wait(case_id: str, step: str | None = None) -> Wait:
    with session_scope() as session:
        case_store.get_case(session, case_id)
        wait = case_store.find_wait(session, case_id, step)
    if wait is None:
        raise ResumeRefused(f"case {case_id} has no open wait" + (f" for step {step}" if step else ""))
    return wait


async def resume_wait(case_id: str, values: dict[str, Any], step: str | None = None) -> Wait:
    """Answer the case's open wait with ``values`` (the form's fields)."""
    wait = current_wait(case_id, step)
    async with get_client() as client:
        run = await client.read_flow_run(UUID(wait.flow_run_id))
        if not (run.state and run.state.is_paused() and run.state.state_details.pause_key == wait.key):
            raise ResumeRefused(f"case {case_id} is not waiting at {wait.key} right now (run state: {run.state.name if run.state else 'unknown'}); try again in a moment")
        schema = await _form_schema(client, run)
        answer = await client.resume_flow_run(run.id, run_input=typed(values, schema))
    if answer.status != SetStateStatus.ACCEPT:
        reason = getattr(answer.details, "reason", "") or str(answer.details)
        # Prefect's validation message quotes the input it refused: never echo more than a prefix
        raise ResumeRefused(f"{wait.key}: {mask_text(reason[:300])}" + ("…" if len(reason) > 300 else ""))
    return wait


async def _form_schema(client: Any, run: Any, patience: float = 10.0) -> dict[str, Any]:
    """The paused run's form schema. Prefect saves it just after the run enters Paused, so a
    resume that comes at once can find the run paused and the schema not yet there (404)."""
    key = keyset_from_paused_state(run.state)["schema"]
    give_up = time.monotonic() + patience
    while True:
        try:
            return json.loads(await client.read_flow_run_input(run.id, key))
        except httpx.HTTPStatusError as missing:
            if missing.response.status_code != 404:
                raise
            if time.monotonic() > give_up:
                raise ResumeRefused(f"run {run.id} is paused but its form is not saved yet; try again in a moment") from None
            await asyncio.sleep(0.2)


TRUE, FALSE = {"true", "yes", "y", "1", "是"}, {"false", "no", "n", "0", "否"}


def typed(values: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Text typed on a command line (``--set review_updated=true``) as the form's field types: a
    yes/no field gets a boolean, a whole-number field an integer. Anything else is left as given,
    for the server to check against the form."""
    fields = schema.get("properties") or {}
    result = dict(values)
    for name, value in values.items():
        kind = (fields.get(name) or {}).get("type")
        if not isinstance(value, str):
            continue
        text = value.strip().lower()
        if kind == "boolean" and text in TRUE | FALSE:
            result[name] = text in TRUE
        elif kind == "integer" and text.lstrip("-").isdigit():
            result[name] = int(text)
    return result


async def wait_for_verdict(case_id: str, key: str, timeout: float = 120) -> Wait:
    """Poll until the flow has judged the answer to wait ``key`` (accepted, rejected, escalated)."""
    deadline = time.monotonic() + timeout
    while True:
        with session_scope() as session:
            wait = session.exec(select(Wait).where(Wait.case_id == case_id, Wait.key == key)).one()
        if wait.status not in (WaitStatus.OPEN, WaitStatus.EXPIRING):
            return wait
        if time.monotonic() > deadline:
            raise TimeoutError(f"{case_id} {key} still {wait.status} after {timeout:.0f} s")
        await asyncio.sleep(0.2)  # a query of one row: cheap, and the CLI answers sooner
