"""§1.11 enquiries and tickets (001 §二): channels, the first response's deadline by channel, the
ticket's types and how a ticket ends. Pure rules: no database, no Prefect."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from aftersales.domain.rules import InvalidRequest, shown


class EnquiryChannel(StrEnum):
    ONLINE_CHAT = "online_chat"
    PHONE = "phone"
    EMAIL = "email"
    SOCIAL_MEDIA = "social_media"


class EnquiryType(StrEnum):
    """001 §二: every issue is a ticket of one of these types."""

    ORDER = "order"
    LOGISTICS = "logistics"
    AFTER_SALES = "after_sales"
    PAYMENT = "payment"
    ACCOUNT = "account"
    PROMOTION = "promotion"


TYPE_LABEL = {EnquiryType.ORDER: "订单", EnquiryType.LOGISTICS: "物流", EnquiryType.AFTER_SALES: "售后", EnquiryType.PAYMENT: "支付",
              EnquiryType.ACCOUNT: "账户", EnquiryType.PROMOTION: "促销活动"}
CHANNEL_LABEL = {EnquiryChannel.ONLINE_CHAT: "在线客服", EnquiryChannel.PHONE: "电话", EnquiryChannel.EMAIL: "邮件",
                 EnquiryChannel.SOCIAL_MEDIA: "社交媒体"}


class Resolution(StrEnum):
    """How the agent ends a ticket."""

    ANSWERED = "answered"  # the customer has the answer
    TO_RETURN = "convert_to_return"  # an after-sales ticket becomes a return case, its history kept
    TO_COMPLAINT = "convert_to_complaint"  # … or a complaint
    UNRESOLVED = "unresolved"


def first_response_limit(channel: EnquiryChannel, rules: Any) -> timedelta:
    """001 §二: chat 30 s, phone 60 s from connecting, e-mail 4 h (social media: as e-mail)."""
    if channel == EnquiryChannel.ONLINE_CHAT:
        return timedelta(seconds=rules.enquiry_chat_response_seconds)
    if channel == EnquiryChannel.PHONE:
        return timedelta(seconds=rules.enquiry_phone_answer_seconds)
    return timedelta(hours=rules.enquiry_email_reply_hours)


def response_seconds(received_at: datetime, responded_at: datetime) -> float:
    return round((responded_at - received_at).total_seconds(), 1)


def breached(channel: EnquiryChannel, received_at: datetime, responded_at: datetime, rules: Any) -> bool:
    """Was the first response later than the channel allows? Measured between the channel's own
    timestamps (a chat answered in 45 s is a breach), never by how long a flow waited."""
    return responded_at - received_at > first_response_limit(channel, rules)


def check_channel(raw: object) -> EnquiryChannel:
    try:
        return EnquiryChannel(str(raw).strip())
    except ValueError:
        raise InvalidRequest("bad_channel", f"未知渠道 unknown channel {shown(raw)}; one of {', '.join(c.value for c in EnquiryChannel)}") from None


def check_type(raw: object) -> EnquiryType:
    try:
        return EnquiryType(str(raw).strip())
    except ValueError:
        raise InvalidRequest("bad_enquiry_type", f"未知工单类型 unknown ticket type {shown(raw)}; one of {', '.join(t.value for t in EnquiryType)}") from None


def check_times(received_at: datetime, responded_at: datetime | None, now: datetime) -> None:
    """The channel's timestamps: aware, not in the future, the response not before the question."""
    for name, moment in (("received_at", received_at), ("responded_at", responded_at)):
        if moment is None:
            continue
        if moment.tzinfo is None:
            raise InvalidRequest(f"{name}_naive", f"{name} 须带时区 needs a time zone, e.g. 2026-12-01T09:00:00+08:00")
        if moment > now + timedelta(minutes=5):
            raise InvalidRequest(f"{name}_in_future", f"{name} 不能晚于现在 is in the future: {moment.isoformat()}")
    if responded_at is not None and responded_at < received_at:
        raise InvalidRequest("responded_before_received", "首次响应时间早于接入时间 responded_at is before received_at")
