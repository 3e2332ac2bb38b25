"""`aftersales compensation open --order O20261120-002 --form coupon --amount 30 --reason "物流延误" --requested-by S001` (§1.3)."""

from __future__ import annotations

import asyncio
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

NAME = "compensation"
app = typer.Typer(help="Compensation (§1.3) 补偿", no_args_is_help=True)
console = Console()


@app.command("open")
def open_case(
    order: str = typer.Option(..., "--order", help="订单号 order id"),
    form: str = typer.Option(..., "--form", help="cash 现金 | partial_refund 部分退款 | coupon 优惠券 | goods 商品"),
    amount: Optional[str] = typer.Option(None, "--amount", help="金额(元) amount in CNY, e.g. 30.00 (goods: taken from the catalogue)"),
    reason: str = typer.Option(..., "--reason", help="补偿原因 the problem it settles"),
    requested_by: str = typer.Option(..., "--requested-by", help="the agent's staff id"),
    bearer: str = typer.Option("seller", "--bearer", help="承担方 seller | carrier | platform | supplier"),
    goods: list[str] = typer.Option([], "--goods", help="商品 SKU or SKU:quantity (form goods), repeatable"),
    request_ref: Optional[str] = typer.Option(None, "--request-ref", help="a reference, for a second compensation on one order"),
) -> None:
    """Open a compensation. Above ¥20 it waits for the supervisor, above ¥500 then for the manager."""
    from aftersales.intake.compensation import open_compensation
    from aftersales.domain.rules import InvalidRequest

    try:
        opened = asyncio.run(open_compensation(order, form, amount, reason, requested_by, bearer, list(goods), request_ref))
    except InvalidRequest as exc:
        console.print(f"[bold red]error:[/] {escape(exc.message)}")
        raise typer.Exit(code=2)
    console.print(f"case [bold]{opened.case_id}[/] → flow run {opened.flow_run_name} ({opened.flow_run_id})")
