"""Enquiry tickets (咨询工单) — rulebook §1.11 (001 §二).

1. a question arrives from a channel (online chat, phone, e-mail, social media) with the channel's
   own timestamps; the customer is identified by order number or user id (``intake/enquiry.py``);
2. the first response: chat within 30 s, a call served within 60 s of connecting, an e-mail answered
   within 4 h — measured between the channel's timestamps. A channel that reports its first answer
   (chat, phone) has it measured at intake; otherwise the agents' ``first-response`` wait records it,
   and its deadline passing counts the breach and tells the supervisor;
3. the ticket is resolved and the customer told the result (``resolution``; overdue: the supervisor,
   then the manager, as every stage) — answered, not resolved (the supervisor arranges a remedy), or
   an after-sales ticket handed over as a return or a complaint, its history going with it;
4. closing asks the customer's satisfaction (§3), as every case does.
"""

from __future__ import annotations

from prefect import flow

from aftersales.approvals.ladder import await_stage
from aftersales.approvals.waits import await_decision
from aftersales.domain.details import EnquiryDetails, details_of
from aftersales.domain.enquiry_rules import Resolution
from aftersales.domain.models import CaseStatus, Role
from aftersales.domain.outcomes import Outcome
from aftersales.domain.settings import get_settings
from aftersales.tasks.cases import close_case, load_case, open_case, record_step
from aftersales.tasks.enquiry import CONVERTED_KIND, convert_ticket, first_response, record_first_response, reopen_resolution, resolution
from aftersales.tasks.recovery import CASE_RUN


@flow(name="enquiry", **CASE_RUN)
async def enquiry_flow(case_id: str) -> str:
    """A customer's question, from the channel to the answer they are told (§1.11)."""
    from prefect.runtime import flow_run

    await open_case(case_id, flow_run.id)
    case = load_case(case_id)
    if case.status == CaseStatus.CLOSED:
        return case.outcome or "closed"

    if details_of(case, EnquiryDetails).responded_at is None:
        answered = await await_decision(case, first_response(case))
        await record_first_response(case_id, answered)
        since = answered.answered_at
    else:
        await record_first_response(case_id, None)  # the channel reported it: measured at intake
        since = case.opened_at

    while True:
        decision = await await_stage(case, resolution(case, since), get_settings().rules.enquiry_resolution_working_days)
        form = decision.data
        if form.result == Resolution.ANSWERED:
            return await close_case(case_id, Outcome.ANSWERED, decision.actor, notify="enquiry_answered", staff_tags=[Role.AGENT.value],
                                    note=form.note)
        if form.result == Resolution.UNRESOLVED:
            return await close_case(case_id, Outcome.UNRESOLVED, decision.actor, notify="enquiry_unresolved",
                                    staff_tags=[Role.SUPERVISOR.value, Role.AGENT.value], note=form.note)
        converted = await convert_ticket(case_id, decision.wait_key, decision)
        if converted["case_id"] is None:
            await reopen_resolution(case_id, decision.wait_key, f"未能转为{CONVERTED_KIND[form.result][0]} could not become "
                                                                  f"{CONVERTED_KIND[form.result][1]}: {converted['refused']}")
            continue
        await record_step(case_id, f"converted-{decision.wait_key}:told", "enquiry.customer_told", decision.actor,
                          notify="enquiry_converted", staff_tags=[Role.AGENT.value], buyer=True,
                          converted_to=converted["case_id"], converted_kind=form.result.value, note=form.note)
        # its result is the new case's: no satisfaction request for the ticket itself
        return await close_case(case_id, Outcome.CONVERTED, decision.actor, buyer=False, converted_to=converted["case_id"])


def deployments(schedule) -> list:
    return [
        enquiry_flow.to_deployment(
            name="enquiry", tags=["process:enquiry"],
            description="§1.11 咨询工单 Enquiry tickets: one run per ticket, named after it. Opened by `aftersales enquiry open`.",
        )
    ]
