"""Opening a negative-review follow-up (§1.6): one case per review, ``review-<review_id>``.

``open_review_followup`` is idempotent per review — the case id is the run's idempotency key — so
the review monitor may call it for every neutral or negative review it sees, as often as it likes.
A positive or unknown review is refused (InvalidRequest) and nothing is recorded.
"""

from __future__ import annotations

from decimal import Decimal

from aftersales.domain.details import ReviewDetails
from aftersales.domain.review_rules import check_followed_up, parse_department
from aftersales.domain.rules import check_id, check_text
from aftersales.domain.models import Process, Role
from aftersales.intake.core import NewCase, Opened, open_case
from aftersales.intake.registry import ProcessEntry, ProcessRequest, cli
from aftersales.integrations.platform import shop_platform
from aftersales.tasks.intake import order_facts
from aftersales.tasks.review import cause_deadline, find_review


def review_case_id(review_id: str) -> str:
    return f"review-{review_id}"


async def open_review_followup(review_id: str, department: str | None = None, requested_by: str = "system") -> Opened:
    review_id = check_id(review_id, "review_id", "评价编号", "the review id")
    requested_by = check_text(requested_by, "requested_by", "发起人", 64) or "system"
    async with shop_platform() as platform:
        review = await find_review(platform, review_id)
        check_followed_up(review_id, review.rating)
        dept = parse_department(department, review.text)
        order, _facts = await order_facts(platform, review.order_id)
    case_id = review_case_id(review_id)
    new = NewCase(
        fields=dict(id=case_id, process=Process.REVIEW, order_id=review.order_id, customer_id=review.customer_id,
                    requested_by=requested_by, reason=review.text[:500], amount=Decimal("0"),
                    details=ReviewDetails(review_id=review_id, rating=review.rating.value, text=review.text, department=dept,
                                          review_created_at=review.created_at, customer=order.customer.model_dump(mode="json"),
                                          prices={item.sku: item.unit_price for item in order.items})),
        opened={"review_id": review_id, "rating": review.rating.value, "text": review.text, "department": dept.value},
        terms={"department": dept.value}, actor=requested_by,
        # the review specialist passes the buyer's words to the responsible department
        notice="review_opened", staff_tags=tuple(sorted({Role.REVIEW.value, dept.value})),
        say=lambda case: {"rating": review.rating.value, "review_text": review.text, "department": dept.value,
                          "deadline": cause_deadline(case)},
    )
    return await open_case(
        "review-followup/review-followup", new,
        {"case_id": case_id, "review_id": review_id, "department": dept.value, "requested_by": requested_by},
        tags=["process:review", f"rating:{review.rating.value}", f"department:{dept.value}"],
    )


class ReviewFollowupRequest(ProcessRequest):
    review_id: str = cli("argument", "评价编号 the platform's review id, e.g. RV000001")
    department: str | None = cli("--department", "责任部门 quality | logistics | warehouse | agent (default: from the review's text)", None)
    requested_by: str = cli("--requested-by", "the review specialist's staff id", "S009")


PROCESS = ProcessEntry(
    name="review", section="§1.6", title="Negative-review follow-up (§1.6) 中差评", route="review-followups",
    request=ReviewFollowupRequest, opener=open_review_followup,
    summary="Follow up a neutral or negative review; a repeat opens nothing new.",
    # the seeded negative review (soles came apart) and the neutral one (thin T-shirt), both quality
    demo=(ReviewFollowupRequest(review_id="RV000001", requested_by="system"),
          ReviewFollowupRequest(review_id="RV000003", requested_by="system")),
)
