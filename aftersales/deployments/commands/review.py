"""`aftersales review open RV000001 [--department quality]` (§1.6)."""

from __future__ import annotations

import asyncio
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

NAME = "review"
app = typer.Typer(help="Negative-review follow-up (§1.6) 中差评跟进", no_args_is_help=True)
console = Console()


@app.command("open")
def open_case(
    review_id: str = typer.Argument(..., help="评价编号 the platform's review id, e.g. RV000001"),
    department: Optional[str] = typer.Option(None, "--department", help="责任部门 quality | logistics | warehouse | agent (default: from the review's text)"),
    requested_by: str = typer.Option("S009", "--requested-by", help="the review specialist's staff id"),
) -> None:
    """Follow up a neutral or negative review; a repeat opens nothing new."""
    from aftersales.intake.review import open_review_followup
    from aftersales.domain.rules import InvalidRequest

    try:
        opened = asyncio.run(open_review_followup(review_id, department, requested_by))
    except InvalidRequest as exc:
        console.print(f"[bold red]error:[/] {escape(exc.message)}")
        raise typer.Exit(code=2)
    console.print(f"case [bold]{opened.case_id}[/] → flow run {opened.flow_run_name} ({opened.flow_run_id})")
