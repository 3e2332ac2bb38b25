"""`aftersales repair open --order O20261120-004 --sku AP-HEPA-600 --fault "风机异响"` (§1.5)."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.markup import escape

NAME = "repair"
app = typer.Typer(help="Repairs (§1.5) 返修", no_args_is_help=True)
console = Console()


@app.command("open")
def open_case(
    order: str = typer.Option(..., "--order", help="订单号 order id (delivered)"),
    sku: str = typer.Option(..., "--sku", help="需维修的商品 SKU the item to repair"),
    fault: str = typer.Option(..., "--fault", help="故障描述 the fault"),
    scope: str = typer.Option("in_scope", "--scope", help="in_scope | out_of_scope 超服务 (e.g. water or drop damage)"),
    requested_by: str = typer.Option("S001", "--requested-by", help="the agent's staff id"),
) -> None:
    """Open a repair order; out-of-warranty or out-of-scope repairs wait for a superior's approval."""
    from aftersales.intake.repair import open_repair
    from aftersales.domain.rules import InvalidRequest

    try:
        opened = asyncio.run(open_repair(order, sku, fault, scope, requested_by))
    except InvalidRequest as exc:
        console.print(f"[bold red]error:[/] {escape(exc.message)}")
        raise typer.Exit(code=2)
    console.print(f"case [bold]{opened.case_id}[/] → flow run {opened.flow_run_name} ({opened.flow_run_id})")
