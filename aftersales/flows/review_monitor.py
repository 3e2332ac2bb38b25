"""Review monitor — rulebook §1.6: every neutral or negative review opens a follow-up case, once.

One scheduled run reads the platform's new reviews since the last checkpoint (the platform's
``since`` is inclusive, and opening is idempotent per review, so an overlap opens nothing twice).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from prefect import flow, get_run_logger
from prefect import task

from aftersales.domain.calendar import utcnow
from aftersales.domain.models import Checkpoint
from aftersales.domain.settings import get_settings
from aftersales.intake.review import open_review_followup
from aftersales.integrations.db import session_scope
from aftersales.integrations.platform import shop_platform
from aftersales.tasks.policy import SCHEDULED_READ
from aftersales.tasks.tracking import _save_checkpoint

CHECKPOINT = "review-monitor"
FOLLOW_UP = {"neutral", "negative"}


@task(name="read-new-reviews", **SCHEDULED_READ)
async def read_new_reviews() -> list[dict]:
    with session_scope() as session:
        checkpoint = session.get(Checkpoint, CHECKPOINT)
    since = datetime.fromisoformat(checkpoint.value) if checkpoint else utcnow() - timedelta(days=30)
    async with shop_platform() as platform:
        reviews = await platform.list_reviews(since)
    return [review.model_dump(mode="json") for review in reviews]


@flow(name="review-monitor")
async def review_monitor() -> dict:
    """Open a follow-up case for each new neutral/negative review (§1.6)."""
    logger = get_run_logger()
    reviews = await read_new_reviews()
    opened, known = [], []
    for review in reviews:
        if review["rating"] in FOLLOW_UP:
            case = await open_review_followup(review["review_id"])
            # the platform's "since" is inclusive: the last run's reviews come again and find their case
            (opened if case.new else known).append(case.case_id)
    if reviews:
        _save_checkpoint(CHECKPOINT, max(datetime.fromisoformat(review["created_at"]) for review in reviews).isoformat())
    logger.info("review monitor: %d reviews read, %d follow-up cases opened, %d already followed up",
                len(reviews), len(opened), len(known))
    return {"reviews": len(reviews), "follow_ups": opened, "already_followed_up": known}


def deployments(schedule) -> list:
    return [
        review_monitor.to_deployment(
            name="review-monitor", tags=["ops", "process:review"], schedules=schedule(get_settings().review_monitor_cron),
            description="§1.6 评价监控 Neutral and negative reviews open a follow-up case, once each.",
        )
    ]
