"""Opening a negative-review follow-up (§1.6): one case per review, ``review-<review_id>``.

``open_review_followup`` is idempotent per review — the case id is the run's idempotency key — so
the review monitor may call it for every neutral or negative review it sees, as often as it likes.
A positive or unknown review is refused (InvalidRequest) and nothing is recorded.
"""

from __future__ import annotations

from aftersales.domain.review_rules import check_followed_up, parse_department
from aftersales.domain.rules import check_id, check_text
from aftersales.intake.core import Opened, start_case_run
from aftersales.intake.registry import Process, ProcessRequest, cli
from aftersales.integrations.platform import PlatformClient
from aftersales.tasks.review import find_review


def review_case_id(review_id: str) -> str:
    return f"review-{review_id}"


async def open_review_followup(review_id: str, department: str | None = None, requested_by: str = "system") -> Opened:
    review_id = check_id(review_id, "review_id", "评价编号", "the review id")
    requested_by = check_text(requested_by, "requested_by", "发起人", 64) or "system"
    async with PlatformClient() as platform:
        review = await find_review(platform, review_id)
    check_followed_up(review_id, review.rating)
    dept = parse_department(department, review.text)
    case_id = review_case_id(review_id)
    return await start_case_run(
        "review-followup/review-followup", case_id,
        {"case_id": case_id, "review_id": review_id, "department": dept.value, "requested_by": requested_by},
        tags=["process:review", f"rating:{review.rating.value}", f"department:{dept.value}"],
        same=("department",),
    )

class ReviewFollowupRequest(ProcessRequest):
    review_id: str = cli("argument", "评价编号 the platform's review id, e.g. RV000001")
    department: str | None = cli("--department", "责任部门 quality | logistics | warehouse | agent (default: from the review's text)", None)
    requested_by: str = cli("--requested-by", "the review specialist's staff id", "S009")


PROCESS = Process(
    name="review", section="§1.6", title="Negative-review follow-up (§1.6) 中差评", route="review-followups",
    request=ReviewFollowupRequest, opener=open_review_followup,
    summary="Follow up a neutral or negative review; a repeat opens nothing new.",
    # the seeded negative review (soles came apart) and the neutral one (thin T-shirt), both quality
    demo=(ReviewFollowupRequest(review_id="RV000001", requested_by="system"),
          ReviewFollowupRequest(review_id="RV000003", requested_by="system")),
)
