"""Finance exports and management reporting, monthly (docs/rulebook.md §3).

``compensation-export`` (1st of the month, 06:00 Asia/Shanghai): the previous month's compensation
workbook into ``settings.exports_dir``, a link artifact to its download URL on our HTTP app
(``GET /exports/{filename}``, API key required) and a table artifact of the summary.
``monthly-statistics`` (same time): the statistics as a markdown artifact and a workbook.
The CLI exports any month on demand: ``aftersales export compensation --month 2026-11``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_link_artifact, acreate_markdown_artifact, acreate_table_artifact

from aftersales.domain.calendar import utcnow
from aftersales.domain.settings import get_settings
from aftersales.reporting.compensation import export_compensation
from aftersales.reporting.months import Month
from aftersales.reporting.links import api_public_url
from aftersales.reporting.statistics import monthly_statistics, to_markdown, write_statistics_workbook


def _month(month: str | None, as_of: datetime | None) -> Month:
    return Month.parse(month) if month else Month.previous(as_of or utcnow())


def download_url(filename: str) -> str:
    return f"{api_public_url()}/exports/{filename}"


@flow(name="compensation-export", flow_run_name="compensation-export-{month}", log_prints=True)
async def compensation_export(month: str | None = None, as_of: datetime | None = None) -> dict:
    """Export one month's compensation ledger (default: the month before ``as_of``/now)."""
    logger = get_run_logger()
    chosen = _month(month, as_of)
    filename = f"compensation-{chosen}.xlsx"
    output = get_settings().exports_dir / filename
    # the export is blocking I/O and CPU: off the event loop, so heartbeats and logs keep flowing
    result = await asyncio.to_thread(export_compensation, chosen, output)
    url = download_url(filename)
    # the headline: what the shop bears and what the platform paid (its statement); the all-lines
    # figure adds what others bear too, a check figure and not the shop's cost
    await acreate_link_artifact(
        key="compensation-export", link=url, link_text=f"补偿月报 Compensation {chosen} ({filename})",
        description=f"Compensation ledger {chosen}: {result.lines} lines; 店铺承担 shop bears ¥{result.shop.amount:,.2f}, "
                    f"平台实付 platform paid ¥{result.platform_paid.amount:,.2f} "
                    f"(all lines ¥{result.total.amount:,.2f}; download needs the X-Api-Key header)")
    await acreate_table_artifact(key="compensation-summary", table=result.summary_rows(),
                                 description=f"补偿汇总 Compensation summary {chosen} (CNY)")
    logger.info("compensation %s: %d lines, shop bears CNY %s, platform paid CNY %s (all lines CNY %s) → %s", chosen,
                result.lines, result.shop.amount, result.platform_paid.amount, result.total.amount, output)
    return {"month": str(chosen), "file": str(output), "url": url, "lines": result.lines,
            "total": f"{result.total.amount:.2f}", "shop": f"{result.shop.amount:.2f}",
            "platform_paid": f"{result.platform_paid.amount:.2f}"}


@flow(name="monthly-statistics", flow_run_name="monthly-statistics-{month}", log_prints=True)
async def monthly_statistics_flow(month: str | None = None, as_of: datetime | None = None) -> dict:
    chosen = _month(month, as_of)
    stats = await asyncio.to_thread(monthly_statistics, chosen)
    filename = f"statistics-{chosen}.xlsx"
    output = get_settings().exports_dir / filename
    await asyncio.to_thread(write_statistics_workbook, stats, output)
    await acreate_markdown_artifact(key="monthly-statistics", markdown=to_markdown(stats),
                                    description=f"月度统计 Monthly statistics {chosen}")
    await acreate_link_artifact(key="monthly-statistics-workbook", link=download_url(filename),
                                link_text=f"统计 Statistics {chosen} ({filename})")
    return {"month": str(chosen), "file": str(output), "rows": stats.rows()}


def deployments(schedule) -> list:
    cron = get_settings().compensation_export_cron
    return [
        compensation_export.to_deployment(
            name="compensation-export", tags=["finance", "reporting"], schedules=schedule(cron),
            description="补偿月报 The previous month's compensation ledger as a workbook for finance.",
        ),
        monthly_statistics_flow.to_deployment(
            name="monthly-statistics", tags=["reporting"], schedules=schedule(cron),
            description="月度统计 Response and handling times, satisfaction, complaint rate (§3).",
        ),
    ]
