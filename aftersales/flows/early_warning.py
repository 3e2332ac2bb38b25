"""Early warning (docs/rulebook.md §3; 002 §9.2): returns and complaints per SKU and category against
thresholds learnt from history, alerts to the responsible department once per breach.
The logic is in ``aftersales/reporting/early_warning.py``."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_table_artifact

from aftersales.domain.emergency_rules import Source
from aftersales.domain.rules import InvalidRequest
from aftersales.domain.settings import get_settings
from aftersales.intake.emergency import open_emergency
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
    # far above its threshold: an emergency (§3.1), one per breach — its reference is the breach's key,
    # so the next sweep finds it open instead of opening another
    report["emergencies"] = [await open_for(breach, logger) for breach in report.pop("severe")]
    return report


async def open_for(breach, logger) -> str | None:
    ref = re.sub(r"[^A-Za-z0-9_-]+", "-", f"warning-{breach.key}")[:70].strip("-")
    title = f"预警激增 {breach.kind} {breach.subject}: {breach.count} 件（阈值 {breach.threshold:g}）surge above the warning threshold"
    try:
        opened = await open_emergency(title=title, severity=2, ref=ref, cases=breach.cases, source=Source.EARLY_WARNING.value,
                                      scope=f"{len(breach.cases)} 个案件 cases in the window {breach.key}", reported_by="system")
    except InvalidRequest as refused:
        logger.warning("early warning %s: no emergency opened (%s)", breach.key, refused.message)
        return None
    return opened.case_id


def deployments(schedule) -> list:
    return [
        early_warning.to_deployment(
            name="early-warning", tags=["reporting", "quality"], schedules=schedule(get_settings().early_warning_cron),
            description="预警 Returns/complaints per SKU and category above their historical threshold.",
        )
    ]
