"""Escalating a stage that only a person can do, when it is not done in time (001 §三(二)).

Used by the repair flow (§1.5, each workshop stage) and the negative-review follow-up (§1.6, the
department's cause). Built on ``await_decision``, not beside it. (``deadline_ladder.py`` is the
complaint flow's ladder with a warning point before the deadline; this one escalates at it.)

A stage waits for its form until its deadline; when the deadline passes (the deadline sweeper
answers as ``system``), the stage is escalated to the supervisor with a fresh wait of the same form
and another ``days`` working days, then to the manager, who is reminded every ``days`` working days
until somebody answers. Every escalation is a ``case.escalated`` event, and the new addressee is
told by the wait's own message (``approval_needed``).
"""

from __future__ import annotations

from dataclasses import replace

from aftersales.approvals.waits import Decision, WaitSpec, await_decision
from aftersales.domain.calendar import business_calendar
from aftersales.domain.models import Case, Role
from aftersales.tasks.cases import record_step

LADDER = (Role.SUPERVISOR, Role.MANAGER)


def escalating(days: int) -> str:
    """The default action of a stage that escalates when its deadline passes."""
    return (f"{days} 个工作日未处理，升级给主管(再升级给经理) not done in {days} working days: "
            "escalated to the supervisor (then the manager)")


async def await_or_escalate(case: Case, spec: WaitSpec, days: int) -> Decision:
    """Wait for ``spec``; each time its deadline passes, escalate one level up and wait again."""
    decision = await await_decision(case, spec)
    round_ = 0
    while decision.by_deadline:
        round_ += 1
        to = LADDER[min(round_ - 1, len(LADDER) - 1)]
        await record_step(case.id, f"{spec.step}:escalated-{round_}", "case.escalated", "system",
                          details={"step": spec.step, "to": to.value, "round": round_, "deadline": spec.deadline})
        deadline = business_calendar().add_working_days(decision.answered_at, days)
        decision = await await_decision(case, replace(
            spec, step=f"{spec.step}-escalated-{round_}", addressed_to=to.value, deadline=deadline,
            default_action=escalating(days) if to != Role.MANAGER else
            f"{days} 个工作日仍未处理，再次提醒经理 still not done in {days} working days: the manager is reminded again",
        ))
    return decision
