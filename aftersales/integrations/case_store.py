"""Reading and writing cases in the case database: idempotent, so a replayed flow writes once.

A suspended flow runs again from the top on every resume; each write here is keyed (case id, event
key, wait key) so that a second run finds the row and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from aftersales.domain.calendar import utcnow
from aftersales.domain.outcomes import Outcome, outcome_for_process
from aftersales.domain.models import Case, CaseEvent, CaseStatus, LedgerLine, Process, Wait, WaitStatus
from aftersales.domain.settings import get_settings
from aftersales.domain.stages import Stage, stage_of


class CaseNotFound(LookupError):
    pass


def get_case(session: Session, case_id: str) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise CaseNotFound(f"case {case_id} not found")
    return case


def create_case(session: Session, **fields: Any) -> tuple[Case, bool]:
    """Insert the case unless it exists. Returns (case, created)."""
    existing = session.get(Case, fields["id"])
    if existing is not None:
        return existing, False
    case = Case(**{"platform": get_settings().platform, **fields})
    try:
        with session.begin_nested():
            session.add(case)
    except IntegrityError:  # a concurrent duplicate request won the race
        return get_case(session, fields["id"]), False
    return case, True


def cases_without_run(session: Session, recorded_before: datetime, limit: int) -> list[Case]:
    """Open cases recorded before ``recorded_before`` whose run has not started (no run id yet)."""
    query = select(Case).where(Case.flow_run_id.is_(None), Case.status == CaseStatus.OPEN, Case.opened_at < recorded_before)
    return list(session.exec(query.order_by(Case.opened_at).limit(limit)).all())


def record_event(session: Session, case_id: str, key: str, actor: str, action: str, details: dict | None = None) -> tuple[CaseEvent, bool]:
    """Append an event to the case's audit trail, once per key."""
    existing = session.exec(select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.key == key)).first()
    if existing is not None:
        return existing, False
    event = CaseEvent(case_id=case_id, key=key, actor=actor, action=action, details=jsonable(details or {}))
    try:
        with session.begin_nested():
            session.add(event)
    except IntegrityError:
        existing = session.exec(select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.key == key)).one()
        return existing, False
    return event, True


def set_stage(session: Session, case_id: str, step: str, status: CaseStatus | None = None) -> Case:
    """The case is at ``step`` (a wait's step or a stage): its stage is the step without its round or
    level (``stages.stage_of``; a ValueError for a step that is no stage)."""
    stage = stage_of(step)
    case = get_case(session, case_id)
    if case.status == CaseStatus.CLOSED:
        return case  # a closed case stays closed; replays must not reopen it
    case.stage = stage
    if status is not None:
        case.status = status
    case.updated_at = utcnow()
    session.add(case)
    return case


def close_case(session: Session, case_id: str, outcome: Outcome | str) -> Case:
    """Close the case with one of its process's outcomes (``domain/outcomes.OUTCOMES``); any other
    word — unknown, or another process's — is a ``WrongOutcome`` (a ValueError) naming the process
    and its words, and nothing changes."""
    case = get_case(session, case_id)
    outcome = outcome_for_process(case.process, outcome)
    if case.status != CaseStatus.CLOSED:
        case.status = CaseStatus.CLOSED
        case.stage = Stage.CLOSED
        case.outcome = outcome.value
        case.closed_at = case.updated_at = utcnow()
        session.add(case)
    return case


def add_ledger_line(session: Session, *, idempotency_key: str, case: Case, kind: str, amount: Decimal, bearer: str, approved_by: str, platform_ref: str = "", note: str = "", responsible_department: str = "", platform_paid: bool = False) -> LedgerLine:
    """One ledger line, once per key. ``platform_paid``: the line records a payment the platform
    confirmed under ``platform_ref`` and ``amount`` is the platform's confirmed amount."""
    existing = session.exec(select(LedgerLine).where(LedgerLine.idempotency_key == idempotency_key)).first()
    if existing is not None:
        return existing
    line = LedgerLine(
        idempotency_key=idempotency_key,
        case_id=case.id,
        process=Process(case.process),
        order_id=case.order_id,
        kind=kind,
        amount=amount,
        bearer=bearer,
        approved_by=approved_by,
        platform_ref=platform_ref,
        platform_paid=platform_paid,
        note=note,
        responsible_department=responsible_department,
    )
    with session.begin_nested():
        session.add(line)
    return line


def timeline(session: Session, case_id: str) -> list[CaseEvent]:
    return list(session.exec(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.at, CaseEvent.id)))


def open_waits(session: Session, process: str | None = None, *, addressed_to: str | None = None,
               not_requested_by: str | None = None, claimed: bool = True, step: str | None = None,
               due_before: datetime | None = None, limit: int | None = None, offset: int = 0) -> list[tuple[Wait, Case]]:
    """Open waits, soonest deadline first; ``claimed`` False leaves out those the sweeper is
    answering with their default (a person's queue). ``limit`` and ``offset`` page them: a shop
    holds thousands at once, and a page of them is what a person can read (``count_open_waits``
    says how many there are in all)."""
    query = _open_waits_query(select(Wait, Case).join(Case, Case.id == Wait.case_id), process, addressed_to=addressed_to,
                              not_requested_by=not_requested_by, claimed=claimed, step=step, due_before=due_before)
    query = query.order_by(Wait.deadline, Wait.id).offset(offset)
    return list(session.exec(query.limit(limit) if limit is not None else query))


def count_open_waits(session: Session, process: str | None = None, *, addressed_to: str | None = None,
                     not_requested_by: str | None = None, claimed: bool = True, step: str | None = None,
                     due_before: datetime | None = None) -> int:
    """How many waits ``open_waits`` would list with the same filters, unpaged."""
    query = _open_waits_query(select(sa.func.count()).select_from(Wait).join(Case, Case.id == Wait.case_id), process,
                              addressed_to=addressed_to, not_requested_by=not_requested_by, claimed=claimed, step=step, due_before=due_before)
    return session.exec(query).one()


def _open_waits_query(query, process, *, addressed_to, not_requested_by, claimed, step, due_before):
    statuses = [WaitStatus.OPEN, WaitStatus.EXPIRING] if claimed else [WaitStatus.OPEN]
    query = query.where(Wait.status.in_(statuses))
    if process:
        query = query.where(Case.process == process)
    if addressed_to:
        query = query.where(Wait.addressed_to == addressed_to)
    if not_requested_by:
        query = query.where(Case.requested_by != not_requested_by)
    if step:
        query = query.where(Wait.step == step)
    if due_before is not None:
        query = query.where(Wait.deadline <= due_before)
    return query


def wait_by_key(session: Session, case_id: str, key: str) -> Wait:
    return session.exec(select(Wait).where(Wait.case_id == case_id, Wait.key == key)).one()


def wait_opened(session: Session, case_id: str, step: str) -> bool:
    """Whether the case ever waited at ``step`` (open or answered): a resumed run has been there."""
    return session.exec(select(Wait.id).where(Wait.case_id == case_id, Wait.step == step)).first() is not None


def find_wait(session: Session, case_id: str, step: str | None = None) -> Wait | None:
    """The case's currently open wait (optionally for a given step)."""
    query = select(Wait).where(Wait.case_id == case_id, Wait.status.in_([WaitStatus.OPEN, WaitStatus.EXPIRING]))
    if step:
        query = query.where(Wait.step == step)
    return session.exec(query.order_by(Wait.id.desc())).first()


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "value") and isinstance(getattr(value, "value"), str):  # enums
        return value.value
    return value


def ids(rows: Iterable[Any]) -> list[Any]:
    return [row.id for row in rows]
