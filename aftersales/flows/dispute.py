"""Dispute / rights protection (维权) — rulebook §1.8 (004 fig. 5.8; 000 §5.1.3).

The flow chart, step by step:

1. the dispute specialist registers the dispute, linked to its original sales order (it must exist
   on the platform and have been paid), with the buyer's reasons;
2. the shop replies within ``dispute_reply_days`` — otherwise it is escalated to the supervisor
   (recorded and told), then to the manager, who is reminded until someone replies;
3. the dispute closes with the final explanation and the handling opinion, the responsible
   department, the responsible person and the penalty/assessment, and the root cause — a closing
   without them is refused (``dispute_close_days`` from registration, escalating the same way).

And once a day (09:00 Asia/Shanghai) the **daily register**: one run lists the previous day's new
disputes and every dispute still open, and sends the dispute specialists one summary.
"""

from __future__ import annotations

from datetime import date, timedelta

from prefect import flow, get_run_logger

from aftersales.approvals.ladder import Ladder, await_with_escalation
from aftersales.approvals.dispute_forms import DisputeClosing, DisputeReply, Position
from aftersales.approvals.waits import WaitSpec
from aftersales.domain.calendar import business_calendar, utcnow
from aftersales.domain.dispute_rules import (
    Closing,
    Department,
    DisputeResult,
    RootCause,
    closing_problem,
    register_window,
    yesterday,
)
from aftersales.domain.models import Case, CaseStatus, Role
from aftersales.domain.settings import get_settings
from aftersales.tasks.cases import close_case, load_case, open_case, record_step
from aftersales.tasks.recovery import CASE_RUN
from aftersales.tasks.dispute import (
    disputes_for_register,
    mark_registered,
    record_closing,
    render_register,
    send_register,
)


@flow(name="dispute", **CASE_RUN)
async def dispute_flow(case_id: str) -> str:
    """One dispute, from registration to closing with responsibility and root cause (§1.8).

    The dispute (the buyer, the order, the statement) is recorded in the case database at intake;
    the run gets only the case id, so no customer detail is in Prefect."""
    from prefect.runtime import flow_run

    await open_case(case_id, flow_run.id)  # registered against its order at the door; the specialists told
    case = load_case(case_id)
    if case.status == CaseStatus.CLOSED:
        return case.outcome or "closed"

    reply = await await_with_escalation(case, shop_reply(case), reply_ladder(case))
    await record_step(case_id, "replied", "dispute.replied", reply.actor, stage="closing",
                      details={"position": reply.data.position.value, "reply": reply.data.reply, "evidence": reply.data.evidence},
                      notify="dispute_replied", buyer=True, position=reply.data.position.value, reply=reply.data.reply)

    closing = await await_with_escalation(case, close_dispute(case), closing_ladder(case))
    facts = closing.data.model_dump(mode="json", include=set(Closing.model_fields))
    await record_closing(case_id, closing.actor, facts)
    return await close_case(case_id, closing.data.result.value, closing.actor, notify="dispute_closed",
                            staff_tags=[Role.DISPUTE.value, Role.SUPERVISOR.value], **facts)


# --- the waits of §1.8 ----------------------------------------------------------------------------


def reply_ladder(case: Case) -> Ladder:
    """Reply deadline → the supervisor; one more reply period → the manager; then reminders."""
    days = get_settings().rules.dispute_reply_days
    due = business_calendar().add_days(case.opened_at, days)
    return Ladder.warn_before(
        Role.DISPUTE.value, warn_at=due, due=due + timedelta(days=days), remind_every=timedelta(days=days),
        warning_action=f"{days} 天未答复：升级给主管并记录 not replied in {days} days: escalated to the supervisor and recorded",
        overdue_action=f"主管 {days} 天内仍未答复：升级给经理 still no reply {days} days later: escalated to the manager",
    )


def closing_ladder(case: Case) -> Ladder:
    rules = get_settings().rules
    due = business_calendar().add_days(case.opened_at, rules.dispute_close_days)
    return Ladder.warn_before(
        Role.DISPUTE.value, warn_at=due, due=due + timedelta(days=rules.dispute_reply_days),
        remind_every=timedelta(days=rules.dispute_reply_days),
        warning_action=f"{rules.dispute_close_days} 天未结案：升级给主管 not closed in {rules.dispute_close_days} days: escalated to the supervisor",
        overdue_action=f"主管 {rules.dispute_reply_days} 天内仍未结案：升级给经理 still not closed {rules.dispute_reply_days} days later: escalated to the manager",
    )


def shop_reply(case: Case) -> WaitSpec:
    return WaitSpec(
        step="shop-reply",
        title="维权答复 Reply to the dispute",
        form=DisputeReply, deadline=reply_ladder(case).first, default_action="", addressed_to=Role.DISPUTE.value,
        default_input={"position": Position.CONTEST.value, "reply": "", "evidence": ""},
        check=lambda form: None if form.reply.strip() else "请填写本店答复 the shop's reply is required",
    )


def close_dispute(case: Case) -> WaitSpec:
    def check(form: DisputeClosing) -> str | None:
        return closing_problem(Closing(**form.model_dump(include=set(Closing.model_fields))))

    return WaitSpec(
        step="closing",
        title="维权结案(责任部门、责任人、处罚、根本原因) Close the dispute: responsibility and root cause",
        form=DisputeClosing, deadline=closing_ladder(case).first, default_action="", addressed_to=Role.DISPUTE.value,
        # only the sweeper submits this, and the ladder escalates instead of closing with it
        default_input={"result": DisputeResult.SETTLED.value, "responsible_department": Department.NONE.value,
                       "root_cause": RootCause.OTHER.value, "final_explanation": "", "handling_opinion": "",
                       "responsible_person": "", "penalty": "", "root_cause_detail": ""},
        check=check,
    )


# --- the daily register ---------------------------------------------------------------------------


@flow(name="dispute-daily-register", log_prints=True)
async def dispute_daily_register(day: date | None = None) -> dict:
    """§1.8: the dispute specialist's register of ``day`` (default: yesterday, Asia/Shanghai) — the
    day's new disputes and all still open — in one run and one message to the dispute channel."""
    tz = get_settings().tz
    day = day or yesterday(utcnow(), tz)
    start, end = register_window(day, tz)
    new, still_open, new_total, open_total = disputes_for_register(start, end)
    mark_registered(day, [row["case_id"] for row in new])
    subject, body = render_register(day, new, still_open, new_total, open_total)
    send_register(day.isoformat(), subject, body)
    get_run_logger().info("dispute register %s: %d new, %d open", day, new_total, open_total)
    return {"day": day.isoformat(), "new": [r["case_id"] for r in new], "open": [r["case_id"] for r in still_open]}


def deployments(schedule) -> list:
    return [
        dispute_flow.to_deployment(
            name="dispute", tags=["process:dispute"],
            description="§1.8 维权 Dispute: one run per dispute, named after the case. Opened by `aftersales dispute open`.",
        ),
        dispute_daily_register.to_deployment(
            name="dispute-daily-register", tags=["process:dispute", "ops"],
            schedules=schedule(get_settings().dispute_register_cron),
            description="§1.8 维权日登记 The dispute specialist's daily register: yesterday's and open disputes, one message.",
        ),
    ]
