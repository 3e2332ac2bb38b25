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
   default). Steps 2–4 are §1.3's one approval rule, ``approvals/compensation_approval.py``, which
   a complaint's compensation goes through too;
5. a declined compensation closes and the agent is told, with the approver's note;
6. the approved compensation is paid once through the platform and written to finance's ledger
   (kind compensation / coupon / goods, the bearer, approved by the last approver).
"""

from __future__ import annotations

from prefect import flow

from aftersales.approvals.compensation_approval import approve_compensation
from aftersales.domain.models import CaseStatus, Role
from aftersales.domain.outcomes import Outcome
from aftersales.tasks.cases import close_case, load_case, open_case
from aftersales.tasks.compensation import compensation_of
from aftersales.tasks.money import pay_compensation
from aftersales.tasks.recovery import CASE_RUN


@flow(name="compensation", **CASE_RUN)
async def compensation_flow(case_id: str, order_id: str, form: str, amount: str = "", reason: str = "",
                            requested_by: str = "S001", bearer: str = "seller", goods: list[str] | None = None) -> str:
    """An agent's compensation offer, from request through every approval level to payment (§1.3)."""
    from prefect.runtime import flow_run

    await open_case(case_id, flow_run.id)  # §1.3 step 1: checked and recorded at the door
    case = load_case(case_id)
    if case.status == CaseStatus.CLOSED:
        return case.outcome or "closed"

    verdict = await approve_compensation(case, case.amount, case.requested_by, case.opened_at)
    if not verdict.approved:
        # the agent must know: a declined or unanswered compensation is not given
        return await close_case(case_id, Outcome.DECLINED_NO_ANSWER if verdict.by_deadline else Outcome.DECLINED, verdict.by,
                                notify="compensation_declined", staff_tags=[Role.AGENT.value], buyer=False, note=verdict.note)
    await pay_compensation(case_id, "", compensation_of(case), verdict.by, "compensation_paid", [Role.FINANCE.value, Role.AGENT.value])
    return await close_case(case_id, Outcome.COMPENSATED, verdict.by)


def deployments(schedule) -> list:
    return [
        compensation_flow.to_deployment(
            name="compensation", tags=["process:compensation"],
            description="§1.3 补偿 Compensation: one run per case; multi-level approval by amount. Opened by `aftersales compensation open`.",
        )
    ]
