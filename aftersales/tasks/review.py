"""§1.6 Negative-review follow-up as Prefect tasks: report a malicious review (once: a platform
idempotency key and a business cache key), and what an approved offer gives (paid by
``tasks.money.pay_compensation``)."""

from __future__ import annotations

from decimal import Decimal

from prefect import task

from aftersales.approvals.forms import ReportedInQianniu
from aftersales.approvals.ladder import await_stage, stage_default
from aftersales.approvals.waits import WaitSpec
from aftersales.domain.calendar import business_calendar, utcnow
from aftersales.domain.compensation_rules import CompensationForm
from aftersales.domain.details import ReviewDetails, details_of
from aftersales.domain.models import Case, Role
from aftersales.domain.review_rules import OfferForm
from aftersales.domain.rules import InvalidRequest
from aftersales.domain.settings import get_settings
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope
from aftersales.integrations.platform import BACKENDS, Review, ShopPlatform, shop_platform
from aftersales.tasks.cases import load_case, per_case
from aftersales.tasks.money import Compensation
from aftersales.tasks.notify import notify_in_session, send_pending
from aftersales.tasks.policy import OUTSIDE_EFFECT


async def find_review(platform: ShopPlatform, review_id: str) -> Review:
    for review in await platform.list_reviews():
        if review.review_id == review_id:
            return review
    raise InvalidRequest("unknown_review", f"评价 {review_id} 不存在 review {review_id} not found on the platform")


def cause_deadline(case: Case):
    return business_calendar().add_working_days(case.opened_at, get_settings().rules.review_cause_working_days)


async def report_review(case: Case, cause: str, evidence: str, verified_by: str) -> dict:
    """000 §5.2.2: a verified malicious review is reported to the platform, once — where the
    platform has no call for it (TOP), by the review team in Qianniu, the case waiting for the
    complaint's number (one working day, then the supervisor and the manager)."""
    reported_by_hand = None
    if "report_review" in BACKENDS[case.platform].by_hand:
        done = await await_stage(case, WaitSpec(
            step="in-qianniu-report",
            title="在千牛投诉恶意评价（平台无此接口）Report the malicious review in Qianniu (no platform call for it)",
            form=ReportedInQianniu, deadline=business_calendar().add_working_days(utcnow(), 1),
            default_action=stage_default(1), default_input={"reference": "none"}, addressed_to=Role.REVIEW.value,
            facts=(f"**评价 Review** `{details_of(case, ReviewDetails).review_id}` · 订单 Order `{case.order_id}`",
                   f"证据 Evidence: {evidence}")), 1)
        reported_by_hand = {"report_id": done.data.reference, "actor": done.actor}
    return await report_malicious_review(case.id, cause, evidence, verified_by, reported_by_hand)


@task(name="report-malicious-review", cache_key_fn=per_case("report-review"), **OUTSIDE_EFFECT)
async def report_malicious_review(case_id: str, cause: str, evidence: str, verified_by: str,
                                  reported_by_hand: dict | None = None) -> dict:
    """Report the review to the platform (or record the report made by hand), once."""
    case = load_case(case_id)
    review_id = details_of(case, ReviewDetails).review_id
    if reported_by_hand is None:
        async with shop_platform(case) as platform:
            report_id = (await platform.report_review(review_id, cause or "恶意评价 malicious review", evidence, case_id,
                                                      f"review-report-{case_id}")).report_id
    else:
        report_id = reported_by_hand["report_id"]
    with session_scope() as session:
        case = case_store.get_case(session, case_id)
        case_store.record_event(session, case_id, "reported", verified_by, "review.reported",
                                {"report_id": report_id, "review_id": review_id, "evidence": evidence,
                                 **({"done_by_hand": reported_by_hand["actor"]} if reported_by_hand else {})})
        notify_in_session(session, case, "reported", "review_reported", staff_tags=[Role.REVIEW.value, Role.SUPERVISOR.value],
                          review_id=review_id, report_id=report_id, evidence=evidence)
    send_pending(case_id)
    return {"report_id": report_id}


def review_compensation(case: Case, offer_form: OfferForm, amount: Decimal, goods_sku: str) -> Compensation:
    """The approved offer (cash, or one item of the order shipped free), on the shop's account and
    the responsible department's."""
    form = CompensationForm.CASH if offer_form == OfferForm.CASH else CompensationForm.GOODS
    details = details_of(case, ReviewDetails)
    return Compensation(form=form, amount=amount, bearer="seller", goods=((goods_sku, 1),) if form is CompensationForm.GOODS else (),
                        reason=f"中差评补偿 compensation for review {details.review_id}",
                        note=f"中差评补偿（{offer_form.value}）review compensation ({offer_form.value}) {goods_sku}".strip(),
                        # booked as compensation in both forms (the compensation process books goods as goods)
                        ledger_kind="compensation", department=details.department.value)
