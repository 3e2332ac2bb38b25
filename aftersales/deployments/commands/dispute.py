"""`aftersales dispute open --order O20261120-004 --reason not_as_described --statement "..."` and
`aftersales dispute register [--day 2026-11-20]` (§1.8)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

NAME = "dispute"
app = typer.Typer(help="Disputes / rights protection (§1.8) 维权", no_args_is_help=True)
console = Console()


@app.command("open")
def open_case(
    order: str = typer.Option(..., "--order", help="原销售订单号 the original sales order (must exist on the platform)"),
    reason: str = typer.Option(..., "--reason", help="not_as_described | quality | not_received | wrong_item | counterfeit | service | other"),
    statement: str = typer.Option(..., "--statement", help="买家的维权理由 the buyer's reasons"),
    platform_ref: Optional[str] = typer.Option(None, "--platform-ref", help="平台维权编号 the platform's dispute id"),
    amount: Optional[str] = typer.Option(None, "--amount", help="涉及金额(元) amount claimed, CNY"),
    registered_by: str = typer.Option("S010", "--registered-by", help="维权专员工号 the dispute specialist's staff id"),
) -> None:
    """Register a dispute against its order; it waits for the shop's reply."""
    from aftersales.domain.rules import InvalidRequest
    from aftersales.intake.dispute import open_dispute

    try:
        opened = asyncio.run(open_dispute(order, reason, statement, platform_ref=platform_ref, claimed_amount=amount,
                                          registered_by=registered_by))
    except InvalidRequest as exc:
        console.print(f"[bold red]error:[/] {escape(exc.message)}")
        raise typer.Exit(code=2)
    console.print(f"case [bold]{opened.case_id}[/] → flow run {opened.flow_run_name} ({opened.flow_run_id})")


@app.command("register")
def daily_register(day: Optional[datetime] = typer.Option(None, "--day", formats=["%Y-%m-%d"], help="the day (default yesterday, Asia/Shanghai)")) -> None:
    """Run the daily dispute register now (it also runs every day at 09:00)."""
    from aftersales.flows.dispute import dispute_daily_register

    console.print(asyncio.run(dispute_daily_register(day.date() if day else None)))
