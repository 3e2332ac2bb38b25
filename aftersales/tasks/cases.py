"""Case steps as Prefect tasks: open a case, record a step, close it.

Tasks that must happen once per case carry a business cache key (``open-<case>``), not Prefect's
default policy (which includes the task's source and changes on redeploy): a resumed flow runs from
the top and skips them through their persisted results. The database writes are idempotent too.
"""

from __future__ import annotations

from typing import Any

from prefect import task

from aftersales.domain.details import Opening, details_of
from aftersales.domain.models import Case, CaseStatus
from aftersales.domain.outcomes import Outcome
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope
from aftersales.tasks.case_card import show_case
from aftersales.tasks.notify import notify_in_session, send_pending
from aftersales.domain.rules import InvalidRequest
from aftersales.tasks.policy import LOCAL_RECORD, no_retry_on_invalid


def per_case(step: str):
    """A cache key function: one result per case and step, whatever the code version."""

    def key(_context, parameters: dict[str, Any]) -> str:
        return f"{step}-{parameters['case_id']}"

    return key


def load_case(case_id: str) -> Case:
    with session_scope() as session:
        return case_store.get_case(session, case_id)


@task(name="open-case", cache_key_fn=per_case("open"), persist_result=True, retry_condition_fn=no_retry_on_invalid, **LOCAL_RECORD)
async def open_case(case_id: str, flow_run_id: str) -> str:
    """Every process's first step. The request was checked and the case recorded at the door
    (``aftersales.intake``), before this run started; here the case gets its run, the trail its
    first event and the first messages go out (now they can link to the run) — once, whatever the
    replays."""
    with session_scope() as session:
        case = session.get(Case, case_id)
        if case is None:
            # a run started by hand (the deployment's "Run" button) has no checked request behind it
            raise InvalidRequest("case_not_recorded", f"案件 {case_id} 未经受理，请用 `aftersales <流程> open` 或接口开案 case {case_id} was "
                                 f"not opened through intake: open cases with `aftersales <process> open` or the intake API")
        if not case.flow_run_id:
            case.flow_run_id = flow_run_id
            session.add(case)
        opening = details_of(case).opening or Opening(actor=case.requested_by)
        _event, created = case_store.record_event(session, case_id, "opened", opening.actor or case.requested_by,
                                                  "case.opened", opening.event)
        if created and opening.notice:
            notify_in_session(session, case, "opened", opening.notice, staff_tags=opening.staff_tags or None,
                              buyer=opening.buyer, **opening.message_context())
    send_pending(case_id)
    return case_id


@task(name="record-step", **LOCAL_RECORD)
async def record_step(case_id: str, key: str, action: str, actor: str = "system", stage: str | None = None,
                details: dict | None = None, notify: str | None = None, staff_tags: list[str] | None = None,
                buyer: bool = False, **context: Any) -> None:
    """Append an event (once per key), move the case's stage and enqueue its messages together."""
    with session_scope() as session:
        case_store.record_event(session, case_id, key, actor, action, details)
        case = case_store.set_stage(session, case_id, stage) if stage else case_store.get_case(session, case_id)
        if notify:
            notify_in_session(session, case, key, notify, staff_tags=staff_tags, buyer=buyer, **context)
    send_pending(case_id)


@task(name="close-case", **LOCAL_RECORD)
async def close_case(case_id: str, outcome: Outcome, actor: str, notify: str | None = None, staff_tags: list[str] | None = None,
               buyer: bool = True, **context: Any) -> str:
    outcome = Outcome(outcome)  # one of the shop's outcomes, or nothing is written (ValueError)
    with session_scope() as session:
        case_store.record_event(session, case_id, "closed", actor, "case.closed", {"outcome": outcome, **context})
        case = case_store.close_case(session, case_id, outcome)
        if notify:
            notify_in_session(session, case, "closed", notify, staff_tags=staff_tags, buyer=buyer, outcome=outcome, **context)
        if buyer:
            # §3: then ask the buyer for a score (once per case; never blocks the close)
            from aftersales.reporting.satisfaction import request_after_close

            request_after_close(session, case)
    send_pending(case_id)
    await show_case(case_id)  # the final card; the run leaves every queue
    return outcome.value


def case_is_closed(case_id: str) -> bool:
    return load_case(case_id).status == CaseStatus.CLOSED
