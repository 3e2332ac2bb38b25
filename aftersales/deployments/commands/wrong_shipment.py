"""`aftersales wrong-shipment open --order O20261120-002 --sku PL-MEM-60 --reason "发成 70cm"` (§1.7)."""

from __future__ import annotations

import asyncio
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

NAME = "wrong-shipment"
app = typer.Typer(help="Wrong shipments (§1.7) 错发货", no_args_is_help=True)
console = Console()


@app.command("open")
def open_case(
    order: str = typer.Option(..., "--order", help="订单号 order id"),
    sku: list[str] = typer.Option(..., "--sku", help="发错的订单商品 SKU an ordered item that was sent wrong, repeatable"),
    reason: str = typer.Option("", "--reason", help="情况说明 what was sent instead"),
    requested_by: str = typer.Option("buyer", "--requested-by", help="buyer, or the staff id reporting it"),
    negative_effect: bool = typer.Option(False, "--negative-effect", help="造成负面影响 (complaint, bad review): the assessment is recorded"),
    request_ref: Optional[str] = typer.Option(None, "--request-ref", help="a reference, for a second report on one order"),
) -> None:
    """Report a wrong shipment. Not yet dispatched: corrected at once; dispatched: the buyer chooses."""
    from aftersales.intake.wrong_shipment import open_wrong_shipment
    from aftersales.domain.rules import InvalidRequest

    try:
        opened = asyncio.run(open_wrong_shipment(order, list(sku), reason, requested_by, negative_effect, request_ref))
    except InvalidRequest as exc:
        console.print(f"[bold red]error:[/] {escape(exc.message)}")
        raise typer.Exit(code=2)
    console.print(f"case [bold]{opened.case_id}[/] → flow run {opened.flow_run_name} ({opened.flow_run_id})")
