"""The wait ladder: one way to wait with a deadline and escalate when it passes (001 §三(二): out of
time or above one's authority, report upwards; 002 §3.3, §9: a superior is told before a deadline
passes and the next one up when it has passed). Every process uses it; built from ordinary waits
(``await_decision``).

A wait has one deadline, so a ladder is a chain of waits for the same form, one rung each:

1. ``<step>``             addressed to the handler,    until the first deadline → escalated to the supervisor;
2. ``<step>-supervisor``  addressed to the supervisor, until the deadline proper → escalated to the manager;
3. ``<step>-overdue-N``   addressed to the manager,    reminded again at every further span.

Each rung's deadline counts from the previous rung's deadline — never from when the sweeper
happened to run, so a late sweep does not give anybody extra time — the same in every process (a
clock's rungs are the rulebook's fixed points, complaints and disputes; a stage's next rung is one
span after the last, repairs and reviews; §1.3's levels are 24 h each).
The deadline sweeper resumes a rung with its default input as ``system``; the ladder records the
escalation (``case.escalated``, key ``<step>:escalated-<role>``) or the reminder
(``case.overdue_reminder``, key ``<step>:overdue-reminder-N``) once, tells the new addressee and
the handler, and opens the next rung. Whoever answers first — handler, supervisor or manager —
ends the ladder with a normal decision. ``escalate`` is the same record and message for a process
whose next level is not a rung of this ladder (§1.3's approval chain, a complaint's feedback).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from aftersales.approvals.waits import Decision, WaitSpec, await_decision
from aftersales.domain.calendar import business_calendar, shop_time
from aftersales.domain.models import Case, Role, addressee_words
from aftersales.tasks.cases import record_step


@dataclass(frozen=True)
class Ladder:
    """Whom a wait goes to as its deadlines pass, and when each rung's deadline is."""

    handler: str  # the role (staff tag) the work is addressed to first
    first: datetime  # the handler's deadline
    then: Callable[[datetime], datetime]  # the next rung's deadline, from the one that passed
    due: datetime | None = None  # a clock's deadline proper (``first`` is then its warning point)
    # the default actions of the first two rungs, when the general wording does not fit
    warning_action: str = ""
    overdue_action: str = ""
    # whom the first escalation goes to: the supervisor, or the manager when the supervisors are the
    # handler (an emergency's plan); then the second rung is the manager's and reminders follow
    first_up: Role = Role.SUPERVISOR

    @classmethod
    def warn_before(cls, handler: str, warn_at: datetime, due: datetime, remind_every: timedelta, **wording: str) -> Ladder:
        """The rulebook's clock (complaints, disputes): fixed points counted from the receipt — the
        supervisor at ``warn_at``, the manager at ``due``, reminded every ``remind_every`` after."""
        return cls(handler=handler, first=warn_at, due=due, then=lambda passed: due if passed < due else passed + remind_every,
                   **wording)

    @classmethod
    def per_stage(cls, spec: WaitSpec, working_days: int) -> Ladder:
        """A stage a person must do in ``working_days`` (repairs, a review's cause): past its
        deadline the supervisor has one more span, then the manager, reminded every span."""
        calendar = business_calendar()
        return cls(handler=spec.addressed_to, first=spec.deadline, then=lambda passed: calendar.add_working_days(passed, working_days),
                   warning_action=stage_default(working_days),
                   overdue_action=f"再 {working_days} 个工作日仍未处理，升级给经理 still not done {working_days} working days later: "
                                  "escalated to the manager")


def stage_default(working_days: int) -> str:
    """The default action of a stage that escalates when its deadline passes."""
    return (f"{working_days} 个工作日未处理，升级给主管(再升级给经理) not done in {working_days} working days: "
            "escalated to the supervisor (then the manager)")


async def await_with_escalation(case: Case, spec: WaitSpec, ladder: Ladder) -> Decision:
    """Wait for ``spec``'s form, escalating on the way (module docstring). Returns the first real
    answer; each rung sets its own ``addressed_to``, ``deadline`` and ``default_action``."""
    due = shop_time(ladder.due) if ladder.due else ""
    first = replace(
        spec, addressed_to=ladder.handler, deadline=ladder.first,
        default_action=ladder.warning_action or f"截止 {due} 前的预警点仍未处理：升级给主管 not done by the warning point before the {due} deadline: escalated to the supervisor",
    )
    decision = await await_decision(case, first)
    if not decision.by_deadline:
        return decision
    deadline = ladder.then(first.deadline)
    up = ladder.first_up
    await escalate(case, spec, up, "warning" if ladder.due else "overdue", ladder.handler,
                   deadline if up == Role.SUPERVISOR else first.deadline, passed=first.deadline)

    # the escalation message has told them; the rung's own opening only sends their links
    second = replace(
        spec, step=f"{spec.step}-{up.value}", addressed_to=up.value, deadline=deadline, announced=True,
        default_action=(ladder.overdue_action or f"截止 {due} 已过：升级给经理 the {due} deadline passed: escalated to the manager")
        if up == Role.SUPERVISOR else f"仍未处理，{shop_time(deadline)} 再次提醒经理 still not done: the manager is reminded at {shop_time(deadline)}",
    )
    decision = await await_decision(case, second)
    if not decision.by_deadline:
        return decision
    if up == Role.SUPERVISOR:
        await escalate(case, spec, Role.MANAGER, "overdue", ladder.handler, second.deadline, passed=second.deadline)

    reminder, deadline = 1, ladder.then(second.deadline)
    while True:
        overdue = replace(
            spec, step=f"{spec.step}-overdue-{reminder}", addressed_to=Role.MANAGER.value, deadline=deadline, announced=True,
            default_action=f"已超期，{shop_time(deadline)} 再次提醒经理 overdue: the manager is reminded again at {shop_time(deadline)}",
        )
        decision = await await_decision(case, overdue)
        if not decision.by_deadline:
            return decision
        await record_step(
            case.id, f"{spec.step}:overdue-reminder-{reminder}", "case.overdue_reminder", "system",
            details={"step": spec.step, "reminder": reminder, "deadline": second.deadline},
            notify="deadline_overdue_reminder", staff_tags=[Role.MANAGER.value],
            step=spec.title, deadline=second.deadline, reminder=reminder,
        )
        reminder, deadline = reminder + 1, ladder.then(deadline)


async def await_stage(case: Case, spec: WaitSpec, working_days: int) -> Decision:
    """A stage a person must do in ``working_days``, on the per-stage ladder (repairs §1.5, a
    review's cause §1.6)."""
    return await await_with_escalation(case, spec, Ladder.per_stage(spec, working_days))


async def escalate(case: Case, spec: WaitSpec, to: Role, why: str, handler: str, deadline: datetime,
                   notify: str | None = None, passed: datetime | None = None, **context) -> None:
    """Record an escalation of ``spec``'s step to ``to`` (once) and tell them and the handler, who
    still may answer. ``why``: ``warning`` (before the deadline) or ``overdue`` (it passed);
    ``passed``: the deadline (or warning point) that passed, said in the message."""
    tags = list(dict.fromkeys([to.value, handler]))
    await record_step(
        case.id, f"{spec.step}:escalated-{to.value}", "case.escalated", "system",
        details={"step": spec.step, "to": to.value, "why": why, "handler": handler, "deadline": deadline, "passed": passed},
        notify=notify or ("deadline_warning_escalated" if to == Role.SUPERVISOR else "deadline_passed_escalated"),
        staff_tags=tags, step=spec.title, deadline=deadline, handler=addressee_words(handler)[1], handler_zh=addressee_words(handler)[0],
        passed=passed or "", **context,
    )
