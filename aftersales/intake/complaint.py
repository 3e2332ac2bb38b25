"""Receiving a complaint (§1.10): the ticket is checked first (nothing is recorded when it is bad);
the customer's contact details go into the case database and the run gets the case id only."""

from __future__ import annotations

from datetime import datetime

from aftersales.domain import complaint_rules as rules_
from aftersales.domain.calendar import business_calendar, shop_time, utcnow
from aftersales.domain.rules import InvalidRequest, check_order_id, check_ref, check_text
from aftersales.domain.settings import get_settings
from aftersales.intake.core import NewCase, Opened, open_case
from aftersales.intake.emergency import open_emergency
from aftersales.intake.registry import ProcessEntry, ProcessRequest, cli
from aftersales.integrations.platform import OrderNotFound, shop_platform
from aftersales.tasks.complaint import case_fields, complaint_context


def complaint_case_id(ticket: str) -> str:
    return f"complaint-{ticket}"


async def open_complaint(*, channel: str, category: str | int, level: str | int, customer_name: str, contact: str,
                         object: str, cause: str, demand: str, order_id: str | None = None, ticket: str | None = None,
                         received_at: datetime | None = None, high_value: bool = False, famous_brand: bool = False,
                         brand_owner: str | None = None, group: bool = False, requested_by: str = "S001") -> Opened:
    """§1.10 intake: refuse bad input at once (nothing is recorded), else start the case's run."""
    checked_channel = rules_.check_channel(channel)
    code, kind = rules_.category_of(category)
    checked_level = rules_.check_level(level)
    name = rules_.required_text(customer_name, "customer_name", "客户姓名", 64)
    reach = rules_.contact_fields(contact)
    what = rules_.required_text(object, "object", "投诉对象")
    why = rules_.required_text(cause, "cause", "投诉原因")
    wants = rules_.required_text(demand, "demand", "客户诉求")
    owner = check_text(brand_owner, "brand_owner", "品牌方", 64).strip()
    if famous_brand and not owner:
        raise InvalidRequest("brand_owner_required", "知名品牌投诉须写明品牌方 a famous-brand complaint needs the brand owner (--brand-owner)")
    now = utcnow()
    received = rules_.check_received_at(received_at, now)
    customer = {"customer_id": rules_.guest_customer_id(reach["contact"]), "name": name, "address": "", "language": "zh-CN", **reach}
    order_id = check_order_id(order_id) if (order_id or "").strip() else None
    ticket = check_ref(ticket, "ticket", "工单号", 70)
    requested_by = check_text(requested_by, "requested_by", "录入人工号", 64) or "S001"
    if order_id:
        async with shop_platform() as platform:
            try:
                order = await platform.get_order(order_id)
            except OrderNotFound:
                raise InvalidRequest("unknown_order", f"订单 {order_id} 不存在 order {order_id} not found on the platform") from None
        # the order's buyer is the customer; the contact given is kept as how they reached us
        customer = {**order.customer.model_dump(mode="json"), "contact": reach["contact"]}
    routing = rules_.route(kind, checked_level, high_value=high_value, famous_brand=famous_brand, group=group)
    settings = get_settings()
    calendar = business_calendar()
    response = rules_.first_response_clock(received, checked_level, settings.rules, calendar)
    plan = rules_.plan_clock(received, checked_level, settings.rules, calendar)

    ticket = ticket or f"{order_id or customer['customer_id']}-{code}"
    case_id = complaint_case_id(ticket)
    complaint = {
        "channel": checked_channel.value, "category_code": code, "category": kind.value,
        "category_label": rules_.CATEGORY_LABEL[kind], "level": checked_level, "level_meaning": rules_.LEVEL_MEANING[checked_level],
        "customer": customer, "order_id": order_id, "object": what, "cause": why, "demand": wants,
        "received_at": received.isoformat(), "first_response_due": shop_time(response.due), "plan_due": shop_time(plan.due),
        "special": list(routing.special), "special_label": ", ".join(routing.special) or "-",
        "brand_owner": owner or None, "requested_by": requested_by,
        "routing": {"department": routing.department.value, "handler": routing.handler.value,
                    "copied": [r.value for r in routing.copied], "intake_tags": routing.intake_tags},
    }
    # the customer's contact details stay in the case database; the run gets the case id only
    new = NewCase(
        fields=case_fields(case_id, complaint), opened=complaint, actor=requested_by,
        # what a repeated complaint (same ticket) must agree on; its free text and times may differ
        terms={"channel": complaint["channel"], "category_code": code, "level": checked_level, "order_id": order_id,
               "contact": reach["contact"]},
        notice="complaint_opened", staff_tags=tuple(routing.intake_tags), buyer=True, say=lambda _case: complaint_context(complaint),
    )
    opened = await open_case(
        "complaint/complaint", new, {"case_id": case_id}, subject=("此工单", "this ticket"),
        tags=["process:complaint", f"level:{checked_level}", f"category:{code}", *(f"special:{s}" for s in routing.special)],
    )
    if group:  # 002 §5.2 / 001 §四: a group complaint is an emergency too, linked to it (one per ticket)
        await open_emergency(title=f"群体投诉 group complaint: {what}"[:200], severity=2 if checked_level > 1 else 1, ref=f"group-{ticket}"[:70],
                             scope=f"{kind.value}: {why}"[:500], cases=[case_id], source="group_complaint", reported_by=requested_by)
    return opened


class ComplaintRequest(ProcessRequest):
    channel: str = cli("--channel", "phone | online_chat | email | social_media")
    category: str = cli("--category", "分类代码 1001–1999 商品, 2xxx 物流, 3xxx 支付, 4xxx 售后, 5xxx 其他")
    level: int = cli("--level", "等级 1 重大 … 4 建议 (deadlines: first response 2/4/6/8 h)")
    customer_name: str = cli("--name", "客户姓名 customer's name")
    contact: str = cli("--contact", "手机号或邮箱 phone or email")
    object: str = cli("--object", "投诉对象 what the complaint is about")
    cause: str = cli("--cause", "投诉原因 cause")
    demand: str = cli("--demand", "客户诉求 what the customer asks for")
    order_id: str | None = cli("--order", "订单号 order id (optional)", None)
    ticket: str | None = cli("--ticket", "工单号 the channel's ticket id; a repeated ticket opens nothing new", None)
    received_at: datetime | None = cli("--received-at", "受理时间 when it was received (ISO with timezone, e.g. 2026-11-30T09:00:00+08:00); default now", None)
    high_value: bool = cli("--high-value", "高价值商品 → 专门团队(经理) dedicated team", False)
    famous_brand: bool = cli("--famous-brand", "知名品牌 → 与品牌方共同处理 (needs --brand-owner)", False)
    brand_owner: str | None = cli("--brand-owner", "品牌方 the brand owner", None)
    group: bool = cli("--group", "群体投诉 → 专项小组(主管+经理) special task group", False)
    requested_by: str = cli("--requested-by", "录入人工号 the staff id entering it", "S001")


PROCESS = ProcessEntry(
    name="complaint", section="§1.10", title="Complaints (§1.10) 投诉", route="complaints", request=ComplaintRequest,
    opener=open_complaint, summary="Register a complaint; it is routed by category and level and waits for its first response.",
    demo=(ComplaintRequest(channel="phone", category="1001", level=2, customer_name="陈静", contact="15012345605",
                           order_id="O20261120-005", object="轻量缓震跑步鞋 42 码 running shoes",
                           cause="穿一周鞋底开胶 the sole came off after a week", demand="退货并补偿 return and compensation",
                           ticket="DEMO-001"),),
)
