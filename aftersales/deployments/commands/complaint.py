"""`aftersales complaint open --channel phone --category 1001 --level 2 --name 陈静 --contact 15012345605 ...` (§1.10)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

NAME = "complaint"
app = typer.Typer(help="Complaints (§1.10) 投诉", no_args_is_help=True)
console = Console()


@app.command("open")
def open_case(
    channel: str = typer.Option(..., "--channel", help="phone | online_chat | email | social_media"),
    category: str = typer.Option(..., "--category", help="分类代码 1001–1999 商品, 2xxx 物流, 3xxx 支付, 4xxx 售后, 5xxx 其他"),
    level: int = typer.Option(..., "--level", help="等级 1 重大 … 4 建议 (deadlines: first response 2/4/6/8 h)"),
    name: str = typer.Option(..., "--name", help="客户姓名 customer's name"),
    contact: str = typer.Option(..., "--contact", help="手机号或邮箱 phone or email"),
    object_: str = typer.Option(..., "--object", help="投诉对象 what the complaint is about"),
    cause: str = typer.Option(..., "--cause", help="投诉原因 cause"),
    demand: str = typer.Option(..., "--demand", help="客户诉求 what the customer asks for"),
    order: Optional[str] = typer.Option(None, "--order", help="订单号 order id (optional)"),
    ticket: Optional[str] = typer.Option(None, "--ticket", help="工单号 the channel's ticket id; a repeated ticket opens nothing new"),
    received_at: Optional[datetime] = typer.Option(None, "--received-at", help="受理时间 when it was received (ISO with timezone); default now"),
    high_value: bool = typer.Option(False, "--high-value", help="高价值商品 → 专门团队(经理) dedicated team"),
    famous_brand: bool = typer.Option(False, "--famous-brand", help="知名品牌 → 与品牌方共同处理 (needs --brand-owner)"),
    brand_owner: Optional[str] = typer.Option(None, "--brand-owner", help="品牌方 the brand owner"),
    group: bool = typer.Option(False, "--group", help="群体投诉 → 专项小组(主管+经理) special task group"),
    requested_by: str = typer.Option("S001", "--requested-by", help="录入人工号 the staff id entering it"),
) -> None:
    """Register a complaint; it is routed by category and level and waits for its first response."""
    from aftersales.domain.rules import InvalidRequest
    from aftersales.intake.complaint import open_complaint

    try:
        opened = asyncio.run(open_complaint(
            channel=channel, category=category, level=level, customer_name=name, contact=contact, object=object_,
            cause=cause, demand=demand, order_id=order, ticket=ticket, received_at=received_at, high_value=high_value,
            famous_brand=famous_brand, brand_owner=brand_owner, group=group, requested_by=requested_by))
    except InvalidRequest as exc:
        console.print(f"[bold red]error:[/] {escape(exc.message)}")
        raise typer.Exit(code=2)
    console.print(f"case [bold]{opened.case_id}[/] → flow run {opened.flow_run_name} ({opened.flow_run_id})")
