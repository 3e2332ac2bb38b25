"""Recording an emergency (§3; 001 §四) at once: by a person, by an early-warning breach far above
its threshold, or by a group complaint. It links the cases and orders it touches and, through them,
every affected customer, who will hear of it on a schedule (``flows/emergency.py``)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from aftersales.domain import complaint_rules
from aftersales.domain import emergency_rules as rules_
from aftersales.domain.details import Customer, EmergencyDetails, details_of
from aftersales.domain.masking import mask_text
from aftersales.domain.models import Process
from aftersales.domain.rules import InvalidRequest, check_order_id, check_ref, check_text, shown
from aftersales.domain.settings import get_settings
from aftersales.intake.core import NewCase, Opened, open_case
from aftersales.intake.registry import ProcessEntry, ProcessRequest, cli
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope
from aftersales.integrations.platform import OrderNotFound, shop_platform


def emergency_case_id(ref: str) -> str:
    return f"emergency-{ref}"


async def open_emergency(*, title: str, severity: int | str, scope: str, ref: str, orders: Iterable[str] = (),
                         cases: Iterable[str] = (), source: str = rules_.Source.STAFF.value, reported_by: str = "S001") -> Opened:
    """One emergency per reference: a repeat (the next early-warning sweep, a second report) opens nothing new."""
    level = rules_.check_severity(severity)
    what = complaint_rules.required_text(title, "title", "事件标题", 200)
    extent = complaint_rules.required_text(scope, "scope", "影响范围", 500)
    ref = check_ref(ref, "ref", "事件编号", 70)
    if not ref:
        raise InvalidRequest("ref_required", "请填写事件编号 ref (the emergency's reference) is required")
    try:
        origin = rules_.Source(str(source).strip())
    except ValueError:
        raise InvalidRequest("bad_source", f"未知来源 unknown source {shown(source)}; one of {', '.join(s.value for s in rules_.Source)}") from None
    reported_by = check_text(reported_by, "reported_by", "报告人", 64) or "S001"
    order_ids = list(dict.fromkeys(check_order_id(order) for order in orders if str(order).strip()))
    case_ids = list(dict.fromkeys(str(case).strip() for case in cases if str(case).strip()))
    customers: dict[str, Customer] = {}
    with session_scope() as session:
        for case_id in case_ids:
            try:
                linked = case_store.get_case(session, case_id)
            except LookupError:
                raise InvalidRequest("unknown_case", f"案件 {case_id} 不存在 case {shown(case_id)} not found") from None
            buyer = details_of(linked).customer
            if buyer is not None:
                customers.setdefault(buyer.customer_id, buyer)
    if order_ids:
        async with shop_platform() as platform:
            for order_id in order_ids:
                try:
                    order = await platform.get_order(order_id)
                except OrderNotFound:
                    raise InvalidRequest("unknown_order", f"订单 {order_id} 不存在 order {order_id} not found on the platform") from None
                customers.setdefault(order.customer.customer_id, Customer.model_validate(order.customer.model_dump(mode="json")))

    case_id = emergency_case_id(ref)
    details = EmergencyDetails(title=mask_text(what), severity=level, scope=mask_text(extent), source=origin, affected_cases=case_ids,
                               affected_orders=order_ids, customers=list(customers.values()), reported_by=reported_by)
    hours = get_settings().rules.emergency_plan_hours[level]
    new = NewCase(
        fields=dict(id=case_id, process=Process.EMERGENCY, order_id=order_ids[0] if order_ids else "", customer_id="", requested_by=reported_by,
                    reason=details.title[:500], amount=Decimal("0"), details=details),
        opened={"title": details.title, "severity": level, "scope": details.scope, "source": origin.value, "cases": case_ids,
                "orders": order_ids, "customers": len(customers)},
        terms={}, actor=reported_by,
        notice="emergency_opened", staff_tags=tuple(rules_.told_at_once(level)),
        say=lambda case: {"title": details.title, "severity": rules_.SEVERITY_LABEL[level], "scope": details.scope,
                          "customers": len(customers), "plan_hours": hours},
    )
    return await open_case("emergency/emergency", new, {"case_id": case_id}, subject=("此事件", "this emergency"),
                           tags=["process:emergency", f"severity:{level}", f"source:{origin.value}"])


class EmergencyRequest(ProcessRequest):
    title: str = cli("--title", "事件标题 what happened")
    severity: int = cli("--severity", "严重程度 1 重大 major | 2 较大 serious | 3 一般 general")
    scope: str = cli("--scope", "影响范围 who and what it affects")
    ref: str = cli("--ref", "事件编号 the emergency's reference; a repeat opens nothing new")
    orders: list[str] = cli("--order", "受影响订单 an affected order (repeatable)", [])
    cases: list[str] = cli("--case", "相关案件 a linked case (repeatable)", [])
    source: str = cli("--source", "staff | early_warning | group_complaint", rules_.Source.STAFF.value)
    reported_by: str = cli("--reported-by", "报告人工号 the staff id reporting it", "S001")


PROCESS = ProcessEntry(
    name="emergency", section="§3.1", title="Emergencies (§3.1) 突发事件", route="emergencies", request=EmergencyRequest,
    opener=open_emergency,
    summary="Record an emergency: its plan is due at once, affected customers are updated on schedule, it closes only with its review.",
    demo=(EmergencyRequest(title="仓库漏水，部分订单延迟发货 a warehouse leak delays dispatch", severity=2, ref="DEMO-WAREHOUSE-LEAK",
                           scope="华东仓 A 区货架受潮 the East China warehouse, zone A", orders=["O20261120-005", "O20261120-007"],
                           reported_by="S004"),),
)
