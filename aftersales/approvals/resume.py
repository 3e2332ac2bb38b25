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
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.input.run_input import keyset_from_paused_state
from sqlmodel import select

from aftersales.approvals.forms import CARRIER_ACTOR
from aftersales.approvals.paused_forms import restore_form
from aftersales.approvals.proof import carrier_signature, complete, event_proof, page_signature
from aftersales.domain.calendar import utcnow
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


async def resume_wait(case_id: str, values: dict[str, Any], step: str | None = None, *, page_for: str | None = None,
                      key: str | None = None, by_carrier: bool = False) -> Wait:
    """Answer the case's open wait with ``values`` (the form's fields). ``page_for``: the approval
    page has identified this staff member (``approvals/links.py``) and signs their answer for wait
    ``key`` in the code's place. ``by_carrier``: the push receiver has verified a carrier push and
    signs it as the carrier's answer (taken only by a form that allows it)."""
    wait = current_wait(case_id, step)
    if key is not None and wait.key != key:
        raise ResumeRefused(f"案件 {case_id} 的 {key} 已处理完毕 {key} of case {case_id} is no longer open (now: {wait.key})")
    async with get_client() as client:
        run = await suspended_at(client, UUID(wait.flow_run_id), wait.key)
        if not (run.state and run.state.is_paused() and run.state.state_details.pause_key == wait.key):
            raise ResumeRefused(f"case {case_id} is not waiting at {wait.key} right now (run state: {run.state.name if run.state else 'unknown'}); try again in a moment")
        schema = await form_schema(client, run)
        run_input = as_form_input(values, schema)
        if by_carrier:
            run_input["staff_id"] = CARRIER_ACTOR
            run_input["code"] = carrier_signature(case_id, wait.key, complete(run_input, schema))
        elif page_for is not None:
            run_input["staff_id"] = page_for
            run_input["code"] = page_signature(case_id, wait.key, complete(run_input, schema))
        elif "proof" in (schema.get("properties") or {}) and not run_input.get("staff_id"):
            # an outside event through our intake: signed, so the flow believes it (approvals/proof.py)
            run_input["proof"] = event_proof(case_id, wait.key, complete(run_input, schema))
        answer = await client.resume_flow_run(run.id, run_input=run_input)
    if answer.status != SetStateStatus.ACCEPT:
        reason = getattr(answer.details, "reason", "") or str(answer.details)
        # Prefect's validation message quotes the input it refused: never echo more than a prefix
        raise ResumeRefused(f"{wait.key}: {mask_text(reason[:300])}" + ("…" if len(reason) > 300 else ""))
    return wait


ON_ITS_WAY = {StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING}
# How long an answer that comes as the run suspends waits for it (its Suspended state, then the
# form Prefect saves after it) before "try again": 10 s was too short on a loaded 2-core machine (CI).
SUSPENDING_PATIENCE_SECONDS = 30.0


async def suspended_at(client: Any, run_id: UUID, key: str, patience: float = SUSPENDING_PATIENCE_SECONDS) -> Any:
    """The wait's run, once it is suspended at ``key``. A run that has just recorded the wait is
    still on its way to suspending (its form copy, its card): it is given a few seconds, so an
    answer or the sweeper's default that comes at once goes through. A run that was already resumed
    from ``key`` (Prefect keeps the keys it paused at) is not waited for."""
    give_up = time.monotonic() + patience
    while True:
        run = await client.read_flow_run(run_id)
        state = run.state
        paused_here = state is not None and state.is_paused() and state.state_details.pause_key == key
        passed = key in (run.empirical_policy.pause_keys or ()) and not paused_here
        if paused_here or passed or state is None or state.type not in ON_ITS_WAY or time.monotonic() > give_up:
            return run
        await asyncio.sleep(0.2)


# A run suspended this long ago whose form is still missing has lost it: Prefect's own save, after
# the Suspended state, gave up (its client retries a busy server for about a minute — seen with
# 100 cases opened at once on a SQLite Prefect server: `database is locked` → 503) or its process died.
FORM_LOST_AFTER_SECONDS = 600


async def form_schema(client: Any, run: Any, patience: float = SUSPENDING_PATIENCE_SECONDS) -> dict[str, Any]:
    """The paused run's form schema. Prefect saves it just after the run enters Paused, so a
    resume that comes at once can find the run paused and the schema not yet there (404). A run
    paused for longer than ``FORM_LOST_AFTER_SECONDS`` without it has lost it: it is put back from
    the wait's copy (``paused_forms``), as serve does at its start, instead of waiting for a restart."""
    key = keyset_from_paused_state(run.state)["schema"]
    give_up = time.monotonic() + patience
    restored = False
    while True:
        try:
            return json.loads(await client.read_flow_run_input(run.id, key))
        except httpx.HTTPStatusError as missing:
            if missing.response.status_code != 404:
                raise
            if not restored and run.state.timestamp and (utcnow() - run.state.timestamp).total_seconds() > FORM_LOST_AFTER_SECONDS:
                restored = True
                if await restore_form(client, run):
                    continue
            if time.monotonic() > give_up:
                raise ResumeRefused(f"run {run.id} is paused but its form is not saved yet; try again in a moment") from None
            await asyncio.sleep(0.2)


TRUE, FALSE = {"true", "yes", "y", "1", "是"}, {"false", "no", "n", "0", "否"}


def as_form_input(values: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """An answer as the form takes it. Text typed on a command line (``--set review_updated=true``)
    gets the form's field types: a yes/no field a boolean, a whole-number field an integer. A
    required field left out gets the value the form shows prefilled (its default), as the UI
    sends it: a choice is required in the form (``forms.required_in_the_form``) yet prefilled.
    Anything else is left as given, for the server to check against the form."""
    fields = schema.get("properties") or {}
    result = dict(values)
    for name in schema.get("required") or ():
        if name not in result and "default" in (fields.get(name) or {}):
            result[name] = fields[name]["default"]
    for name, value in values.items():
        kind = (fields.get(name) or {}).get("type")
        if not isinstance(value, str):
            continue
        text = value.strip().lower()
        choices = _choices(fields.get(name) or {}, schema)
        if choices and value not in choices:
            raise ResumeRefused(f"{name}={value!r} 不是可选项 is not one of the form's choices: {', '.join(choices)}")
        if kind == "boolean":
            if text not in TRUE | FALSE:
                raise ResumeRefused(f"{name}={value!r} 须为是/否 is a yes/no field: true or false")
            result[name] = text in TRUE
        elif kind == "integer" and text.lstrip("-").isdigit():
            result[name] = int(text)
    return result


def _choices(field: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """The values a choice field takes (its enum, inline or behind a ``$ref``), else []."""
    if "enum" in field:
        return [str(choice) for choice in field["enum"]]
    refs = [field.get("$ref")] + [part.get("$ref") for part in field.get("allOf", [])]
    for ref in filter(None, refs):
        target = (schema.get("definitions") or schema.get("$defs") or {}).get(ref.rsplit("/", 1)[-1]) or {}
        if "enum" in target:
            return [str(choice) for choice in target["enum"]]
    return []


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
