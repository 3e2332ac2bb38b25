"""The quarterly satisfaction survey (docs/rulebook.md §3; 000 §7.1.4): buyers of the previous quarter's
closed cases who gave no score are asked once more. The per-case request after closing is sent by
``tasks/cases.py:close_case``; answers arrive at ``POST /satisfaction/{token}``."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime

from prefect import flow, get_run_logger

from aftersales.domain.calendar import utcnow
from aftersales.domain.settings import get_settings
from aftersales.integrations.notify import deliver_pending
from aftersales.reporting.months import Month
from aftersales.reporting.satisfaction import survey


def quarter_bounds(year: int, number: int) -> tuple[str, datetime, datetime]:
    """(label like 2026Q3, start, end) of a quarter, in Asia/Shanghai, as UTC."""
    if not 1 <= number <= 4:
        raise ValueError(f"no such quarter: {year}Q{number}")
    first = Month(year, (number - 1) * 3 + 1)
    end = Month(year + 1, 1) if number == 4 else Month(year, number * 3 + 1)
    return f"{year}Q{number}", first.start(), end.start()


def previous_quarter(moment: datetime) -> tuple[str, datetime, datetime]:
    local = moment.astimezone(get_settings().tz)
    year, number = local.year, (local.month - 1) // 3  # 0 → the last quarter of last year
    return quarter_bounds(year - 1, 4) if number == 0 else quarter_bounds(year, number)


@flow(name="satisfaction-survey", log_prints=True)
async def satisfaction_survey(as_of: datetime | None = None, quarter: str | None = None) -> dict:
    """Ask the buyers of cases closed in the previous quarter (or ``quarter``, e.g. 2026Q4)."""
    logger = get_run_logger()
    if quarter:
        match = re.fullmatch(r"(\d{4})Q([1-4])", quarter.strip().upper())
        if not match:
            raise ValueError(f"quarter must look like 2026Q4, got {quarter!r}")
        label, start, stop = quarter_bounds(int(match.group(1)), int(match.group(2)))
    else:
        label, start, stop = previous_quarter(as_of or utcnow())
    counts = await asyncio.to_thread(survey, label, start, stop)
    delivery = await asyncio.to_thread(deliver_pending, limit=500)  # the outbox-retry flow sends the rest
    logger.info("satisfaction survey %s: %d asked, %d skipped; %d sent now", label, counts["asked"], counts["skipped"], delivery.sent)
    return {"quarter": label, **counts}


def deployments(schedule) -> list:
    return [
        satisfaction_survey.to_deployment(
            name="satisfaction-survey", tags=["reporting"], schedules=schedule(get_settings().satisfaction_survey_cron),
            description="季度满意度调查 Asks the buyers of last quarter's closed cases without a score.",
        )
    ]
