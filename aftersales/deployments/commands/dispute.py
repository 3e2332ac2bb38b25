"""`aftersales dispute register [--day 2026-11-20]` (§1.8); `dispute open` comes from the registry."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Optional

import typer
from rich.console import Console

NAME = "dispute"
app = typer.Typer(help="Disputes / rights protection (§1.8) 维权", no_args_is_help=True)
console = Console()


@app.command("register")
def daily_register(day: Optional[datetime] = typer.Option(None, "--day", formats=["%Y-%m-%d"], help="the day (default yesterday, Asia/Shanghai)")) -> None:
    """Run the daily dispute register now (it also runs every day at 09:00)."""
    from aftersales.flows.dispute import dispute_daily_register

    console.print(asyncio.run(dispute_daily_register(day.date() if day else None)))
