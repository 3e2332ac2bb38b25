"""§1.11 Enquiry tickets as Prefect tasks: the first response's record (measured from the channel's
timestamps) and a ticket handed over as a return or a complaint with its history."""

from __future__ import annotations

from typing import Any

from prefect import task

from aftersales.approvals.enquiry_forms import EnquiryResolution, FirstResponse
from aftersales.approvals.ladder import stage_default
from aftersales.approvals.waits import Decision, WaitSpec
from aftersales.domain import enquiry_rules as rules_
from aftersales.domain.calendar import business_calendar, shop_time
from aftersales.domain.details import EnquiryDetails, details_of, store, with_changes
from aftersales.domain.models import Case, Role, WaitStatus
from aftersales.domain.rules import InvalidRequest, parse_amount
from aftersales.domain.settings import get_settings
from aftersales.intake.complaint import open_complaint
from aftersales.intake.returns import open_return
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope
from aftersales.tasks.cases import load_case, per_case
from aftersales.tasks.notify import notify_in_session, send_pending
from aftersales.tasks.policy import LOCAL_RECORD, OUTSIDE_EFFECT

CONVERTED_KIND = {rules_.Resolution.TO_RETURN: ("退货", "a return"), rules_.Resolution.TO_COMPLAINT: ("投诉", "a complaint")}


def first_response(case: Case) -> WaitSpec:
    details = details_of(case, EnquiryDetails)
    limit = rules_.first_response_limit(details.channel, get_settings().rules)
    return WaitSpec(
        step="first-response", title=f"首次响应（{rules_.CHANNEL_LABEL[details.channel]}，时限 {_limit_words(limit)[0]}）First response",
        form=FirstResponse, deadline=details.first_response_due,
        default_action="超时未首次响应：计为超时并告知主管，工单继续处理 no first response in time: counted as late, the supervisor is told; the ticket goes on",
        default_input={"note": "超时未首次响应 no first response in time"}, addressed_to=Role.AGENT.value,
        facts=(f"**咨询 Question** {details.summary}", f"**接入 Received** {shop_time(details.received_at)}"),
    )


def resolution(case: Case, since) -> WaitSpec:
    details = details_of(case, EnquiryDetails)
    days = get_settings().rules.enquiry_resolution_working_days

    def check(form: EnquiryResolution) -> str | None:
        if form.result in (rules_.Resolution.TO_RETURN, rules_.Resolution.TO_COMPLAINT) and details.type != rules_.EnquiryType.AFTER_SALES:
            return "只有售后类工单可转为退货或投诉 only an after-sales ticket becomes a return or a complaint"
        if form.result == rules_.Resolution.TO_RETURN:
            if not details.order_id:
                return "转退货须有订单号 a return needs the ticket's order"
            if not form.refund_amount:
                return "转退货须填写退款金额 a return needs the refund amount"
        return None

    return WaitSpec(
        step="resolution", title="处理工单并告知客户结果 Resolve the ticket and tell the customer",
        form=EnquiryResolution, deadline=business_calendar().add_working_days(since, days),
        # what the deadline submits only moves the ladder up (await_stage never takes it as the result)
        default_action=stage_default(days), default_input={"note": "超时未处理 not resolved in time"}, addressed_to=Role.AGENT.value, check=check,
        facts=(f"**咨询 Question** {details.summary}", f"**类型 Type** {rules_.TYPE_LABEL[details.type]} {details.type.value}"
               + (f" · **订单 Order** `{details.order_id}`" if details.order_id else "")),
    )


def _limit_words(limit) -> tuple[str, str]:
    seconds = int(limit.total_seconds())
    return (f"{seconds} 秒", f"{seconds} s") if seconds < 3600 else (f"{seconds // 3600} 小时", f"{seconds // 3600} h")


@task(name="record-first-response", cache_key_fn=per_case("first-response"), persist_result=True, **LOCAL_RECORD)
async def record_first_response(case_id: str, answered: Decision | None) -> bool:
    """The first response on the ticket, measured from the channel's timestamps; a breach is counted
    and the supervisor told. ``answered`` None: the channel reported it at intake."""
    rules = get_settings().rules
    with session_scope() as session:
        case = case_store.get_case(session, case_id)
        details = details_of(case, EnquiryDetails)
        if answered is not None:
            responded = None if answered.by_deadline else answered.answered_at
            late = answered.by_deadline or rules_.breached(details.channel, details.received_at, responded, rules)
            details = with_changes(details, responded_at=responded, first_response_breached=late,
                                   response_seconds=rules_.response_seconds(details.received_at, responded) if responded else None)
            store(case, details)
            session.add(case)
        late = bool(details.first_response_breached)
        facts = {"responded_at": details.responded_at, "response_seconds": details.response_seconds, "breached": late,
                 "by": answered.actor if answered is not None else "channel"}
        case_store.record_event(session, case_id, "first-response", answered.actor if answered is not None else "system",
                                "enquiry.first_response", facts)
        if late:
            limit = _limit_words(rules_.first_response_limit(details.channel, rules))
            took = details.response_seconds
            notify_in_session(
                session, case, "first-response-late", "enquiry_first_response_breached", staff_tags=[Role.SUPERVISOR.value, Role.AGENT.value],
                channel=rules_.CHANNEL_LABEL[details.channel], received_at=details.received_at,
                responded=f"首次响应用时 {took} 秒" if took is not None else "截止时仍未响应",
                responded_en=f"first answered after {took} s" if took is not None else "still unanswered at the deadline",
                limit=limit[0], limit_en=limit[1],
            )
    send_pending(case_id)
    return late


@task(name="convert-ticket", cache_key_fn=lambda _ctx, p: f"convert-{p['case_id']}-{p['wait_key']}", **OUTSIDE_EFFECT)
async def convert_ticket(case_id: str, wait_key: str, decision: Decision) -> dict[str, Any]:
    """Open the return or complaint the ticket becomes, with the ticket's history on it. A request
    the other process refuses (the return window closed …) is returned as the reason, nothing opened."""
    case = load_case(case_id)
    details = details_of(case, EnquiryDetails)
    form: EnquiryResolution = decision.data
    try:
        if form.result == rules_.Resolution.TO_RETURN:
            opened = await open_return(details.order_id, str(parse_amount(form.refund_amount)), f"咨询工单 {case_id} 转退货: {details.summary}"[:200],
                                       kind=form.return_kind, requested_by=decision.actor)
        else:
            customer = details.customer
            contact = (customer.contact or customer.phone or customer.email) if customer else ""
            opened = await open_complaint(
                channel=details.channel.value, category=form.complaint_category, level=form.complaint_level,
                customer_name=customer.name if customer else "", contact=contact or "", object=rules_.TYPE_LABEL[details.type],
                cause=details.summary, demand=form.note, order_id=details.order_id, ticket=case_id, received_at=details.received_at,
                requested_by=decision.actor)
    except InvalidRequest as refused:
        return {"case_id": None, "refused": refused.message}
    with session_scope() as session:
        history = [{"at": event.at, "actor": event.actor, "action": event.action} for event in case_store.timeline(session, case_id)]
        # the ticket's history on the case it became: the new trail starts where the ticket's ended
        case_store.record_event(session, opened.case_id, f"from-{case_id}", "system", "enquiry.history",
                                {"ticket": case_id, "channel": details.channel.value, "summary": details.summary, "events": history})
        ticket = case_store.get_case(session, case_id)
        store(ticket, with_changes(details_of(ticket, EnquiryDetails), converted_to=opened.case_id))
        session.add(ticket)
        case_store.record_event(session, case_id, f"converted-{wait_key}", decision.actor, "enquiry.converted",
                                {"to": opened.case_id, "as": form.result.value})
    return {"case_id": opened.case_id, "refused": ""}


@task(name="reopen-resolution", **LOCAL_RECORD)
async def reopen_resolution(case_id: str, wait_key: str, reason: str) -> None:
    """The answer asked for a case the other process refused: the form opens again with the reason."""
    with session_scope() as session:
        wait = case_store.wait_by_key(session, case_id, wait_key)
        if wait.status == WaitStatus.ANSWERED:
            wait.status, wait.reason = WaitStatus.REJECTED, reason
            session.add(wait)
        case_store.record_event(session, case_id, f"{wait_key}:conversion-refused", "system", "wait.rejected", {"step": "resolution", "reason": reason})
