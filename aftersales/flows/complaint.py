"""Complaint (投诉) — rulebook §1.10 (002 §2–§5; 000 ch. 4).

The flow chart (002 §4.2), step by step:

1. receive: channel, category code (1001–5999), level 1–4, customer, contact, order (optional),
   object, cause, demand; routed to quality / logistics / finance / after-sales, special
   complaints (high value, famous brand, group) to their team (002 §5.2);
2. confirm: the first response to the customer within 2/4/6/8 hours by level;
3. investigate, and
4. propose a solution within 24/48/72 hours (level 4: 5 working days) and ask the customer; a
   compensation is approved by amount first (§1.3 limits); the customer may reject → a new proposal;
5. execute once the customer agrees (compensation paid once; return/exchange invited);
6. follow up: the result is fed back to the customer within 3 working days (002 §4.3).

Every deadline of steps 2–4 escalates on the way (``approvals/ladder.py``): the supervisor
is told at the warning point *before* the deadline, the manager *when* it has passed, and then
reminded until somebody answers; each escalation is an event and a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from prefect import flow

from aftersales.approvals.complaint_forms import (
    CustomerAnswer,
    CustomerAnswerChoice,
    FirstResponse,
    Investigation,
    Remedy,
    ResponsibleParty,
    ResultFeedback,
    Solution,
)
from aftersales.approvals.compensation_approval import approve_compensation
from aftersales.approvals.ladder import Ladder, await_with_escalation, escalate
from aftersales.approvals.waits import Decision, WaitSpec, await_decision
from aftersales.domain import complaint_rules as rules_
from aftersales.domain.calendar import business_calendar
from aftersales.domain.compensation_rules import CompensationForm
from aftersales.domain.details import ComplaintDetails, details_of
from aftersales.domain.complaint_rules import Clock, Satisfaction, feedback_channel_problem, outcome_for
from aftersales.domain.models import Case, CaseStatus, Role
from aftersales.domain.outcomes import Outcome
from aftersales.domain.rules import parse_amount
from aftersales.domain.settings import get_settings
from aftersales.tasks.cases import close_case, load_case, open_case, record_step
from aftersales.tasks.complaint import record_proposal
from aftersales.tasks.money import Compensation, pay_compensation
from aftersales.tasks.recovery import CASE_RUN


@flow(name="complaint", **CASE_RUN)
async def complaint_flow(case_id: str) -> str:
    """A customer's complaint, from receipt to the result fed back (§1.10).

    The complaint (customer, contact, what it is about) is recorded in the case database at intake;
    the run gets only the case id, so no contact detail is in Prefect."""
    from prefect.runtime import flow_run

    await open_case(case_id, flow_run.id)  # 002 §4.2 step 1, receive: recorded at the door, the department told
    case = load_case(case_id)
    if case.status == CaseStatus.CLOSED:
        return case.outcome or "closed"

    first = await await_with_escalation(case, first_response(case), ladder(case, response_clock(case)))
    await record_step(case_id, "confirmed", "complaint.confirmed", first.actor, stage="investigation",
                      details={"message": first.data.message, "confirmed_facts": first.data.confirmed_facts},
                      notify="complaint_first_response", buyer=True, message=first.data.message)

    findings = await await_with_escalation(case, investigation(case), ladder(case, plan_clock(case)))
    await record_step(case_id, "investigated", "complaint.investigated", findings.actor, stage="solution",
                      details={"findings": findings.data.findings, "responsible_party": findings.data.responsible_party.value})

    agreed = await agree_on_a_solution(case, findings)
    await carry_out(case, agreed, findings)

    feedback_wait = result_feedback(case, agreed.agreed_at)
    feedback = await await_decision(case, feedback_wait)
    if feedback.by_deadline:
        # 002 §4.3 missed: the supervisor is told, and the customer gets the written result from us.
        await escalate(case, feedback_wait, Role.SUPERVISOR, "overdue", handler(case), feedback_wait.deadline,
                       notify="complaint_feedback_overdue")
        return await close_case(case_id, Outcome.RESOLVED, "system", notify="complaint_closed", staff_tags=[handler(case)],
                                note="系统书面反馈 written result sent by the system", complaint_remedy=agreed.remedy.value)
    outcome = outcome_for(feedback.data.satisfaction)
    tags = [handler(case)] + ([Role.SUPERVISOR.value] if feedback.data.satisfaction == Satisfaction.UNSATISFIED else [])
    return await close_case(case_id, outcome, feedback.actor, notify="complaint_closed", staff_tags=list(dict.fromkeys(tags)),
                            note=feedback.data.note, complaint_remedy=agreed.remedy.value, channel=feedback.data.channel.value)


# --- step 4: propose, approve a compensation, ask the customer; again if they reject ---------------


@dataclass(frozen=True)
class Agreed:
    round: int
    remedy: Remedy
    amount: Decimal
    approved_by: str
    agreed_at: datetime  # handling ends here; the feedback clock starts


async def agree_on_a_solution(case: Case, findings: Decision) -> Agreed:
    round_, clock = 1, plan_clock(case)
    while True:
        proposal = await await_with_escalation(case, propose_solution(case, round_), ladder(case, clock))
        remedy = proposal.data.remedy
        amount = parse_amount(proposal.data.compensation_amount, "compensation_amount") if remedy == Remedy.COMPENSATION else Decimal("0")
        await record_proposal(case.id, round_, proposal.actor, remedy.value, amount, proposal.data.message)
        approved_by, decided_at = proposal.actor, proposal.answered_at
        if amount > 0:
            # §1.3, the same rule as the compensation process: by amount, level after level
            approval = await approve_compensation(load_case(case.id), amount, proposal.actor, proposal.answered_at,
                                                  step=f"compensation-approval-{round_}")
            if not approval.approved:
                await record_step(case.id, f"solution-{round_}:refused", "complaint.compensation_refused", approval.by,
                                  details={"round": round_, "amount": amount, "note": approval.note, "by_deadline": approval.by_deadline},
                                  notify="complaint_compensation_refused", staff_tags=[handler(case)], note=approval.note, compensation=amount)
                round_, clock = round_ + 1, replan(case, approval.answered_at)
                continue
            approved_by, decided_at = approval.by, approval.answered_at
        await record_step(case.id, f"solution-{round_}:sent", "complaint.solution_sent", "system", stage="customer-answer",
                          details={"round": round_, "remedy": remedy.value, "amount": amount, "approved_by": approved_by},
                          notify="complaint_proposal", buyer=True, message=proposal.data.message, compensation=amount,
                          answer_days=get_settings().rules.complaint_customer_answer_days)
        answer = await await_decision(case, customer_answer(case, round_, decided_at))
        if answer.data.answer == CustomerAnswerChoice.REJECT and not answer.by_deadline:
            await record_step(case.id, f"solution-{round_}:rejected", "complaint.solution_rejected", answer.actor,
                              details={"round": round_, "comment": answer.data.comment},
                              notify="complaint_proposal_rejected", staff_tags=[handler(case)], comment=answer.data.comment)
            round_, clock = round_ + 1, replan(case, answer.answered_at)
            continue
        await record_step(case.id, f"solution-{round_}:agreed", "complaint.solution_agreed", answer.actor, stage="execution",
                          details={"round": round_, "by_deadline": answer.by_deadline, "comment": answer.data.comment})
        return Agreed(round_, remedy, amount, approved_by, answer.answered_at)


# --- step 5: execute ------------------------------------------------------------------------------


BEARER = {ResponsibleParty.SUPPLIER: "supplier", ResponsibleParty.CARRIER: "carrier", ResponsibleParty.PLATFORM: "platform"}


async def carry_out(case: Case, agreed: Agreed, findings: Decision) -> None:
    """002 §5.1: pay the compensation once (the ledger says who bears it: the responsible party,
    else the shop); a return or exchange is invited through its own process."""
    if agreed.remedy == Remedy.COMPENSATION:
        bearer = BEARER.get(findings.data.responsible_party, "seller")
        reason = f"投诉补偿 complaint compensation ({case.id})"
        await pay_compensation(case.id, f"solution-{agreed.round}",
                               Compensation(form=CompensationForm.CASH, amount=agreed.amount, bearer=bearer, reason=reason, note=reason,
                                            ledger_kind="compensation", department=details_of(case, ComplaintDetails).routing.department.value),
                               agreed.approved_by, "complaint_compensation_paid", [Role.FINANCE.value], {"compensation": agreed.amount})
    await record_step(case.id, "handled", "complaint.handled", agreed.approved_by, stage="feedback",
                      details={"remedy": agreed.remedy.value, "amount": agreed.amount},
                      notify="complaint_handled", buyer=True, complaint_remedy=agreed.remedy.value, compensation=agreed.amount)


# --- the waits of §1.10, each with its deadline and default action --------------------------------


def handler(case: Case) -> str:
    return details_of(case, ComplaintDetails).routing.handler.value


def received_at(case: Case) -> datetime:
    return details_of(case, ComplaintDetails).received_at


def response_clock(case: Case) -> Clock:
    return rules_.first_response_clock(received_at(case), case.level, get_settings().rules, business_calendar())


def plan_clock(case: Case) -> Clock:
    return rules_.plan_clock(received_at(case), case.level, get_settings().rules, business_calendar())


def replan(case: Case, since: datetime) -> Clock:
    return rules_.replan_clock(since, case.level, get_settings().rules, business_calendar())


def ladder(case: Case, clock: Clock) -> Ladder:
    return Ladder.warn_before(handler(case), warn_at=clock.warn_at, due=clock.due, remind_every=clock.span)


def _required(value: str, zh: str, en: str) -> str | None:
    return None if value.strip() else f"请填写{zh} {en} is required"


def first_response(case: Case) -> WaitSpec:
    return WaitSpec(
        step="first-response",
        title=f"投诉首次回复({case.level}级) First response to a level-{case.level} complaint",
        form=FirstResponse, deadline=response_clock(case).due, default_action="", addressed_to=handler(case),
        default_input={"message": "", "confirmed_facts": ""},
        check=lambda form: _required(form.message, "给客户的回复", "the message to the customer"),
    )


def investigation(case: Case) -> WaitSpec:
    return WaitSpec(
        step="investigation",
        title=f"投诉调查({details_of(case, ComplaintDetails).category_label}) Investigate the complaint",
        form=Investigation, deadline=plan_clock(case).due, default_action="", addressed_to=handler(case),
        default_input={"findings": "", "responsible_party": ResponsibleParty.SELLER.value},
        check=lambda form: _required(form.findings, "调查结果", "the findings"),
    )


def propose_solution(case: Case, round_: int) -> WaitSpec:
    def check(form: Solution) -> str | None:
        if not form.message.strip():
            return "请填写给客户的方案说明 the message to the customer is required"
        amount = parse_amount(form.compensation_amount, "compensation_amount", allow_zero=True)
        if form.remedy == Remedy.COMPENSATION:
            if amount <= 0:
                return "现金补偿须填写大于 0 的金额 compensation needs an amount above 0"
            if not case.order_id:
                return "无订单的投诉不能经平台支付补偿 a complaint without an order cannot be compensated through the platform"
        elif amount != 0:
            return f"只有 compensation 方案才填写补偿金额 only the compensation remedy has an amount (got {amount})"
        return None

    return WaitSpec(
        step=f"solution-{round_}",
        title=f"拟定处理方案(第 {round_} 次) Propose a solution (round {round_})",
        form=Solution, deadline=plan_clock(case).due, default_action="", addressed_to=handler(case),
        default_input={"remedy": Remedy.APOLOGY.value, "compensation_amount": "0.00", "message": ""},
        check=check,
    )


def customer_answer(case: Case, round_: int, since: datetime) -> WaitSpec:
    days = get_settings().rules.complaint_customer_answer_days
    return WaitSpec(
        step=f"customer-answer-{round_}",
        title=f"等待客户确认方案(第 {round_} 次) Waiting for the customer to agree (round {round_})",
        form=CustomerAnswer,
        deadline=business_calendar().add_days(since, days),
        default_action=f"客户 {days} 天未答复，视为同意并执行方案 no answer in {days} days: taken as agreed, the solution is carried out",
        default_input={"answer": CustomerAnswerChoice.AGREE.value, "comment": "超时视为同意 taken as agreed at the deadline"},
        addressed_to="buyer",
    )


def result_feedback(case: Case, handled_at: datetime) -> WaitSpec:
    days = get_settings().rules.complaint_feedback_working_days
    return WaitSpec(
        step="result-feedback",
        title="处理结果反馈客户 Tell the customer the result",
        form=ResultFeedback,
        deadline=business_calendar().add_working_days(handled_at, days),
        default_action=f"{days} 个工作日未反馈：升级给主管，系统书面告知客户结果 not fed back in {days} working days: escalated to the supervisor, the system sends the written result",
        default_input={"channel": "sms", "satisfaction": Satisfaction.SATISFIED.value, "note": "系统书面反馈 written result sent by the system"},
        addressed_to=handler(case),
        check=lambda form: feedback_channel_problem(case.level, form.channel),
    )


def deployments(schedule) -> list:
    return [
        complaint_flow.to_deployment(
            name="complaint", tags=["process:complaint"],
            description="§1.10 投诉 Complaint: one run per complaint, named after the case. Opened by `aftersales complaint open`.",
        )
    ]
