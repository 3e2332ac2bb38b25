"""Dispute steps (§1.8) as Prefect tasks: register a dispute, record its closing, and the daily
register's query and message."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import apprise
from prefect import task
from sqlmodel import select

from aftersales.domain.details import DisputeDetails, details_of, store, with_changes
from aftersales.domain.dispute_rules import Closing
from aftersales.domain.models import Case, CaseStatus, Process, Role, Wait, WaitStatus
from aftersales.domain.rules import parse_amount
from aftersales.domain.settings import get_settings
from aftersales.domain.stages import stage_label
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope
from aftersales.integrations.notify import render
from aftersales.tasks.policy import LOCAL_RECORD


def case_fields(case_id: str, dispute: dict) -> dict:
    """The case row of a dispute (written at intake, before its run starts). The buyer is the
    requester; the specialist who registered it (in the trail) may handle it."""
    return dict(
        id=case_id, process=Process.DISPUTE, order_id=dispute["order_id"], customer_id=dispute["customer"]["customer_id"],
        requested_by="buyer", reason=f"{dispute['reason_label']}: {dispute['buyer_statement']}"[:500],
        amount=parse_amount(dispute["claimed_amount"], "claimed_amount", allow_zero=True),
        details=DisputeDetails.model_validate(dispute),  # validated once, at the door
    )


@task(name="record-dispute-closing", **LOCAL_RECORD)
async def record_closing(case_id: str, closed_by: str, closing: dict) -> None:
    """The closing facts go on the case (details) and into the trail: who was responsible, the
    penalty, and the root cause — what the monthly review of disputes reads."""
    with session_scope() as session:
        case_store.record_event(session, case_id, "closing", closed_by, "dispute.responsibility", closing)
        case = case_store.get_case(session, case_id)
        details = details_of(case, DisputeDetails)
        if details.closing != Closing.model_validate(closing):
            store(case, with_changes(details, closing=closing, closed_by=closed_by))
            session.add(case)


# --- the daily register -------------------------------------------------------------------------


def disputes_for_register(start: datetime, end: datetime, limit: int = 500) -> tuple[list[dict], list[dict], int, int]:
    """Yesterday's new disputes and every dispute still open at the end of the day, with the open
    wait of each (one query each, newest last; at most ``limit`` lines per list)."""

    def rows(query) -> list[dict]:
        found = []
        for case, wait in session.exec(query.limit(limit)):
            found.append({"case_id": case.id, "order_id": case.order_id, "reason": details_of(case, DisputeDetails).reason_label,
                          "stage": stage_label(case.stage), "status": case.status, "opened_at": case.opened_at,
                          "waiting_for": wait.addressed_to if wait else "", "deadline": wait.deadline if wait else None})
        return found

    def with_wait(*conditions):
        open_wait = and_(Wait.case_id == Case.id, Wait.status.in_([WaitStatus.OPEN, WaitStatus.EXPIRING]))
        return select(Case, Wait).outerjoin(Wait, open_wait).where(Case.process == Process.DISPUTE, *conditions).order_by(Case.opened_at)

    from sqlalchemy import and_, func

    with session_scope() as session:
        new = rows(with_wait(Case.opened_at >= start, Case.opened_at < end))
        still_open = rows(with_wait(Case.opened_at < end, Case.status != CaseStatus.CLOSED))
        new_total = session.exec(select(func.count()).select_from(Case).where(Case.process == Process.DISPUTE, Case.opened_at >= start, Case.opened_at < end)).one()
        open_total = session.exec(select(func.count()).select_from(Case).where(Case.process == Process.DISPUTE, Case.opened_at < end, Case.status != CaseStatus.CLOSED)).one()
    return new, still_open, new_total, open_total


def mark_registered(day: date, case_ids: list[str]) -> None:
    """Each new dispute's trail shows the register it was entered in (once per case and day)."""
    with session_scope() as session:
        for case_id in case_ids:
            case_store.record_event(session, case_id, f"register-{day.isoformat()}", "system", "dispute.registered_daily", {"day": day.isoformat()})


@task(name="send-dispute-register", retries=3, retry_delay_seconds=[5, 30, 120], persist_result=True,
      cache_key_fn=lambda _ctx, p: f"dispute-register-{p['day']}")
def send_register(day: str, subject: str, body: str) -> str:
    """One message for the whole register to the dispute specialists' channel; sent once per day
    (cache key), retried when the channel is down — a failed run is visible and can be re-run."""
    channels = apprise.Apprise(asset=apprise.AppriseAsset(async_mode=False))
    config = apprise.AppriseConfig()
    config.add(str(Path(get_settings().apprise_config)))
    channels.add(config)
    if not channels.notify(title=subject, body=body, tag=Role.DISPUTE.value, body_format=apprise.NotifyFormat.TEXT):
        raise RuntimeError(f"no channel tagged {Role.DISPUTE.value!r} accepted the dispute register of {day}")
    return day


def render_register(day: date, new: list[dict], still_open: list[dict], new_total: int, open_total: int) -> tuple[str, str]:
    tz = get_settings().tz

    def line(row: dict) -> str:
        deadline = row["deadline"].astimezone(tz).strftime("%m-%d %H:%M") if row["deadline"] else "-"
        return f"- {row['case_id']} 订单 {row['order_id']} {row['reason']} · {row['stage']} · 等待 {row['waiting_for'] or '-'} 截止 {deadline}"

    def block(rows: list[dict], total: int) -> str:
        text = "\n".join(line(r) for r in rows) or "(无 none)"
        return text + (f"\n… 另有 {total - len(rows)} 件 and {total - len(rows)} more" if total > len(rows) else "")

    return render("dispute_daily_register", "zh-CN", "staff", case_id="", day=day.isoformat(), new_count=new_total,
                  open_count=open_total, new_lines=block(new, new_total), open_lines=block(still_open, open_total))
