"""What the tests read back from the case database and the notification receiver."""

from __future__ import annotations

import json

from sqlmodel import select

from aftersales.domain.models import CaseEvent, LedgerLine, Wait
from aftersales.integrations.db import session_scope


def events(case_id: str) -> list[CaseEvent]:
    with session_scope() as session:
        return list(session.exec(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)))


def ledger(case_id: str) -> list[LedgerLine]:
    with session_scope() as session:
        return list(session.exec(select(LedgerLine).where(LedgerLine.case_id == case_id).order_by(LedgerLine.id)))


def wait_row(case_id: str, key: str) -> Wait:
    with session_scope() as session:
        return session.exec(select(Wait).where(Wait.case_id == case_id, Wait.key == key)).one()


def text(messages) -> str:
    """Everything the given received messages said, as one searchable string."""
    return json.dumps([m.json for m in messages], ensure_ascii=False)
