"""§1.6 Negative-review follow-up (评价/中差评, 004 fig. 5.7) as pure rules: which reviews are
followed up, which department a review goes to, and who approves an offer.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from aftersales.domain.models import Role
from aftersales.domain.rules import InvalidRequest, approval_level, shown
from aftersales.domain.settings import Rules

FOLLOWED_UP = ("neutral", "negative")  # 中评、差评; a positive review needs no follow-up


class OfferForm(StrEnum):
    NONE = "none"  # no compensation: apologise and explain
    CASH = "cash"  # 现金补偿: paid to the buyer through the platform
    GOODS = "goods"  # 商品补偿: an item sent to the buyer free of charge


# The department that finds the cause (§1.6 “responsible department heads”), by what the buyer
# wrote; the first match wins, anything else is a service matter for the after-sales agents.
DEPARTMENT_KEYWORDS: tuple[tuple[Role, tuple[str, ...]], ...] = (
    (Role.QUALITY, ("质量", "开胶", "坏", "破", "瑕疵", "做工", "薄", "褪色", "异味", "quality", "broken", "defect")),
    (Role.LOGISTICS, ("物流", "快递", "太慢", "配送", "延迟", "shipping", "delivery", "courier")),
    (Role.WAREHOUSE, ("发错", "少发", "漏发", "包装", "wrong item", "missing", "packaging")),
)


def check_followed_up(review_id: str, rating: str) -> None:
    if rating not in FOLLOWED_UP:
        raise InvalidRequest("positive_review", f"评价 {review_id} 为 {rating}，无需跟进 review {review_id} is {rating}: only neutral and negative reviews are followed up")


def responsible_department(text: str) -> Role:
    lowered = text.lower()
    for role, words in DEPARTMENT_KEYWORDS:
        if any(word in lowered for word in words):
            return role
    return Role.AGENT


def parse_department(raw: str | None, text: str) -> Role:
    if raw is None or raw == "":
        return responsible_department(text)
    try:
        return Role(raw)
    except ValueError:
        raise InvalidRequest("unknown_department", f"未知部门 unknown department {shown(raw)}; one of {', '.join(r.value for r in Role)}") from None


def offer_approver(amount: Decimal, rules: Rules) -> Role:
    """§1.6: the amount and form of compensation ALWAYS need a superior — never an agent alone,
    whatever the amount; above the supervisor's limit, the manager (§1.3)."""
    level = approval_level(amount, rules)
    return Role.SUPERVISOR if level is Role.AGENT else level
