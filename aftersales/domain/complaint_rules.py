"""Complaints (投诉) — rulebook §1.10 (002; 000 ch. 4): the pure rules.

Intake checks (channel, category code, level, who and what), routing to a department, the special
complaints of 002 §5.2, the level's deadlines counted from receipt (002 §3.3) and the warning point
before each, and the result-feedback rule (002 §4.3). Nothing here talks to the outside world.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from aftersales.domain.calendar import BusinessCalendar
from aftersales.domain.models import Role
from aftersales.domain.masking import mask_contact
from aftersales.domain.outcomes import Outcome
from aftersales.domain.rules import InvalidRequest, shown
from aftersales.domain.settings import Rules

LEVELS = (1, 2, 3, 4)
LEVEL_MEANING = {
    1: "重大质量/售后问题，严重损害消费者权益 major problem, serious harm",
    2: "一般问题，有一定损害 ordinary problem, some harm",
    3: "轻微问题 minor problem",
    4: "建议和意见 suggestions and opinions",
}


class Channel(StrEnum):
    """002 §2.1: how the complaint arrived."""

    PHONE = "phone"  # 24 h line
    ONLINE_CHAT = "online_chat"
    EMAIL = "email"
    SOCIAL_MEDIA = "social_media"
    TRACKING = "tracking"  # raised by the shop itself: the 15-day order tracker (§1.9)


class Category(StrEnum):
    """002 §2.3.2: the first digit of the four-digit category code."""

    PRODUCT = "product"  # 1001–1999
    LOGISTICS = "logistics"  # 2001–2999
    PAYMENT = "payment"  # 3001–3999
    AFTER_SALES = "after_sales"  # 4001–4999
    OTHER = "other"  # 5001–5999


CATEGORY_BY_DIGIT = {1: Category.PRODUCT, 2: Category.LOGISTICS, 3: Category.PAYMENT, 4: Category.AFTER_SALES, 5: Category.OTHER}
CATEGORY_LABEL = {
    Category.PRODUCT: "商品 product", Category.LOGISTICS: "物流 logistics", Category.PAYMENT: "支付 payment",
    Category.AFTER_SALES: "售后服务 after-sales service", Category.OTHER: "其他 other",
}


def category_of(raw_code: object) -> tuple[int, Category]:
    """002 §2.3.2: 1001–1999 product, 2001–2999 logistics, 3001–3999 payment, 4001–4999
    after-sales service, 5001–5999 other. x000 is not a code."""
    text = str(raw_code).strip()
    if not re.fullmatch(r"\d{4}", text):
        raise InvalidRequest("bad_category", f"投诉分类代码须为四位数字 the category code must be four digits (1001–5999), got {shown(raw_code)}")
    code = int(text)
    digit = code // 1000
    if digit not in CATEGORY_BY_DIGIT or code % 1000 == 0:
        raise InvalidRequest("bad_category", f"投诉分类代码 {code} 不在 1001–5999 范围内(x000 无效) category code {code} is not in 1001–5999 (x000 is not a code)")
    return code, CATEGORY_BY_DIGIT[digit]


def check_level(raw_level: object) -> int:
    try:
        level = int(str(raw_level).strip())
    except ValueError:
        level = 0
    if level not in LEVELS:
        raise InvalidRequest("bad_level", f"投诉等级须为 1–4 the complaint level must be 1, 2, 3 or 4, got {shown(raw_level)}")
    return level


def check_channel(raw: object) -> Channel:
    try:
        return Channel(str(raw).strip())
    except ValueError:
        raise InvalidRequest("bad_channel", f"未知投诉渠道 unknown channel {shown(raw)}; one of {', '.join(c.value for c in Channel)}") from None


PHONE_RE = re.compile(r"^\+?\d[\d -]{5,18}\d$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def contact_fields(raw: str) -> dict[str, str]:
    """The customer's contact as a phone or an email (002 §2.1: record the contact)."""
    contact = (raw or "").strip()
    if EMAIL_RE.match(contact):
        return {"email": contact, "phone": "", "contact": contact}
    if PHONE_RE.match(contact):
        return {"phone": re.sub(r"[ -]", "", contact), "email": "", "contact": re.sub(r"[ -]", "", contact)}
    raise InvalidRequest("bad_contact", f"联系方式须为手机号或邮箱 the contact must be a phone number or an email address, got {shown(mask_contact(raw))}")


def required_text(value: str | None, field: str, label: str, limit: int = 500) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidRequest(f"{field}_required", f"请填写{label} {field} is required")
    if len(text) > limit:
        raise InvalidRequest(f"{field}_too_long", f"{label}最多 {limit} 字 {field} is at most {limit} characters")
    return text


def guest_customer_id(contact: str) -> str:
    """A stable id for a complainant without an order: the same contact is the same customer."""
    return "G" + hashlib.sha1(contact.encode()).hexdigest()[:10].upper()


def check_received_at(received_at: datetime | None, now: datetime) -> datetime:
    """Deadlines count from receipt (002 §3.3): a phone complaint may be entered a little later."""
    if received_at is None:
        return now
    if received_at.tzinfo is None:
        raise InvalidRequest("received_at_naive", "受理时间须带时区 received_at needs a timezone, e.g. 2026-11-20T09:30:00+08:00")
    if received_at > now + timedelta(minutes=5):
        raise InvalidRequest("received_at_future", f"受理时间不能在将来 received_at {received_at.isoformat()} is in the future")
    if now - received_at > timedelta(days=30):
        raise InvalidRequest("received_at_too_old", "受理时间早于 30 天前 received_at is more than 30 days ago: register it with its real date by hand")
    return received_at


# --- routing and special complaints (002 §4.1, §5.2) -----------------------------------------------


@dataclass(frozen=True)
class Routing:
    """Who handles the complaint: the department's staff tag, the tag the waits go to, and who
    else is told at intake (the special task group of 002 §5.2)."""

    department: Role
    handler: Role
    copied: tuple[Role, ...]
    special: tuple[str, ...]  # high_value, famous_brand, group

    @property
    def intake_tags(self) -> list[str]:
        tags = [self.handler.value, self.department.value, *(r.value for r in self.copied)]
        return list(dict.fromkeys(tags))


def route(category: Category, level: int, *, high_value: bool = False, famous_brand: bool = False, group: bool = False) -> Routing:
    """002 §4.1: quality → quality department, after-sales → after-sales (agent; a supervisor for
    levels 1–2), logistics → logistics. 002 §5.2: high-value goods go to a dedicated team (the
    managers), group complaints to a special task group (supervisor with the manager); a famous
    brand is handled with its brand owner (noted on the case)."""
    department = {
        Category.PRODUCT: Role.QUALITY,
        Category.LOGISTICS: Role.LOGISTICS,
        Category.PAYMENT: Role.FINANCE,
    }.get(category, Role.AGENT)
    handler = department
    if category in (Category.AFTER_SALES, Category.OTHER):
        handler = Role.SUPERVISOR if level <= 2 else Role.AGENT
    copied: list[Role] = []
    special = []
    if group:
        special.append("group")
        handler = Role.SUPERVISOR
        copied.append(Role.MANAGER)
    if high_value:
        special.append("high_value")
        handler = Role.MANAGER
    if famous_brand:
        special.append("famous_brand")
    return Routing(department, handler, tuple(copied), tuple(special))


# --- deadlines (002 §3.3) --------------------------------------------------------------------------


@dataclass(frozen=True)
class Clock:
    """One deadline and the warning point before it (the share of the time allowed)."""

    start: datetime
    due: datetime
    warn_at: datetime

    @property
    def span(self) -> timedelta:
        return self.due - self.start


def warning_point(start: datetime, due: datetime, share: float) -> datetime:
    return start + (due - start) * share


def first_response_clock(received_at: datetime, level: int, rules: Rules, calendar: BusinessCalendar) -> Clock:
    """002 §3.3: first response in 2/4/6/8 hours by level, from receipt."""
    due = calendar.add_hours(received_at, rules.complaint_first_response_hours[level])
    return Clock(received_at, due, warning_point(received_at, due, rules.complaint_warning_share))


def plan_clock(received_at: datetime, level: int, rules: Rules, calendar: BusinessCalendar) -> Clock:
    """002 §3.3: a handling plan in 24/48/72 hours, or 5 working days for level 4, from receipt."""
    if level == 4:
        due = calendar.add_working_days(received_at, rules.complaint_plan_working_days_level4)
    else:
        due = calendar.add_hours(received_at, rules.complaint_plan_hours[level])
    return Clock(received_at, due, warning_point(received_at, due, rules.complaint_warning_share))


def replan_clock(rejected_at: datetime, level: int, rules: Rules, calendar: BusinessCalendar) -> Clock:
    """After the customer rejects a proposal the next one is due in the level's plan time again (default)."""
    return plan_clock(rejected_at, level, rules, calendar)


# --- result feedback (002 §4.3) --------------------------------------------------------------------


class FeedbackChannel(StrEnum):
    PHONE = "phone"  # oral
    EMAIL = "email"  # written
    SMS = "sms"  # written


WRITTEN = (FeedbackChannel.EMAIL, FeedbackChannel.SMS)


def feedback_channel_problem(level: int, channel: FeedbackChannel) -> str | None:
    """002 §4.3: written feedback for major (level 1) complaints, oral allowed otherwise."""
    if level == 1 and channel not in WRITTEN:
        return "一级(重大)投诉须书面反馈：email 或 sms a level-1 (major) complaint needs written feedback: email or sms"
    return None


class Satisfaction(StrEnum):
    SATISFIED = "satisfied"
    PARTLY = "partly"
    UNSATISFIED = "unsatisfied"


def outcome_for(satisfaction: Satisfaction) -> Outcome:
    """002 §7.1: resolved / partly resolved / unresolved, as the customer sees it."""
    return {Satisfaction.SATISFIED: Outcome.RESOLVED, Satisfaction.PARTLY: Outcome.PARTLY_RESOLVED,
            Satisfaction.UNSATISFIED: Outcome.UNRESOLVED}[satisfaction]
