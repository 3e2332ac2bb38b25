"""`aftersales exchange open --order O20261120-001 --sku TS-COT-WH-L --new-sku TS-COT-WH-XL` (§1.2)."""

from __future__ import annotations

import asyncio
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

NAME = "exchange"
app = typer.Typer(help="Exchanges (§1.2) 换货", no_args_is_help=True)
console = Console()


@app.command("open")
def open_case(
    order: str = typer.Option(..., "--order", help="订单号 order id (delivered)"),
    sku: str = typer.Option(..., "--sku", help="要换的商品 SKU the item sent back"),
    new_sku: str = typer.Option("", "--new-sku", help="换成的商品 SKU the replacement (default: the same SKU)"),
    quantity: int = typer.Option(1, "--quantity", help="数量 how many"),
    reason: str = typer.Option("", "--reason", help="换货原因 reason"),
    kind: str = typer.Option("no_reason", "--kind", help="no_reason | quality | wrong_item (quality, wrong_item: the seller pays the postage)"),
    requested_by: str = typer.Option("buyer", "--requested-by", help="buyer, or the staff id opening it for the buyer"),
    request_ref: Optional[str] = typer.Option(None, "--request-ref", help="platform's request id, for a second exchange on one order"),
) -> None:
    """Open an exchange case. A repeated request opens no second case."""
    from aftersales.intake.exchange import open_exchange
    from aftersales.domain.rules import InvalidRequest

    try:
        opened = asyncio.run(open_exchange(order, sku, new_sku, quantity, reason, kind, requested_by, request_ref))
    except InvalidRequest as exc:
        console.print(f"[bold red]error:[/] {escape(exc.message)}")
        raise typer.Exit(code=2)
    console.print(f"case [bold]{opened.case_id}[/] → flow run {opened.flow_run_name} ({opened.flow_run_id})")
