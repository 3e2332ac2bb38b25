"""`aftersales export …` — finance workbooks on demand (no Prefect server needed).

  aftersales export compensation --month 2026-11 --output compensation-2026-11.xlsx
  aftersales export statistics --month 2026-11 --output statistics-2026-11.xlsx
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

NAME = "export"
app = typer.Typer(help="Finance exports and statistics 财务导出与统计", no_args_is_help=True)
console = Console()


def _month(text: str):
    from aftersales.reporting.months import BadMonth, Month

    try:
        return Month.parse(text)
    except BadMonth as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(code=2) from None


@app.command("compensation")
def compensation(
    month: str = typer.Option(..., help="YYYY-MM, in Asia/Shanghai, e.g. 2026-11"),
    output: Optional[Path] = typer.Option(None, help="the .xlsx to write (default: exports_dir/compensation-<month>.xlsx)"),
) -> None:
    """The month's compensation ledger as a workbook for finance. 补偿月报"""
    from aftersales.domain.settings import get_settings
    from aftersales.reporting.compensation import export_compensation

    chosen = _month(month)
    target = output or get_settings().exports_dir / f"compensation-{chosen}.xlsx"
    if target.suffix.lower() != ".xlsx":
        console.print("[bold red]error:[/] --output must end in .xlsx")
        raise typer.Exit(code=2)
    result = export_compensation(chosen, target)
    # what the shop bears and what the platform paid; all lines (shop + others) only as the check figure
    console.print(f"{result.lines} lines: shop bears CNY {result.shop.amount:,.2f}, platform paid CNY {result.platform_paid.amount:,.2f}"
                  f" (all lines CNY {result.total.amount:,.2f}) → {target}")


@app.command("statistics")
def statistics(
    month: str = typer.Option(..., help="YYYY-MM, in Asia/Shanghai"),
    output: Optional[Path] = typer.Option(None, help="the .xlsx to write (default: exports_dir/statistics-<month>.xlsx)"),
) -> None:
    """Monthly statistics (§3) as a workbook and a table on screen. 月度统计"""
    from aftersales.domain.settings import get_settings
    from aftersales.reporting.statistics import monthly_statistics, to_markdown, write_statistics_workbook

    chosen = _month(month)
    stats = monthly_statistics(chosen)
    target = output or get_settings().exports_dir / f"statistics-{chosen}.xlsx"
    write_statistics_workbook(stats, target)
    console.print(to_markdown(stats))
    console.print(f"→ {target}")
