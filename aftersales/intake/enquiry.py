"""Receiving an enquiry (§1.11): a customer's question from a channel (chat, phone, e-mail, social
media) becomes a ticket, with the channel's own timestamps. Checked first (nothing is recorded when
it is bad); the customer is identified by order number or user id; contact details stay in the
case database and the run gets the case id only."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from aftersales.domain import complaint_rules
from aftersales.domain import enquiry_rules as rules_
from aftersales.domain.calendar import utcnow
from aftersales.domain.details import EnquiryDetails
from aftersales.domain.masking import mask_text
from aftersales.domain.models import Process, Role
from aftersales.domain.rules import InvalidRequest, check_order_id, check_ref, check_text
from aftersales.domain.settings import get_settings
from aftersales.intake.core import NewCase, Opened, open_case
from aftersales.intake.registry import ProcessEntry, ProcessRequest, cli
from aftersales.integrations.platform import OrderNotFound, shop_platform


def enquiry_case_id(ticket: str) -> str:
    return f"enquiry-{ticket}"


async def open_enquiry(*, channel: str, type: str, summary: str, ticket: str, received_at: datetime | None = None,
                       responded_at: datetime | None = None, order_id: str | None = None, customer_id: str | None = None,
                       customer_name: str = "", contact: str = "", requested_by: str = "S001") -> Opened:
    """§1.11 intake: one ticket per channel ticket id; a repeat opens nothing new."""
    checked_channel, kind = rules_.check_channel(channel), rules_.check_type(type)
    question = complaint_rules.required_text(summary, "summary", "问题摘要")
    ticket = check_ref(ticket, "ticket", "工单号", 70)
    if not ticket:
        raise InvalidRequest("ticket_required", "请填写渠道工单号 ticket (the channel's ticket or session id) is required")
    now = utcnow()
    received = received_at or now
    rules_.check_times(received, responded_at, now)
    requested_by = check_text(requested_by, "requested_by", "录入人工号", 64) or "S001"
    order_id = check_order_id(order_id) if (order_id or "").strip() else None
    reach = complaint_rules.contact_fields(contact) if contact.strip() else {"contact": "", "phone": "", "email": ""}
    if order_id:  # 001 §二: identify the customer by the order number …
        async with shop_platform() as platform:
            try:
                order = await platform.get_order(order_id)
            except OrderNotFound:
                raise InvalidRequest("unknown_order", f"订单 {order_id} 不存在 order {order_id} not found on the platform") from None
        customer = {**order.customer.model_dump(mode="json"), **({"contact": reach["contact"]} if reach["contact"] else {})}
    elif (customer_id or "").strip():  # … or the user id
        user = check_ref(customer_id, "customer_id", "用户 ID", 64)
        customer = {"customer_id": user, "name": check_text(customer_name, "customer_name", "客户姓名", 64) or user, "address": "",
                    "language": "zh-CN", **reach}
    else:
        raise InvalidRequest("customer_unidentified", "须提供订单号或用户 ID 以识别客户 identify the customer by order number (--order) or user id (--customer)")

    rules = get_settings().rules
    due = received + rules_.first_response_limit(checked_channel, rules)
    answered = {"responded_at": responded_at, "response_seconds": rules_.response_seconds(received, responded_at),
                "first_response_breached": rules_.breached(checked_channel, received, responded_at, rules)} if responded_at else {}
    case_id = enquiry_case_id(ticket)
    details = EnquiryDetails(channel=checked_channel, type=kind, summary=mask_text(question), order_id=order_id, received_at=received,
                             first_response_due=due, requested_by=requested_by, customer=customer, **answered)
    opened = {"channel": checked_channel.value, "type": kind.value, "order_id": order_id, "summary": details.summary,
              "received_at": received, "first_response_due": due, **answered}
    new = NewCase(
        fields=dict(id=case_id, process=Process.ENQUIRY, order_id=order_id or "", customer_id=customer["customer_id"], requested_by="buyer",
                    reason=details.summary[:500], amount=Decimal("0"), details=details),
        opened=opened, actor=requested_by,
        terms={"channel": checked_channel.value, "type": kind.value, "order_id": order_id},
        notice="enquiry_opened", staff_tags=(Role.AGENT.value,),
        say=lambda _case: {"channel": rules_.CHANNEL_LABEL[checked_channel], "enquiry_type": rules_.TYPE_LABEL[kind],
                           "summary": details.summary, "first_response_due": due},
    )
    return await open_case("enquiry/enquiry", new, {"case_id": case_id}, subject=("此工单", "this ticket"),
                           tags=["process:enquiry", f"channel:{checked_channel.value}", f"type:{kind.value}"])


class EnquiryRequest(ProcessRequest):
    channel: str = cli("--channel", "online_chat | phone | email | social_media")
    type: str = cli("--type", "order 订单 | logistics 物流 | after_sales 售后 | payment 支付 | account 账户 | promotion 促销")
    summary: str = cli("--summary", "问题摘要 what the customer asked")
    ticket: str = cli("--ticket", "渠道工单号或会话 ID the channel's ticket or session id; a repeat opens nothing new")
    received_at: datetime | None = cli("--received-at", "接入时间 when the customer's message arrived / the call connected (ISO with timezone); default now", None)
    responded_at: datetime | None = cli("--responded-at", "首次响应时间 when the first answer went out, if the channel reports it (ISO with timezone)", None)
    order_id: str | None = cli("--order", "订单号 order id (identifies the customer)", None)
    customer_id: str | None = cli("--customer", "用户 ID user id (when there is no order)", None)
    customer_name: str = cli("--name", "客户姓名 the customer's name (with --customer)", "")
    contact: str = cli("--contact", "手机号或邮箱 phone or e-mail to answer on", "")
    requested_by: str = cli("--requested-by", "录入人工号 the staff id entering it", "S001")


PROCESS = ProcessEntry(
    name="enquiry", section="§1.11", title="Enquiry tickets (§1.11) 咨询工单", route="enquiries", request=EnquiryRequest,
    opener=open_enquiry,
    summary="Open a ticket from a channel's question; its first response is measured against the channel's deadline.",
    demo=(EnquiryRequest(channel="email", type="after_sales", ticket="MAIL-20261120-001", order_id="O20261120-005",
                         summary="跑步鞋鞋底开胶，想问能否退货 the running shoes' sole came loose: can I return them?"),
          EnquiryRequest(channel="online_chat", type="logistics", ticket="CHAT-20261120-001", customer_id="U10086", customer_name="张三",
                         summary="快递三天没更新 no tracking update for three days")),
)
