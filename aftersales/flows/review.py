"""Negative-review follow-up (评价/中差评) — rulebook §1.6 (004 fig. 5.7; 000 §5.2.2).

The flow chart, step by step:

1. a neutral or negative review (from the platform; the review monitor calls
   ``open_review_followup(review_id)``, one case per review) opens a case;
2. the review specialist's facts go to the responsible department, who records the cause within
   ``review_cause_working_days`` — otherwise it is escalated to the supervisor (then the manager);
3. a review the department suspects is malicious goes to the review specialist to verify within
   ``review_verify_working_days``: confirmed → reported to the platform, no offer; not confirmed, or
   not verified in time → followed up as genuine (genuine buyers stay protected);
4. an offer of goods or cash ALWAYS needs a superior's approval of form and amount (supervisor,
   the manager above the supervisor's limit) within ``review_approval_working_days`` — otherwise no
   offer is made, and that is recorded; without an offer the buyer gets an apology;
5. the buyer answers within ``review_buyer_response_days`` — otherwise no response is recorded;
6. an accepted offer is paid once, with a ledger line naming the approver and the department.
"""

from __future__ import annotations


from prefect import flow

from aftersales.approvals.ladder import await_stage, stage_default
from aftersales.approvals.review_forms import (
    BuyerAnswer,
    BuyerResponse,
    CauseFinding,
    MaliciousVerification,
    OfferApproval,
    OfferDecision,
    ReviewVerdict,
    VerificationResult,
)
from aftersales.approvals.waits import Decision, WaitSpec, await_decision
from aftersales.domain.calendar import business_calendar
from aftersales.domain.details import ReviewDetails, details_of
from aftersales.domain.models import Case, CaseStatus, Role
from aftersales.domain.outcomes import Outcome
from aftersales.domain.review_rules import OfferForm, offer_approver
from aftersales.domain.rules import parse_amount
from aftersales.domain.settings import get_settings
from aftersales.tasks.cases import close_case, load_case, open_case, record_step
from aftersales.tasks.recovery import CASE_RUN
from aftersales.tasks.money import pay_compensation
from aftersales.tasks.review import cause_deadline, report_review, review_compensation


@flow(name="review-followup", **CASE_RUN)
async def review_followup_flow(case_id: str, review_id: str, department: str | None = None, requested_by: str = "system") -> str:
    """A neutral or negative review, from the department's cause to the buyer's answer (§1.6)."""
    from prefect.runtime import flow_run

    await open_case(case_id, flow_run.id)  # checked (rating, department) and recorded at the door
    case = load_case(case_id)
    if case.status == CaseStatus.CLOSED:
        return case.outcome or "closed"
    rules = get_settings().rules

    cause = await await_stage(case, find_cause(case), rules.review_cause_working_days)
    found = cause.data
    await record_step(case_id, "cause", "review.cause_found", cause.actor, stage="cause-found",
                      details={"cause": found.cause, "verdict": found.verdict.value, "department": details_of(case, ReviewDetails).department.value,
                               "proposed": {"form": found.offer_form.value, "amount": found.offer_amount, "sku": found.goods_sku}})

    if found.verdict == ReviewVerdict.SUSPECTED_MALICIOUS:
        check = await await_decision(case, verify_malicious(case, cause))
        if check.data.result == VerificationResult.MALICIOUS and not check.by_deadline:
            await report_review(case, found.cause, check.data.evidence, check.actor)
            return await close_case(case_id, Outcome.REPORTED_MALICIOUS, check.actor, buyer=False)
        await record_step(case_id, "verified-genuine", "review.verified_genuine", check.actor,
                          details={"by_deadline": check.by_deadline})

    if found.offer_form == OfferForm.NONE:
        return await apologise(case_id, Outcome.APOLOGISED, cause.actor)

    approval = await await_decision(case, approve_offer(case, cause))
    if approval.by_deadline or approval.data.decision == OfferDecision.REFUSE:
        await record_step(case_id, "no-offer", "review.no_offer", approval.actor,
                          details={"by_deadline": approval.by_deadline, "note": approval.data.note})
        return await apologise(case_id, Outcome.NO_OFFER_MADE, approval.actor)

    offer = approval.data
    amount = parse_amount(offer.amount)
    await record_step(case_id, "offer", "review.offer_made", approval.actor, stage="offer",
                      details={"form": offer.offer_form.value, "amount": amount, "sku": offer.goods_sku, "approved_by": approval.actor},
                      notify="review_offer", buyer=True, review_offer=offer.offer_form.value, offer_amount=amount,
                      deadline=response_deadline(approval))

    response = await await_decision(case, buyer_response(case, approval))
    if response.by_deadline:
        return await close_case(case_id, Outcome.NO_RESPONSE, "system")
    if response.data.response == BuyerAnswer.DECLINED:
        return await close_case(case_id, Outcome.OFFER_DECLINED, response.actor, note=response.data.note)
    await pay_compensation(case_id, "", review_compensation(case, offer.offer_form, amount, offer.goods_sku), approval.actor,
                           "review_compensation_paid", [Role.FINANCE.value], {"review_offer": offer.offer_form.value})
    return await close_case(case_id, Outcome.COMPENSATED, response.actor, review_updated=response.data.review_updated)


async def apologise(case_id: str, outcome: str, actor: str) -> str:
    await record_step(case_id, "apology", "review.apology_sent", actor, notify="review_apology", buyer=True)
    return await close_case(case_id, outcome, actor, buyer=False)


# --- the waits of §1.6, each with its deadline and default action -------------------------------


def find_cause(case: Case) -> WaitSpec:
    days = get_settings().rules.review_cause_working_days
    details = details_of(case, ReviewDetails)
    items = details.prices

    def check(form: CauseFinding) -> str | None:
        if not form.cause.strip():
            return "请填写原因 the cause is required"
        if form.offer_form != OfferForm.NONE:
            if parse_amount(form.offer_amount, "offer_amount", allow_zero=True) <= 0:
                return "补偿金额须大于 0 the proposed amount must be above 0"
            if form.offer_form == OfferForm.GOODS and form.goods_sku not in items:
                return f"赠品须为订单中的商品 the goods must be an item of the order: {', '.join(items)}"
        return None

    return WaitSpec(
        step="review-cause",
        title=f"中差评查找原因 Find the cause of a {details.rating} review",
        form=CauseFinding,
        deadline=cause_deadline(case),
        default_action=stage_default(days),
        default_input={"cause": "超时未查明 not found in time"},
        addressed_to=details.department.value,
        check=check,
    )


def verify_malicious(case: Case, cause: Decision) -> WaitSpec:
    days = get_settings().rules.review_verify_working_days

    def check(form: MaliciousVerification) -> str | None:
        if form.result == VerificationResult.MALICIOUS and not form.evidence.strip():
            return "确认恶意须提供证据 a malicious verdict needs the evidence"
        return None

    return WaitSpec(
        step="review-verify",
        title="核实疑似恶意评价 Verify a suspected malicious review",
        form=MaliciousVerification,
        deadline=business_calendar().add_working_days(cause.answered_at, days),
        default_action=f"{days} 个工作日未核实，按真实评价跟进 not verified in {days} working days: followed up as genuine",
        default_input={"result": VerificationResult.GENUINE.value, "evidence": ""},
        addressed_to=Role.REVIEW.value,
        check=check,
    )


def approve_offer(case: Case, cause: Decision) -> WaitSpec:
    rules = get_settings().rules
    days = rules.review_approval_working_days
    proposed = parse_amount(cause.data.offer_amount, "offer_amount")
    items = details_of(case, ReviewDetails).prices

    def check(form: OfferApproval) -> str | None:
        if form.decision == OfferDecision.REFUSE:
            return None
        amount = parse_amount(form.amount, "amount", allow_zero=True)
        if amount <= 0:
            return "同意时补偿金额须大于 0 an approved amount must be above 0"
        if amount > proposed:
            return f"补偿金额 {amount} 高于建议金额 {proposed} above the proposed {proposed}: ask the department to propose more"
        if form.offer_form == OfferForm.GOODS and form.goods_sku not in items:
            return f"赠品须为订单中的商品 the goods must be an item of the order: {', '.join(items)}"
        if form.offer_form == OfferForm.NONE:
            return "同意时请选择 cash 或 goods choose cash or goods to approve"
        return None

    return WaitSpec(
        step="offer-approval",
        title="中差评补偿审批 Approve the compensation (form and amount)",
        form=OfferApproval,
        deadline=business_calendar().add_working_days(cause.answered_at, days),
        default_action=f"{days} 个工作日未审批，不提供补偿（已记录）not approved in {days} working days: no offer is made (recorded)",
        default_input={"decision": OfferDecision.REFUSE.value, "offer_form": cause.data.offer_form.value, "amount": "0.00",
                       "note": "审批超时，不提供补偿 not approved in time: no offer"},
        addressed_to=offer_approver(proposed, rules).value,
        amount=proposed,
        prefill={"offer_form": cause.data.offer_form.value, "amount": f"{proposed:.2f}", "goods_sku": cause.data.goods_sku},
        check=check,
    )


def response_deadline(approval: Decision):
    return business_calendar().add_days(approval.answered_at, get_settings().rules.review_buyer_response_days)


def buyer_response(case: Case, approval: Decision) -> WaitSpec:
    days = get_settings().rules.review_buyer_response_days
    return WaitSpec(
        step="buyer-response",
        title="等待买家答复补偿 Waiting for the buyer's answer to the offer",
        form=BuyerResponse,
        deadline=response_deadline(approval),
        default_action=f"买家 {days} 天未答复，记为未回复，不发放补偿 no answer in {days} days: recorded as no response, nothing paid",
        default_input={"response": BuyerAnswer.DECLINED.value, "note": "超时未答复 no answer in time"},
        addressed_to="buyer",
    )


def deployments(schedule) -> list:
    return [
        review_followup_flow.to_deployment(
            name="review-followup", tags=["process:review"],
            description="§1.6 中差评跟进 Negative-review follow-up: one run per review (case review-<review id>). "
                        "Opened by the review monitor or `aftersales review open`.",
        )
    ]
