"""§1.6 Negative-review follow-up as Prefect tasks: open the case, report a malicious review, pay
the approved compensation. Each platform call carries an idempotency key, each task a business
cache key, each ledger line a unique key."""

from __future__ import annotations

from decimal import Decimal

from prefect import task

from aftersales.domain.calendar import business_calendar
from aftersales.domain.models import Case, Role
from aftersales.domain.review_rules import OfferForm
from aftersales.domain.rules import InvalidRequest
from aftersales.domain.settings import get_settings
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope
from aftersales.integrations.platform import PlatformClient, RefundKind, Review
from aftersales.tasks.cases import load_case, per_case
from aftersales.tasks.notify import notify_in_session, send_pending
from aftersales.tasks.policy import OUTSIDE_EFFECT


async def find_review(platform: PlatformClient, review_id: str) -> Review:
    for review in await platform.list_reviews():
        if review.review_id == review_id:
            return review
    raise InvalidRequest("unknown_review", f"评价 {review_id} 不存在 review {review_id} not found on the platform")


def cause_deadline(case: Case):
    return business_calendar().add_working_days(case.opened_at, get_settings().rules.review_cause_working_days)


@task(name="report-malicious-review", cache_key_fn=per_case("report-review"), **OUTSIDE_EFFECT)
async def report_malicious_review(case_id: str, cause: str, evidence: str, verified_by: str) -> dict:
    """000 §5.2.2: a verified malicious review is reported to the platform, once."""
    case = load_case(case_id)
    review_id = case.details["review_id"]
    async with PlatformClient() as platform:
        report = await platform.report_review(review_id, cause or "恶意评价 malicious review", evidence, case_id, f"review-report-{case_id}")
    with session_scope() as session:
        case = case_store.get_case(session, case_id)
        case_store.record_event(session, case_id, "reported", verified_by, "review.reported",
                                {"report_id": report.report_id, "review_id": review_id, "evidence": evidence})
        notify_in_session(session, case, "reported", "review_reported", staff_tags=[Role.REVIEW.value, Role.SUPERVISOR.value],
                          review_id=review_id, report_id=report.report_id, evidence=evidence)
    send_pending(case_id)
    return {"report_id": report.report_id}


@task(name="pay-review-compensation", cache_key_fn=per_case("compensation"), **OUTSIDE_EFFECT)
async def pay_compensation(case_id: str, offer_form: OfferForm, amount: Decimal, goods_sku: str, approved_by: str) -> dict:
    """The approved compensation, once: cash through the platform, or goods shipped free.

    Cash is a platform refund: its ledger line is ``platform_paid`` at the amount the platform
    confirmed under its reference. Goods (a re-shipment) and their postage move no money."""
    key = f"compensation-{case_id}"
    case = load_case(case_id)
    dept = case.details["department"]
    reason = f"中差评补偿 compensation for review {case.details['review_id']}"
    async with PlatformClient() as platform:
        if offer_form == OfferForm.CASH:
            paid = await platform.refund(case.order_id, amount, reason, case_id, key, RefundKind.COMPENSATION)
            ref, detail = paid.refund_id, ""
            amount = paid.amount  # what the platform confirmed under its reference
        else:
            shipment = await platform.reship(case.order_id, [{"sku": goods_sku, "quantity": 1}], reason, case_id, key)
            ref, detail = shipment.reshipment_id, f"{shipment.carrier} {shipment.waybill}"
    with session_scope() as session:
        case = case_store.get_case(session, case_id)
        case_store.add_ledger_line(session, idempotency_key=key, case=case, kind="compensation", amount=amount, bearer="seller",
                                   approved_by=approved_by, platform_ref=ref, responsible_department=dept,
                                   platform_paid=offer_form == OfferForm.CASH,
                                   note=f"中差评补偿（{offer_form.value}）review compensation ({offer_form.value}) {goods_sku}".strip())
        if offer_form == OfferForm.GOODS:
            case_store.add_ledger_line(session, idempotency_key=f"{key}-postage", case=case, kind="outbound_postage",
                                       amount=get_settings().rules.standard_postage, bearer="seller", approved_by=approved_by,
                                       platform_ref=ref, responsible_department=dept, note="补偿商品运费 postage of the goods sent")
        case_store.record_event(session, case_id, "compensation-paid", approved_by, "compensation.paid",
                                {"form": offer_form.value, "amount": amount, "sku": goods_sku, "platform_ref": ref})
        notify_in_session(session, case, "compensation-paid", "review_compensation_paid", staff_tags=[Role.FINANCE.value], buyer=True,
                          review_offer=offer_form.value, offer_amount=amount, approved_by=approved_by, department=dept, detail=detail)
    send_pending(case_id)
    return {"platform_ref": ref}
