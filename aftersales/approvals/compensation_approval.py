"""§1.3 compensation approval — the one rule, used by the compensation process and by a complaint's
remedy (§1.10 step 4).

Within an agent's limit (20 CNY) a compensation needs no approval: the proposer's own call. Above
it each level approves in turn (``approval_chain``): up to the supervisor's limit (500 CNY) the
supervisor; above it the supervisor and then the manager (multi-level approval, 001 §三(二)). Each
level is a wait of ``compensation_approval_hours`` (24 h) from the previous level's answer or, when
that level did not answer, from its deadline (as every escalation counts, ``ladder.py``). Nobody approves twice or their own proposal.
A level that does not answer escalates to the next (``ladder.escalate``: ``case.escalated``); the
manager not answering declines — the shop gives no money away by default. A decline needs a note.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from aftersales.approvals.compensation_forms import FORMS, CompensationApproval
from aftersales.approvals.forms import ApprovalDecision
from aftersales.approvals.ladder import escalate
from aftersales.approvals.waits import WaitSpec, await_decision
from aftersales.domain.calendar import business_calendar
from aftersales.domain.compensation_rules import approval_chain, next_approver
from aftersales.domain.models import Case, Role, addressee_words
from aftersales.domain.rules import approval_level
from aftersales.domain.settings import get_settings


@dataclass(frozen=True)
class CompensationVerdict:
    approved: bool
    by: str  # the last approver (the proposer when no approval was needed), or who declined ("system" at the deadline)
    note: str
    by_deadline: bool  # declined because the top level did not answer
    answered_at: datetime  # what comes next counts from here


async def approve_compensation(case: Case, amount: Decimal, proposed_by: str, since: datetime,
                               step: str = "approval") -> CompensationVerdict:
    """Wait for every approval ``amount`` needs (module docstring); the waits are ``<step>-<level>``."""
    rules = get_settings().rules
    levels, approvers = approval_chain(amount, rules), []
    index = 0
    while index < len(levels):
        level = levels[index]
        spec = approval_wait(case, amount, level, step, proposed_by, approvers, since)
        decision = await await_decision(case, spec)
        since = spec.deadline if decision.by_deadline else decision.answered_at
        if decision.by_deadline:
            up = next_approver(level)
            if up is None:
                return CompensationVerdict(False, "system", unanswered(level), True, decision.answered_at)
            await escalate(case, spec, up, "overdue", level.value, spec.deadline, notify="compensation_escalated",
                           level=addressee_words(level.value)[1], level_zh=addressee_words(level.value)[0],
                           next_level=addressee_words(up.value)[1], next_level_zh=addressee_words(up.value)[0], hours=rules.compensation_approval_hours, default_action=unanswered(up))
            if up not in levels:
                levels.append(up)
            index += 1
            continue
        if decision.data.decision == ApprovalDecision.DECLINE:
            return CompensationVerdict(False, decision.actor, decision.data.note, False, decision.answered_at)
        approvers.append(decision.actor)
        index += 1
    return CompensationVerdict(True, approvers[-1] if approvers else proposed_by, "", False, since)


def unanswered(level: Role) -> str:
    hours = get_settings().rules.compensation_approval_hours
    if next_approver(level) is None:
        return f"{hours} 小时未审批，补偿不予发放 not approved in {hours} h: declined"
    return f"{hours} 小时未审批，升级给上一级 not approved in {hours} h: escalated to the next level"


def approval_wait(case: Case, amount: Decimal, level: Role, step: str, proposed_by: str, approvers: list[str],
                  since: datetime) -> WaitSpec:
    """One level's approval. The amount is checked against the approver's limit only at the level
    whose limit must cover it; an earlier level approves as a step of the chain."""
    rules = get_settings().rules

    def check(form: CompensationApproval) -> str | None:
        if form.staff_id == proposed_by:
            return f"提出补偿的人不能自己审批 {proposed_by} proposed this compensation and cannot approve it"
        if form.staff_id in approvers:
            return f"{form.staff_id} 已审批过上一级，须由另一人审批 {form.staff_id} approved an earlier level: another person must approve this one"
        if form.decision == ApprovalDecision.DECLINE and not form.note.strip():
            return "不同意须写明原因 a decline needs a note"
        return None

    top = next_approver(level) is None
    return WaitSpec(
        step=f"{step}-{level.value}",
        title=f"补偿审批 ¥{amount:.2f}（{'经理' if top else '主管'}）Compensation approval ({level.value})",
        form=FORMS[level],
        deadline=business_calendar().add_hours(since, rules.compensation_approval_hours),
        default_action=unanswered(level),
        default_input={"decision": ApprovalDecision.DECLINE.value, "note": unanswered(level)},
        addressed_to=level.value,
        amount=amount if approval_level(amount, rules) is level else None,
        decides=amount,
        check=check,
    )
