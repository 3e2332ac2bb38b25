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

from prefect import flow, task

from aftersales.approvals.compensation_forms import (
    CompensationApproval,
    ManagerCompensationApproval,
    SupervisorCompensationApproval,
)
from aftersales.approvals.forms import ApprovalDecision
from aftersales.approvals.waits import WaitSpec, await_decision
from aftersales.domain.calendar import business_calendar
from aftersales.domain.compensation_rules import approval_chain, next_approver
from aftersales.domain.models import Case, CaseStatus, Process, Role
from aftersales.domain.rules import approval_level
from aftersales.domain.settings import get_settings
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope
from aftersales.integrations.platform import PlatformClient
from aftersales.tasks.cases import close_case, load_case, per_case, record_step
from aftersales.tasks.compensation import compensation_request, pay_compensation
from aftersales.tasks.notify import notify_in_session, send_pending
from aftersales.tasks.policy import OUTSIDE_EFFECT
from aftersales.tasks.recovery import CASE_RUN

FORMS: dict[Role, type[CompensationApproval]] = {
    Role.SUPERVISOR: SupervisorCompensationApproval,
    Role.MANAGER: ManagerCompensationApproval,
}


@task(name="open-compensation-case", cache_key_fn=per_case("open"), **OUTSIDE_EFFECT)
async def open_compensation_case(case_id: str, order_id: str, form: str, amount: str, reason: str, requested_by: str,
                                 bearer: str, goods: list[str], flow_run_id: str) -> str:
    """§1.3 step 1: check the offer; record the case only if it is valid."""
    with session_scope() as session:
        if session.get(Case, case_id) is not None:
            return case_id
    async with PlatformClient() as platform:
        order, request = await compensation_request(platform, order_id, form, amount, reason, bearer, requested_by, goods)
    chain = [level.value for level in approval_chain(request.amount, get_settings().rules)]
    with session_scope() as session:
        case, created = case_store.create_case(
            session, id=case_id, process=Process.COMPENSATION, order_id=order_id, customer_id=order.customer.customer_id,
            requested_by=requested_by, reason=reason[:500], amount=request.amount, flow_run_id=flow_run_id,
            details={"form": request.form.value, "bearer": request.bearer, "goods": [list(g) for g in request.goods],
                     "approvals_needed": chain, "customer": order.customer.model_dump(mode="json")},
        )
        if created:
            case_store.record_event(session, case_id, "opened", requested_by, "case.opened",
                                    {"form": request.form.value, "amount": request.amount, "bearer": request.bearer,
                                     "goods": request.goods_items(), "approvals_needed": chain, "reason": reason})
            notify_in_session(session, case, "opened", "compensation_opened", staff_tags=[Role.AGENT.value],
                              compensation_form=request.form.value, requested_by=requested_by, bearer=request.bearer,
                              approvals=" → ".join(chain) or "无需审批 none (within the agent's limit)")
    send_pending(case_id)
    return case_id


@flow(name="compensation", **CASE_RUN)
async def compensation_flow(case_id: str, order_id: str, form: str, amount: str = "", reason: str = "",
                            requested_by: str = "S001", bearer: str = "seller", goods: list[str] | None = None) -> str:
    """An agent's compensation offer, from request through every approval level to payment (§1.3)."""
    from prefect.runtime import flow_run

    await open_compensation_case(case_id, order_id, form, amount, reason, requested_by, bearer, goods or [], flow_run.id)
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
