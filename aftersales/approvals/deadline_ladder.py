"""The deadline ladder: escalation before and after a deadline, built from ordinary waits (``await_decision``).

002 §3.3 and §9 want a superior told *before* a deadline passes and the next one up *when* it has
passed (001 §三(二): above one's authority, or out of time, report upwards). A wait has one
deadline, so the ladder is a chain of waits for the same form, each with its own deadline and
default action:

1. ``<step>``            addressed to the handler,    deadline: the warning point → escalate to the supervisor;
2. ``<step>-supervisor`` addressed to the supervisor, deadline: the real deadline → escalate to the manager;
3. ``<step>-overdue-N``  addressed to the manager,    deadline: every further span → remind the manager again.

The deadline sweeper resumes each with its default input as ``system``; the ladder records the
escalation (an event, once per key) and tells the new addressee and the handler, then opens the
next wait. Whoever answers first — handler, supervisor or manager — ends the ladder with a normal
decision. Every escalation is in the case's trail as ``case.escalated`` / ``case.overdue_reminder``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from aftersales.approvals.waits import Decision, WaitSpec, await_decision
from aftersales.domain.calendar import shop_time
from aftersales.domain.models import Case, Role
from aftersales.tasks.cases import record_step


@dataclass(frozen=True)
class Ladder:
    """When to warn the supervisor, when the deadline passes, and how often to remind after it."""

    handler: str  # the role (staff tag) the work is addressed to first
    warn_at: datetime  # escalate to the supervisor here (before the deadline)
    due: datetime  # the real deadline: escalate to the manager here
    remind_every: timedelta  # after the deadline, the manager is reminded this often
    # the default actions of the first two rungs, when the general wording does not fit
    warning_action: str = ""
    overdue_action: str = ""


async def await_with_escalation(case: Case, spec: WaitSpec, ladder: Ladder) -> Decision:
    """Wait for ``spec``'s form, escalating on the way (see module docstring). Returns the first
    real answer; ``spec.deadline``/``addressed_to``/``default_action`` are set per rung."""
    due = shop_time(ladder.due)
    first = replace(
        spec, addressed_to=ladder.handler, deadline=ladder.warn_at,
        default_action=ladder.warning_action or f"截止 {due} 前的预警点仍未处理：升级给主管 not done by the warning point before the {due} deadline: escalated to the supervisor",
    )
    decision = await await_decision(case, first)
    if not decision.by_deadline:
        return decision
    await escalate(case, spec, Role.SUPERVISOR, ladder, "warning")

    second = replace(
        spec, step=f"{spec.step}-supervisor", addressed_to=Role.SUPERVISOR.value, deadline=ladder.due,
        default_action=ladder.overdue_action or f"截止 {due} 已过：升级给经理 the {due} deadline passed: escalated to the manager",
    )
    decision = await await_decision(case, second)
    if not decision.by_deadline:
        return decision
    await escalate(case, spec, Role.MANAGER, ladder, "overdue")

    reminder = 1
    while True:
        deadline = ladder.due + ladder.remind_every * reminder
        overdue = replace(
            spec, step=f"{spec.step}-overdue-{reminder}", addressed_to=Role.MANAGER.value, deadline=deadline,
            default_action=f"已超期，{shop_time(deadline)} 再次提醒经理 overdue: the manager is reminded again at {shop_time(deadline)}",
        )
        decision = await await_decision(case, overdue)
        if not decision.by_deadline:
            return decision
        await record_step(
            case.id, f"{spec.step}:overdue-reminder-{reminder}", "case.overdue_reminder", "system",
            details={"step": spec.step, "reminder": reminder, "deadline": ladder.due},
            notify="deadline_overdue_reminder", staff_tags=[Role.MANAGER.value],
            step=spec.title, deadline=ladder.due, reminder=reminder,
        )
        reminder += 1


async def escalate(case: Case, spec: WaitSpec, to: Role, ladder: Ladder, why: str) -> None:
    """Record the escalation and tell the new addressee (and the handler, who still may answer)."""
    tags = list(dict.fromkeys([to.value, ladder.handler]))
    await record_step(
        case.id, f"{spec.step}:escalated-{to.value}", "case.escalated", "system",
        details={"step": spec.step, "to": to.value, "why": why, "handler": ladder.handler,
                 "warn_at": ladder.warn_at, "deadline": ladder.due},
        notify="deadline_warning_escalated" if why == "warning" else "deadline_passed_escalated",
        staff_tags=tags, step=spec.title, deadline=ladder.due, handler=ladder.handler,
    )
