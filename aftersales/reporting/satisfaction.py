"""Satisfaction checks (docs/rulebook.md §3; 000 §7.1.3, §7.1.4; 001 §二 after handling).

After a case closes the buyer gets a link ``{api}/satisfaction/{token}``: a small page where the buyer
gives a score (1–5) and an optional comment (``api/satisfaction_page.py``); a platform may also relay
the answer as JSON to the same address. The token is the case id signed with HMAC-SHA256 and is the
only credential: a link cannot be forged or moved to another case, and it needs no table. The answer lands as the case
event ``satisfaction-answer`` (its unique key makes it one answer per case, also under a race) and
in the case's details (``satisfaction``) for reading. A quarterly survey asks again where no answer came.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, select
from sqlmodel import Session

from aftersales.domain.calendar import utcnow
from aftersales.domain.details import SatisfactionAnswer, details_of, store, with_changes
from aftersales.domain.models import Case, CaseEvent, CaseStatus
from aftersales.integrations import case_store
from aftersales.integrations import notify as outbox
from aftersales.integrations.db import session_scope
from aftersales.reporting.links import api_public_url, satisfaction_key

log = logging.getLogger(__name__)

ANSWER_KEY = "satisfaction-answer"
REQUEST_KEY = "satisfaction-request"
ANSWERED, REQUESTED = "satisfaction.answered", "satisfaction.requested"
_SIGNATURE_CHARS = 22  # 132 bits of the HMAC: unguessable, and the link stays short


class BadToken(ValueError):
    pass


class AlreadyAnswered(ValueError):
    pass


class NotClosed(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signature(case_id: str) -> str:
    return _b64(hmac.new(satisfaction_key(), b"satisfaction:" + case_id.encode(), hashlib.sha256).digest())[:_SIGNATURE_CHARS]


def make_token(case_id: str) -> str:
    return f"{_b64(case_id.encode())}.{_signature(case_id)}"


def read_token(token: str) -> str:
    """The case id a token was made for; BadToken if it was not made by us."""
    try:
        encoded, signature = token.split(".", 1)
        case_id = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise BadToken("malformed satisfaction link") from None
    if not hmac.compare_digest(signature.encode(), _signature(case_id).encode()):
        raise BadToken("invalid satisfaction link")
    return case_id


def survey_link(case_id: str) -> str:
    return f"{api_public_url()}/satisfaction/{make_token(case_id)}"


def request_in_session(session: Session, case: Case, key: str = REQUEST_KEY, template: str = "satisfaction_request",
                       **context: str) -> bool:
    """Ask the buyer of a closed case for a score, in the caller's transaction; once per ``key``.

    Returns False (and asks nothing) when the case has no buyer to ask or is already scored.
    """
    customer = details_of(case).customer
    if not customer or has_answer(session, case.id):
        return False
    _event, created = case_store.record_event(session, case.id, key, "system", REQUESTED, {"template": template, **context})
    if not created:
        return False  # asked already (a replayed close, a re-run survey)
    outbox.enqueue(
        session, case_id=case.id, key=f"{case.id}:{key}:buyer", audience=outbox.CUSTOMER, template=template,
        context={"order_id": case.order_id, "survey_link": survey_link(case.id), **context},
        to_url=outbox.buyer_url(details_of(case)), language=customer.language or "zh-CN",
    )
    return True


def request_after_close(session: Session, case: Case) -> None:
    """The hook in ``tasks/cases.py:close_case``. A problem here (a buyer without a channel, a
    template error) must never stop a case from closing: it is logged and the savepoint undone;
    the quarterly survey asks later."""
    try:
        with session.begin_nested():
            request_in_session(session, case)
    except Exception as exc:
        log.warning("satisfaction request for %s not queued: %s", case.id, exc)


def has_answer(session: Session, case_id: str) -> bool:
    return session.execute(select(CaseEvent.id).where(CaseEvent.case_id == case_id, CaseEvent.key == ANSWER_KEY)).first() is not None


@dataclass(frozen=True)
class LinkState:
    """What the page shows for a link: the case's order, whether it is closed, the answer given."""
    case_id: str
    order_id: str
    closed: bool
    score: int | None
    language: str


def link_state(token: str) -> LinkState:
    """Raises BadToken (not our link) or LookupError (no such case)."""
    case_id = read_token(token)
    with session_scope() as session:
        case = case_store.get_case(session, case_id)
        answer = session.execute(select(CaseEvent.details).where(CaseEvent.case_id == case_id, CaseEvent.key == ANSWER_KEY)).first()
        customer = details_of(case).customer
        return LinkState(case_id, case.order_id, case.status == CaseStatus.CLOSED,
                         int(answer[0]["score"]) if answer else None, (customer.language if customer else "") or "zh-CN")


@dataclass(frozen=True)
class Answer:
    case_id: str
    score: int
    at: datetime


def record_answer(token: str, score: int, comment: str = "", now: datetime | None = None) -> Answer:
    """The buyer's score for a closed case: once. Raises BadToken, LookupError, NotClosed,
    AlreadyAnswered or ValueError (score outside 1–5)."""
    case_id = read_token(token)
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise ValueError("score must be a whole number from 1 to 5 / 评分应为 1–5 的整数")
    moment = now or utcnow()
    with session_scope() as session:
        case = case_store.get_case(session, case_id)
        if case.status != CaseStatus.CLOSED:
            raise NotClosed(f"case {case_id} is not closed yet")
        event, created = case_store.record_event(session, case_id, ANSWER_KEY, "buyer", ANSWERED,
                                                 {"score": score, "comment": comment[:500]})
        if not created:
            raise AlreadyAnswered(f"case {case_id} was already rated")
        # through the case's details model; a new dict, so SQLAlchemy sees the JSON column change
        answer = SatisfactionAnswer(score=score, at=moment, comment=comment[:500])
        store(case, with_changes(details_of(case), satisfaction=answer))
        session.add(case)
    return Answer(case_id, score, moment)


def unscored_closed_cases(closed_from: datetime, closed_to: datetime, batch_size: int = 500) -> Iterator[list[str]]:
    """Ids of cases closed in [from, to) without a score, in batches (keyset pagination: no
    long-running read while the batches are written)."""
    after = ""
    while True:
        answered = exists().where(and_(CaseEvent.case_id == Case.id, CaseEvent.key == ANSWER_KEY))
        query = (select(Case.id).where(Case.status == CaseStatus.CLOSED, Case.closed_at >= closed_from,
                                       Case.closed_at < closed_to, Case.id > after, ~answered)
                 .order_by(Case.id).limit(batch_size))
        with session_scope() as session:
            ids = list(session.execute(query).scalars())
        if not ids:
            return
        yield ids
        after = ids[-1]


def survey(label: str, closed_from: datetime, closed_to: datetime, batch_size: int = 500) -> dict[str, int]:
    """The quarterly survey: ask every buyer of a case closed in the period who gave no score.
    Idempotent per survey ``label`` (e.g. 2026Q4): a re-run asks nobody twice."""
    counts = {"asked": 0, "skipped": 0}
    key = f"satisfaction-survey-{label}"
    for ids in unscored_closed_cases(closed_from, closed_to, batch_size):
        with session_scope() as session:
            for case_id in ids:
                case = case_store.get_case(session, case_id)
                try:
                    with session.begin_nested():
                        asked = request_in_session(session, case, key=key, template="satisfaction_survey", quarter=label)
                except Exception as exc:  # one buyer without a channel does not stop the survey
                    log.warning("survey %s: %s not asked: %s", label, case_id, exc)
                    asked = False
                counts["asked" if asked else "skipped"] += 1
    return counts
