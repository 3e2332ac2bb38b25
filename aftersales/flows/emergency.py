"""Emergencies (突发事件) — rulebook §3.1 (001 §四).

1. recorded at once (``intake/emergency.py``) by a person, by an early-warning breach far above its
   threshold, or by a group complaint, with the cases and orders it touches and so every affected
   customer; the supervisors (and for a major one the managers) are told at once;
2. the supervisors start the contingency plan within hours by severity — an owner, the plan (the
   core problem first), how often customers hear, and the first update; late, the managers are told
   and reminded;
3. every affected customer is updated on schedule until it is resolved: each round is a wait due
   ``update_every_hours`` after the last update; nobody answering sends the standard update and the
   next round begins, so nobody forgets;
4. it closes only with its post-incident review (cause, actions, prevention) — no deadline closes
   it, the managers are reminded instead — and the review lands in the monthly statistics.
"""

from __future__ import annotations

from prefect import flow

from aftersales.approvals.ladder import await_with_escalation
from aftersales.approvals.waits import await_decision
from aftersales.domain.details import EmergencyDetails, details_of
from aftersales.domain.emergency_rules import UpdateStatus
from aftersales.domain.models import CaseStatus, Role
from aftersales.domain.outcomes import Outcome
from aftersales.tasks.cases import close_case, load_case, open_case
from aftersales.tasks.emergency import (contingency_plan, customer_update, next_due, record_the_review, review_wait, start_the_plan,
                                        update_affected_customers)
from aftersales.tasks.recovery import CASE_RUN


@flow(name="emergency", **CASE_RUN)
async def emergency_flow(case_id: str) -> str:
    """An emergency from its record to its review (§3.1)."""
    from prefect.runtime import flow_run

    await open_case(case_id, flow_run.id)
    case = load_case(case_id)
    if case.status == CaseStatus.CLOSED:
        return case.outcome or "closed"

    spec, ladder = contingency_plan(case)
    plan = await await_with_escalation(case, spec, ladder)
    await start_the_plan(case_id, plan)
    every = plan.data.update_every_hours
    due = next_due(plan, spec.deadline, every)
    await update_affected_customers(case_id, 1, plan.data.first_update, plan.actor, due)

    case = load_case(case_id)  # with its owner and plan, which each round's form shows
    round_ = 1
    while True:
        update = await await_decision(case, customer_update(case, round_, due))
        resolved = update.data.status == UpdateStatus.RESOLVED and not update.by_deadline
        due = next_due(update, due, every)
        await update_affected_customers(case_id, round_ + 1, update.data.message, update.actor, None if resolved else due)
        if resolved:
            break
        round_ += 1

    review = await await_with_escalation(case, *review_wait(case, update.answered_at))
    await record_the_review(case_id, review)
    found = review.data
    return await close_case(case_id, Outcome.RESOLVED, review.actor, notify="emergency_closed",
                            staff_tags=[Role.SUPERVISOR.value, Role.MANAGER.value], buyer=False,
                            title=details_of(case, EmergencyDetails).title, cause=found.cause, actions=found.actions, prevention=found.prevention)


def deployments(schedule) -> list:
    return [
        emergency_flow.to_deployment(
            name="emergency", tags=["process:emergency"],
            description="§3.1 突发事件 Emergencies: one run per emergency. Opened by `aftersales emergency open`, the early warning or a group complaint.",
        )
    ]
