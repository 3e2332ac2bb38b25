"""Compensation (补偿) — rulebook §1.3 (004 fig. 5.3; 001 §三(二) multi-level approval).

The flow chart, step by step:

1. an agent offers the buyer cash, part of the price, a coupon or goods to settle a problem; the
   offer is checked against the order (and, for goods, the catalogue's stock);
2. within the agent's limit (``agent_limit``, 20 CNY) it needs no approval;
3. above it, each level approves in turn, each a wait of ``compensation_approval_hours`` (24 h):
   up to ``supervisor_limit`` (500 CNY) the supervisor; above it the supervisor and then the manager.
   Nobody approves twice, nobody approves their own request;
4. a level that does not answer in time escalates to the next level; the manager not answering in
   time declines the compensation and the agent is told (the shop does not give money away by
   default);
5. a declined compensation closes and the agent is told, with the approver's note;
6. the approved compensation is paid once through the platform and written to finance's ledger
   (kind compensation / coupon / goods, the bearer, approved by the last approver).
"""

from __future__ import annotations

from datetime import datetime

from prefect import flow

from aftersales.approvals.compensation_forms import (
    CompensationApproval,
    ManagerCompensationApproval,
    SupervisorCompensationApproval,
)
from aftersales.approvals.forms import ApprovalDecision
from aftersales.approvals.waits import WaitSpec, await_decision
from aftersales.domain.calendar import business_calendar
from aftersales.domain.compensation_rules import approval_chain, next_approver
from aftersales.domain.models import Case, CaseStatus, Role
from aftersales.domain.rules import approval_level
from aftersales.domain.settings import get_settings
from aftersales.tasks.cases import close_case, load_case, open_case, record_step
from aftersales.tasks.compensation import pay_compensation
from aftersales.tasks.recovery import CASE_RUN

FORMS: dict[Role, type[CompensationApproval]] = {
    Role.SUPERVISOR: SupervisorCompensationApproval,
    Role.MANAGER: ManagerCompensationApproval,
}


@flow(name="compensation", **CASE_RUN)
async def compensation_flow(case_id: str, order_id: str, form: str, amount: str = "", reason: str = "",
                            requested_by: str = "S001", bearer: str = "seller", goods: list[str] | None = None) -> str:
    """An agent's compensation offer, from request through every approval level to payment (§1.3)."""
    from prefect.runtime import flow_run

    await open_case(case_id, flow_run.id)  # §1.3 step 1: checked and recorded at the door
    case = load_case(case_id)
    if case.status == CaseStatus.CLOSED:
        return case.outcome or "closed"

    rules = get_settings().rules
    levels = approval_chain(case.amount, rules)
    approved_by, approvers, since = case.requested_by, [], case.opened_at  # within the agent's limit: the agent's own call
    index = 0
    while index < len(levels):
        level = levels[index]
        decision = await await_decision(case, approval_at(case, level, approvers, since))
        since = decision.answered_at
        if decision.by_deadline:
            up = next_approver(level)
            if up is None:  # the top level did not answer: no compensation, and the agent must know
                return await close_case(case_id, "declined_no_answer", "system", notify="compensation_declined",
                                        staff_tags=[Role.AGENT.value], buyer=False, note=unanswered(level))
            await record_step(case_id, f"escalated-{level.value}", "compensation.escalated", "system",
                              details={"from": level.value, "to": up.value, "hours": rules.compensation_approval_hours},
                              notify="compensation_escalated", staff_tags=[up.value, level.value], level=level.value,
                              next_level=up.value, hours=rules.compensation_approval_hours, default_action=unanswered(up))
            if up not in levels:
                levels.append(up)
            index += 1
            continue
        if decision.data.decision == ApprovalDecision.DECLINE:
            return await close_case(case_id, "declined", decision.actor, notify="compensation_declined",
                                    staff_tags=[Role.AGENT.value], buyer=False, note=decision.data.note)
        approvers.append(decision.actor)
        approved_by = decision.actor
        index += 1

    await pay_compensation(case_id, approved_by)
    return await close_case(case_id, "compensated", approved_by)


# --- the wait of each approval level -------------------------------------------------------------


def unanswered(level: Role) -> str:
    hours = get_settings().rules.compensation_approval_hours
    if next_approver(level) is None:
        return f"{hours} 小时未审批，补偿不予发放并通知客服 not approved in {hours} h: declined, the agent is told"
    return f"{hours} 小时未审批，升级给上一级 not approved in {hours} h: escalated to the next level"


def approval_at(case: Case, level: Role, approvers: list[str], since: datetime) -> WaitSpec:
    """§1.3: one level's approval. The amount is checked against the approver's limit only at the
    level whose limit must cover it; an earlier level approves as a step of the chain."""
    rules = get_settings().rules

    def check(form: CompensationApproval) -> str | None:
        if form.staff_id in approvers:
            return f"{form.staff_id} 已审批过上一级，须由另一人审批 {form.staff_id} approved an earlier level: another person must approve this one"
        if form.decision == ApprovalDecision.DECLINE and not form.note.strip():
            return "不同意须写明原因 a decline needs a note for the agent"
        return None

    top = next_approver(level) is None
    return WaitSpec(
        step=f"approval-{level.value}",
        title=f"补偿审批（{'经理' if top else '主管'}）Compensation approval ({level.value})",
        form=FORMS[level],
        deadline=business_calendar().add_hours(since, rules.compensation_approval_hours),
        default_action=unanswered(level),
        default_input={"decision": ApprovalDecision.DECLINE.value, "note": unanswered(level)},
        addressed_to=level.value,
        amount=case.amount if approval_level(case.amount, rules) is level else None,
        check=check,
    )


# --- running it ------------------------------------------------------------------------------------


def deployments(schedule) -> list:
    return [
        compensation_flow.to_deployment(
            name="compensation", tags=["process:compensation"],
            description="§1.3 补偿 Compensation: one run per case; multi-level approval by amount. Opened by `aftersales compensation open`.",
        )
    ]
