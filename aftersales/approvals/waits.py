"""Waits: a case suspends for a person or an outside event, with a deadline and a default action.

``await_decision`` is the one mechanism every flow uses. It

1. records the wait (key, deadline, default action, who it is addressed to) and tells them,
2. suspends the flow run with a typed form (``suspend_flow_run``: no process is held; the run
   survives restarts and shows a Resume form in the Prefect UI; a copy of the form is kept first,
   see ``paused_forms``),
3. when resumed, checks the input once (one-time code, role, limit, not the requester) and records
   the verdict on the wait row, in the same transaction as the burnt code,
4. on a rejected or escalated input — or a resume with no answer at all (the run set Scheduled by
   hand) — opens the next wait (``<step>-2``, …) with the reason shown above the form, and on an
   accepted one returns the decision.

Because a resumed flow runs again from the top, every step reads the verdict recorded for its key
first: a verdict is taken once, then replayed from the database, never re-checked.

Three things resume a wait: a person (UI or CLI), an outside event (intake API, poller), or the
deadline sweeper, which claims an expired wait (status ``expiring``) and submits its default input as
``system``. ``system`` is accepted only with that claim, so nobody can impersonate the sweeper.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx
from prefect import get_client, get_run_logger
from prefect.context import FlowRunContext
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput
from pydantic import ValidationError
from sqlmodel import select

from aftersales.approvals.auth import Verdict, check_staff_decision
from aftersales.approvals.forms import CARRIER_ACTOR, SYSTEM_ACTOR, EventForm, StaffForm, prefilled
from aftersales.approvals.links import link_for, personal_channel, who_decides
from aftersales.approvals.paused_forms import keep_copy, put_form_back
from aftersales.approvals.proof import is_page_signature, proven, signed_by_carrier, signed_by_page
from aftersales.domain.calendar import shop_time, utcnow
from aftersales.domain.masking import mask_phone, mask_text
from aftersales.domain.models import Case, CaseStatus, Role, Wait, WaitStatus, addressee_label
from aftersales.domain.rules import InvalidRequest
from aftersales.integrations import case_store
from aftersales.integrations.db import likely, session_scope
from aftersales.tasks.case_card import show_case
from aftersales.tasks.notify import case_context, notify_in_session, send_pending

log = logging.getLogger(__name__)

SWEEPER_CODE = "000000"


@dataclass
class WaitSpec:
    """What a flow waits for: the step, its form, its deadline and what happens when it passes."""

    step: str  # e.g. "seller-review"; the wait keys are "<step>-1", "<step>-2", …
    title: str  # shown to people: Chinese with English alongside
    form: type[RunInput]
    deadline: datetime
    default_action: str  # what the deadline does, in words
    default_input: dict[str, Any]  # what the sweeper submits when the deadline passes
    addressed_to: str  # a staff role (Apprise tag) or "buyer" for outside events
    prefill: dict[str, Any] = field(default_factory=dict)
    amount: Decimal | None = None  # checked against the approver's limit
    decides: Decimal | None = None  # the money this step decides, for the staff message (default: amount)
    check: Callable[[Any], str | None] | None = None  # form-specific rule; returns a reason to refuse
    facts: tuple[str, ...] = ()  # what the person needs to see to decide (markdown lines: the waybill, what the platform pays)
    announced: bool = False  # the addressee was told already (the ladder's escalation message): only their links go

    def __post_init__(self) -> None:
        # the wait's row keeps them (PostgreSQL enforces the column sizes that SQLite lets pass)
        for name, limit in (("step", 64), ("default_action", 200)):
            if len(getattr(self, name)) > limit:
                raise ValueError(f"a wait's {name} is at most {limit} characters: {getattr(self, name)!r}")


@dataclass(frozen=True)
class Decision:
    """An accepted answer to a wait."""

    data: Any  # the form, typed
    actor: str  # staff id, "buyer" or "system"
    by_deadline: bool  # the default action was applied
    wait_key: str
    answered_at: datetime  # the next step's deadline counts from here


async def await_decision(case: Case, spec: WaitSpec) -> Decision:
    """Suspend until the wait is answered; returns the accepted decision (see module docstring)."""
    flow_run = FlowRunContext.get().flow_run
    attempt, addressed_to, previous = 1, spec.addressed_to, None
    while True:
        key = f"{spec.step}-{attempt}"
        wait = open_wait(case, spec, key, addressed_to, previous, str(flow_run.id))
        if wait.status == WaitStatus.ANSWERED:
            return _decision_from_row(spec, wait)
        if wait.status in (WaitStatus.REJECTED, WaitStatus.ESCALATED):
            previous = wait
            addressed_to = wait.decision.get("escalate_to", addressed_to) if wait.status == WaitStatus.ESCALATED else wait.addressed_to
            attempt += 1
            continue
        form = prefilled(spec.form, description=describe(case, spec, wait), **spec.prefill)
        await show_case(case.id, wait, spec.title, flow_run_id=flow_run.id, facts=spec.facts)
        async with get_client() as client:  # a crash as the run suspends must not lose its form
            await keep_copy(client, flow_run.id, key, form)
        try:
            data = await suspend_flow_run(wait_for_input=form, key=key, timeout=None)
        except ValidationError:
            # Resumed with no answer at all (the run set Scheduled by hand, a Resume that sent no
            # form): Prefect fills the form from nothing and it does not validate. Refused like a
            # wrong answer, so the wait opens again under the next key and its addressee is told,
            # instead of the case failing. An answer that is there but does not fit stays an error.
            if await sent_at(flow_run.id, key) is not None:
                raise
            refuse_unanswered(case, spec, key)
            continue
        except httpx.HTTPError as failed:
            # Prefect set the run Suspended, then its save of the form failed (a server too busy to
            # write). Left so, the run would wait with a form nobody can answer until a restart or
            # the 10-minute check put it back: put it back now from the copy, then suspend again
            # under the same key, which Prefect refuses as already fired — and stops this process
            # as it would have. A failure before the Suspended state is raised as it was.
            get_run_logger().warning("wait %s: suspending failed (%s); a suspended run gets its form back from the wait's copy", key, failed)
            async with get_client() as client:
                if not await put_form_back(client, flow_run.id, key):
                    raise
            await suspend_flow_run(key=key, timeout=None)
            raise  # not reached: the repeated suspend raises Pause
        settle(case, spec, key, data, await sent_at(flow_run.id, key))


async def sent_at(flow_run_id: UUID, key: str) -> datetime | None:
    """When the answer reached the Prefect server, by the server's clock. A one-time code is checked
    as of then: on a busy machine the run may take a minute to resume, and a code that was current
    when the person sent it must not be refused for that (it is still accepted once only)."""
    async with get_client() as client:
        found = await client.filter_flow_run_input(flow_run_id, key_prefix=f"suspended-{key}-response", limit=1, exclude_keys=set())
    created = found[0].created if found else None
    return datetime.fromtimestamp(created.timestamp(), tz=timezone.utc) if created is not None else None


def open_wait(case: Case, spec: WaitSpec, key: str, addressed_to: str, previous: Wait | None, flow_run_id: str) -> Wait:
    """Record the wait once and tell the people it is addressed to (and why, if it reopened)."""
    notice = previous.reason if previous is not None else ""
    with session_scope() as session:
        wait = session.exec(select(Wait).where(Wait.case_id == case.id, Wait.key == key)).first()
        if wait is not None:
            return wait
        wait = Wait(
            case_id=case.id,
            key=key,
            step=spec.step,
            form=spec.form.__name__,
            flow_run_id=flow_run_id,
            addressed_to=addressed_to,
            deadline=spec.deadline,
            default_action=spec.default_action,
            default_input=case_store.jsonable(spec.default_input),
            notice=notice,
        )
        session.add(wait)
        case_store.set_stage(session, case.id, spec.step, CaseStatus.WAIT_BUYER if addressed_to == "buyer" else CaseStatus.WAIT_SELLER)
        case_store.record_event(session, case.id, f"{key}:opened", "system", "wait.opened", {"step": spec.step, "addressed_to": addressed_to, "deadline": spec.deadline, "default_action": spec.default_action, "notice": notice})
        if addressed_to != "buyer":
            # the amount in the message is the one being decided (spec.amount), never the order's value
            decides = spec.decides if spec.decides is not None else spec.amount
            kind = "approval" if decides is not None else "work"
            template = {None: f"{kind}_needed", WaitStatus.ESCALATED: f"{kind}_escalated", WaitStatus.REJECTED: "approval_rejected"}[previous.status if previous else None]
            amount = {"amount": f"{decides:.2f}"} if decides is not None else {}
            if not (spec.announced and previous is None):
                notify_in_session(
                    session, case, f"{key}:opened", template, staff_tags=[addressed_to],
                    step=spec.title, deadline=spec.deadline, default_action=spec.default_action, reason=notice, **amount,
                )
            send_links(session, case, wait, spec, decides)
    send_pending(case.id)
    return wait


def send_links(session, case: Case, wait: Wait, spec: WaitSpec, decides: Decimal | None) -> None:
    """Each member of the role gets the wait through their own channel with their approval link."""
    money = ((f"待审批金额:¥{decides:.2f}", f"Amount to decide: CNY {decides:.2f}") if decides is not None else
             ("此步骤不涉及审批金额", "No amount is decided at this step"))
    for member in who_decides(session, wait.addressed_to, case.requested_by):
        channel = personal_channel(member)
        if channel is None:
            continue
        notify_in_session(
            session, case, f"{wait.key}:link:{member.id}", "decide_by_link", staff_url=channel,
            staff_name=member.name, step=spec.title, deadline=spec.deadline, default_action=spec.default_action,
            decides=money[0], decides_en=money[1], approve_link=link_for(member.id, wait).url,
        )


def settle(case: Case, spec: WaitSpec, key: str, data: Any, sent: datetime | None = None) -> Verdict:
    """Check a resumed wait's input once and record the verdict (idempotent per wait key); a
    one-time code as of ``sent``, when the answer was submitted (default: now)."""
    with session_scope() as session:
        wait = session.exec(select(Wait).where(Wait.case_id == case.id, Wait.key == key).with_for_update()).one()
        if wait.status not in (WaitStatus.OPEN, WaitStatus.EXPIRING):
            return Verdict(wait.status.value if hasattr(wait.status, "value") else str(wait.status), wait.reason)
        actor, verdict = _judge(session, case, spec, wait, data, sent)
        values = {k: v for k, v in data.model_dump(mode="json").items() if k not in ("code", "proof")}
        wait.actor = actor
        wait.answered_at = utcnow()
        wait.reason = verdict.reason
        if verdict.outcome == "accepted":
            wait.status = WaitStatus.ANSWERED
            wait.decision = values
            case_store.set_stage(session, case.id, spec.step, CaseStatus.OPEN)
        elif verdict.outcome == "escalated":
            wait.status = WaitStatus.ESCALATED
            wait.decision = {**values, "escalate_to": verdict.escalate_to.value}
        else:
            wait.status = WaitStatus.REJECTED
            wait.decision = values
        session.add(wait)
        by_deadline = actor == SYSTEM_ACTOR
        action = f"wait.{verdict.outcome}" + (".by_deadline" if by_deadline and verdict.outcome == "accepted" else "")
        case_store.record_event(session, case.id, f"{key}:{verdict.outcome}", actor, action, {"step": spec.step, "input": values, "reason": verdict.reason, "default_action": spec.default_action if by_deadline else None})
        return verdict


UNANSWERED = "恢复时没有答复 the run was resumed without an answer: please answer again"


def refuse_unanswered(case: Case, spec: WaitSpec, key: str) -> None:
    """Record that the wait's run was resumed without any answer (once per wait key)."""
    with session_scope() as session:
        wait = session.exec(select(Wait).where(Wait.case_id == case.id, Wait.key == key).with_for_update()).one()
        if wait.status not in (WaitStatus.OPEN, WaitStatus.EXPIRING):
            return
        wait.status, wait.reason, wait.answered_at = WaitStatus.REJECTED, UNANSWERED, utcnow()
        session.add(wait)
        case_store.record_event(session, case.id, f"{key}:rejected", SYSTEM_ACTOR, "wait.rejected",
                                {"step": spec.step, "input": {}, "reason": UNANSWERED})
    log.warning("case %s: wait %s was resumed without an answer; opening it again", case.id, key)


def _judge(session, case: Case, spec: WaitSpec, wait: Wait, data: Any, sent: datetime | None = None) -> tuple[str, Verdict]:
    claimed_actor = data.staff_id if isinstance(data, StaffForm) else getattr(data, "reported_by", "buyer")
    if claimed_actor == SYSTEM_ACTOR:
        if wait.status != WaitStatus.EXPIRING:
            return claimed_actor, Verdict.rejected("只有到期处理程序可以 system 名义提交 only the deadline sweeper may answer as 'system'")
        return SYSTEM_ACTOR, Verdict.accepted()
    if spec.check is not None:
        try:
            problem = spec.check(data)
        except InvalidRequest as exc:  # e.g. an amount the money parser refuses: a reason, not a crash
            problem = exc.message
        if problem:
            return claimed_actor, Verdict.rejected(problem)
    if isinstance(data, StaffForm) and data.staff_id == CARRIER_ACTOR:
        # a verified carrier push (api: the push receiver), on a form that takes the carrier's word
        if not getattr(spec.form, "carrier_may_answer", False):
            return CARRIER_ACTOR, Verdict.rejected("此步骤不接受快递推送 this step does not take the carrier's push")
        if not signed_by_carrier(case.id, wait.key, data.model_dump(mode="json")):
            return CARRIER_ACTOR, Verdict.rejected("快递推送签名与此等待及所填内容不符 the carrier push's signature does not match this wait and these values")
        return CARRIER_ACTOR, Verdict.accepted()
    if isinstance(data, StaffForm):
        code: str | None = data.code
        if is_page_signature(data.code):
            if not signed_by_page(case.id, wait.key, data.model_dump(mode="json")):
                return data.staff_id, Verdict.rejected("审批页面签名与此等待及所填内容不符 the approval page's signature does not match this wait and these values")
            code = None  # the page identified the person (their link, or their code for a batch)
        verdict = check_staff_decision(
            session, staff_id=data.staff_id, code=code, case_id=case.id, requested_by=case.requested_by,
            allowed_roles=spec.form.allowed_roles, amount=spec.amount, at=sent,
        )
        return data.staff_id, verdict
    if isinstance(data, EventForm):
        return _judge_event(session, case, wait, data, sent)
    raise TypeError(f"unsupported wait form {type(data).__name__}")


def _judge_event(session, case: Case, wait: Wait, data: EventForm, sent: datetime | None = None) -> tuple[str, Verdict]:
    """An outside event is believed with our intake's proof for this wait and these values; or
    entered by a staff member with their code, and then it is theirs (any active role may)."""
    if data.staff_id or data.code:
        verdict = check_staff_decision(session, staff_id=data.staff_id, code=data.code, case_id=case.id,
                                       requested_by=case.requested_by, allowed_roles=(), amount=None, at=sent)
        return data.staff_id or data.reported_by, verdict
    if not data.proof:
        return data.reported_by, Verdict.rejected(
            "外部事件须经接入接口提交，或由员工填写工号和动态口令录入 an outside event needs our intake's proof, "
            "or a staff member's id and one-time code")
    if not proven(case.id, wait.key, data.model_dump(mode="json")):
        return data.reported_by, Verdict.rejected(
            "凭证与此等待及所填内容不符 the proof does not match this wait and these values")
    return data.reported_by, Verdict.accepted()


def _decision_from_row(spec: WaitSpec, wait: Wait) -> Decision:
    values = dict(wait.decision)
    if issubclass(spec.form, StaffForm) or (issubclass(spec.form, EventForm) and values.get("staff_id")):
        values["code"] = SWEEPER_CODE  # codes are burnt and not kept; the form only needs a value
    data = spec.form.model_validate(values)
    return Decision(data=data, actor=wait.actor or "", by_deadline=wait.actor == SYSTEM_ACTOR, wait_key=wait.key, answered_at=wait.answered_at)


def describe(case: Case, spec: WaitSpec, wait: Wait) -> str:
    """The markdown shown above the Resume form: what a supervisor needs to decide."""
    ctx = case_context(case)
    tz_deadline = shop_time(wait.deadline)
    lines = [
        f"### {spec.title}",
        f"**案件 Case** `{case.id}` · **订单 Order** `{case.order_id}` · **金额 Amount** ¥{case.amount}",
        # the form (and its description) is stored in Prefect: the reason is free text and may quote a contact
        f"**买家 Buyer** {ctx['customer_name']} {mask_phone(ctx['customer_phone'])} · **原因 Reason** {mask_text(case.reason) or '-'}",
        f"**处理人 Addressed to** {addressee_label(wait.addressed_to)} · **截止 Deadline** {tz_deadline} Asia/Shanghai",
        f"**到期默认 Default at deadline** {spec.default_action}",
        *(mask_text(fact) for fact in spec.facts),
    ]
    if wait.notice:
        lines.append(f"> ⚠️ 上次提交未通过 Previous answer not accepted: {wait.notice}")
    return "\n\n".join(lines)


# --- the deadline sweeper's side ---------------------------------------------------------------


def expired_waits(status: WaitStatus, as_of: datetime, case_id: str | None = None):
    """The waits of ``status`` whose deadline has passed, oldest deadline first (the open ones
    through the ``ix_wait_open_deadline`` index: the claim reads no wait that has not expired)."""
    # most waits that are not answered are open: said to SQLite's planner, which otherwise reads every
    # open wait through the status index and sorts them (10,000 of them: bench/hold_bench.py); the
    # few ``expiring`` ones it finds through that index
    is_status = Wait.status == status
    query = select(Wait).where(likely(is_status) if status == WaitStatus.OPEN else is_status, Wait.deadline <= as_of)
    return (query.where(Wait.case_id == case_id) if case_id else query).order_by(Wait.deadline)


def claim_expired(as_of: datetime, limit: int = 500, case_id: str | None = None, retry_claimed: bool = True,
                  excluding: frozenset[int] = frozenset()) -> list[Wait]:
    """Claim up to ``limit`` open waits whose deadline has passed (open → expiring), oldest first,
    but those ``excluding`` (already tried in this sweep), and (``retry_claimed``) the waits an
    earlier sweep claimed but could not resume."""
    claimed: list[Wait] = []

    def expired(status: WaitStatus):
        query = expired_waits(status, as_of, case_id)
        return query.where(Wait.id.not_in(excluding)) if excluding else query

    with session_scope() as session:
        rows = session.exec(expired(WaitStatus.OPEN).limit(limit).with_for_update(skip_locked=True)).all()
        for wait in rows:
            wait.status = WaitStatus.EXPIRING
            session.add(wait)
            claimed.append(wait)
    if not retry_claimed:
        return claimed
    # waits already claimed by an earlier sweep whose resume did not go through are retried
    with session_scope() as session:
        stale = session.exec(expired(WaitStatus.EXPIRING).limit(limit)).all()
    known = {w.id for w in claimed}
    return claimed + [w for w in stale if w.id not in known]


def default_run_input(wait: Wait) -> dict[str, Any]:
    values = dict(wait.default_input)
    if wait.addressed_to == "buyer":
        values["reported_by"] = SYSTEM_ACTOR
    else:
        values.update(staff_id=SYSTEM_ACTOR, code=SWEEPER_CODE)
    return values


def release_claim(wait_id: int) -> None:
    """Give a wait back when its run cannot be resumed (crashed or cancelled): it stays visible."""
    with session_scope() as session:
        wait = session.get(Wait, wait_id)
        if wait is not None and wait.status == WaitStatus.EXPIRING:
            wait.status = WaitStatus.OPEN
            session.add(wait)


def flow_run_uuid(wait: Wait) -> UUID:
    return UUID(wait.flow_run_id)


ROLE_TAGS = {role.value for role in Role}
