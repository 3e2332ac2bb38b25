"""Early warning (RULES.md §3; 002 §9.2): returns and complaints per SKU and category against
thresholds learnt from history, alerts to the responsible department once per breach.
The logic is in ``aftersales/reporting/early_warning.py``."""

from __future__ import annotations

import asyncio
from datetime import datetime

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_table_artifact

from aftersales.domain.settings import get_settings
from aftersales.reporting.early_warning import check


@flow(name="early-warning", log_prints=True)
async def early_warning(as_of: datetime | None = None) -> dict:
    logger = get_run_logger()
    report = await asyncio.to_thread(check, as_of)
    if report["new"]:
        await acreate_table_artifact(key="early-warning", table=[{"alert": key} for key in report["new"]],
                                     description="新预警 New early-warning alerts")
    logger.info("early warning: %d breaches, %d new alerts, %d sent, %d postponed",
                len(report["breaches"]), len(report["new"]), report["sent"], report["failed"])
    return report


def deployments(schedule) -> list:
    return [
        early_warning.to_deployment(
            name="early-warning", tags=["reporting", "quality"], schedules=schedule(get_settings().early_warning_cron),
            description="预警 Returns/complaints per SKU and category above their historical threshold.",
        )
    ]
