"""§3 Emergencies as Prefect tasks: the plan on the case, an update to every affected customer
(once per round and customer, whatever the replays), and the review that closes it."""

from __future__ import annotations

from datetime import datetime, timedelta

from prefect import task

from aftersales.approvals.emergency_forms import ContingencyPlan, EmergencyUpdate, PostIncidentReviewForm
from aftersales.approvals.ladder import Ladder
from aftersales.approvals.waits import Decision, WaitSpec
from aftersales.domain import emergency_rules as rules_
from aftersales.domain.calendar import business_calendar
from aftersales.domain.details import EmergencyDetails, PostIncidentReview, details_of, store, with_changes
from aftersales.domain.emergency_rules import UpdateStatus
from aftersales.domain.models import Case, Role
from aftersales.domain.settings import get_settings
from aftersales.integrations import case_store
from aftersales.integrations import notify as outbox
from aftersales.integrations.db import session_scope
from aftersales.tasks.notify import case_context, notify_in_session, send_pending
from aftersales.tasks.policy import LOCAL_RECORD


def _facts(details: EmergencyDetails) -> tuple[str, ...]:
    return (f"**事件 Emergency** {details.title} · **严重程度 Severity** {rules_.SEVERITY_LABEL[details.severity]}",
            f"**影响范围 Scope** {details.scope}",
            f"**受影响 Affected** {len(details.customers)} 位客户 customers · {len(details.affected_orders)} 个订单 orders · "
            f"{len(details.affected_cases)} 个案件 cases")


def contingency_plan(case: Case) -> tuple[WaitSpec, Ladder]:
    """The supervisors start the plan within hours by severity; then the managers, reminded every span."""
    details = details_of(case, EmergencyDetails)
    rules = get_settings().rules
    span = timedelta(hours=rules.emergency_plan_hours[details.severity])
    spec = WaitSpec(
        step="contingency-plan", title="启动应急预案 Start the contingency plan", form=ContingencyPlan, deadline=case.opened_at + span,
        # what the deadline submits only moves the ladder up (await_with_escalation never takes it as the plan)
        default_action="", default_input={"owner": "system", "plan": "—", "first_update": "—"}, addressed_to=Role.SUPERVISOR.value,
        prefill={"update_every_hours": rules.emergency_update_hours[details.severity]}, facts=_facts(details),
    )
    ladder = Ladder(handler=Role.SUPERVISOR.value, first=spec.deadline, then=lambda passed: passed + span, first_up=Role.MANAGER,
                    warning_action=f"{int(span.total_seconds() // 3600)} 小时内未启动预案，升级给经理 no plan within the hours allowed: escalated to the manager")
    return spec, ladder


def customer_update(case: Case, round_: int, due: datetime) -> WaitSpec:
    """The next update to every affected customer is due at ``due``; nobody answering sends the
    standard one ("still being solved") and the next round begins."""
    details = details_of(case, EmergencyDetails)
    return WaitSpec(
        step=f"customer-update-{round_}", title=f"第 {round_} 次通报受影响客户 Update the affected customers (#{round_})",
        form=EmergencyUpdate, deadline=due, addressed_to=Role.SUPERVISOR.value,
        default_action="到点未通报：系统向每位受影响客户发送标准进展通报，并提醒负责人 not updated in time: every affected customer gets the "
                       "standard update, the owner is reminded",
        default_input={"status": UpdateStatus.ONGOING.value, "message": STANDARD_UPDATE},
        facts=_facts(details) + (f"**负责人 Owner** {details.owner} · **预案 Plan** {details.plan}",),
    )


STANDARD_UPDATE = "我们仍在全力处理，将按时继续通报进展 we are still working on it and will keep you posted"


def review_wait(case: Case, since: datetime) -> tuple[WaitSpec, Ladder]:
    """No default: without its review the emergency does not close; the managers are told and
    reminded instead, every span of working days."""
    calendar, days = business_calendar(), get_settings().rules.emergency_review_working_days
    details = details_of(case, EmergencyDetails)
    spec = WaitSpec(
        step="post-incident-review", title="事后复盘 Post-incident review", form=PostIncidentReviewForm,
        deadline=calendar.add_working_days(since, days), default_action="",
        default_input={"cause": "—", "actions": "—", "prevention": "—"},  # moves the ladder up, never taken as the review
        addressed_to=Role.SUPERVISOR.value, facts=_facts(details),
    )
    ladder = Ladder(handler=Role.SUPERVISOR.value, first=spec.deadline, then=lambda passed: calendar.add_working_days(passed, days),
                    first_up=Role.MANAGER, warning_action=f"{days} 个工作日未复盘，升级给经理(不复盘不结案) no review in {days} working days: "
                                                          "escalated to the manager (no review, no close)")
    return spec, ladder


@task(name="start-the-plan", cache_key_fn=lambda _ctx, p: f"emergency-plan-{p['case_id']}", persist_result=True, **LOCAL_RECORD)
async def start_the_plan(case_id: str, plan: Decision) -> None:
    form: ContingencyPlan = plan.data
    with session_scope() as session:
        case = case_store.get_case(session, case_id)
        store(case, with_changes(details_of(case, EmergencyDetails), owner=form.owner, plan=form.plan, update_every_hours=form.update_every_hours))
        session.add(case)
        case_store.set_stage(session, case_id, "customer-update")
        case_store.record_event(session, case_id, "plan", plan.actor, "emergency.plan_started",
                                {"owner": form.owner, "plan": form.plan, "update_every_hours": form.update_every_hours})
        notify_in_session(session, case, "plan", "emergency_plan_started", staff_tags=[Role.SUPERVISOR.value, Role.MANAGER.value],
                          owner=form.owner, plan=form.plan, hours=form.update_every_hours)
    send_pending(case_id)


@task(name="update-affected-customers", cache_key_fn=lambda _ctx, p: f"emergency-update-{p['case_id']}-{p['round_']}", persist_result=True,
      **LOCAL_RECORD)
async def update_affected_customers(case_id: str, round_: int, message: str, actor: str, next_update: datetime | None) -> int:
    """The same update to every affected customer, each in their own channel and language (once per
    round and customer: the outbox key), and one line in the trail."""
    with session_scope() as session:
        case = case_store.get_case(session, case_id)
        details = details_of(case, EmergencyDetails)
        context = {**case_context(case), "title": details.title, "update": message,
                   "next_update": next_update or "已解决，不再另行通报 resolved: this is the last update"}
        for customer in details.customers:
            outbox.enqueue(session, case_id=case_id, key=f"{case_id}:update-{round_}:{customer.customer_id}", audience="customer",
                           template="emergency_update", to_url=outbox.customer_url(customer), language=customer.language,
                           context={**context, "customer_name": customer.name})
        store(case, with_changes(details, updates_sent=max(details.updates_sent, round_)))
        session.add(case)
        case_store.record_event(session, case_id, f"update-{round_}", actor, "emergency.customers_updated",
                                {"round": round_, "customers": len(details.customers), "message": message, "next_update": next_update})
    send_pending(case_id)
    return len(details.customers)


@task(name="record-the-review", cache_key_fn=lambda _ctx, p: f"emergency-review-{p['case_id']}", persist_result=True, **LOCAL_RECORD)
async def record_the_review(case_id: str, review: Decision) -> None:
    form: PostIncidentReviewForm = review.data
    with session_scope() as session:
        case = case_store.get_case(session, case_id)
        done = PostIncidentReview(cause=form.cause, actions=form.actions, prevention=form.prevention, by=review.actor)
        store(case, with_changes(details_of(case, EmergencyDetails), review=done))
        session.add(case)
        case_store.record_event(session, case_id, "review", review.actor, "emergency.reviewed", done.model_dump(mode="json"))


def next_due(decision: Decision, due: datetime, every_hours: int) -> datetime:
    """The next update is due ``every_hours`` after this one was sent — a late sweep gives nobody
    extra time: a default update counts from when it was due."""
    return (due if decision.by_deadline else decision.answered_at) + timedelta(hours=every_hours)
