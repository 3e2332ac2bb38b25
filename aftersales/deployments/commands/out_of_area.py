"""`aftersales out-of-area open --order O20261120-006 --problem stranded` (§1.4)."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.markup import escape

NAME = "out-of-area"
app = typer.Typer(help="Express out-of-area parcels (§1.4) 快递超区", no_args_is_help=True)
console = Console()


@app.command("open")
def open_case(
    order: str = typer.Option(..., "--order", help="订单号 order id"),
    problem: str = typer.Option(..., "--problem", help="out_of_area 超区 | blind_area 盲区 | stranded 网点暂停滞留"),
    requested_by: str = typer.Option("system", "--requested-by", help="the staff id reporting it"),
    note: str = typer.Option("", "--note", help="说明 what the carrier said"),
) -> None:
    """Open a problem-parcel case; the buyer is asked to choose a remedy. A repeat opens nothing new."""
    from aftersales.intake.out_of_area import open_out_of_area
    from aftersales.domain.rules import InvalidRequest

    try:
        opened = asyncio.run(open_out_of_area(order, problem, requested_by, note))
    except InvalidRequest as exc:
        console.print(f"[bold red]error:[/] {escape(exc.message)}")
        raise typer.Exit(code=2)
    console.print(f"case [bold]{opened.case_id}[/] → flow run {opened.flow_run_name} ({opened.flow_run_id})")
