"""Opening a repair order (§1.5): refuse a bad request at once (nothing is recorded), else start
its run. One repair order per order and item: a repeated request finds it already open."""

from __future__ import annotations

from aftersales.domain.calendar import utcnow
from aftersales.domain.details import RepairDetails
from aftersales.domain.masking import mask_text
from aftersales.domain.repair_rules import RepairScope, parse_scope, validate_repair_request
from aftersales.domain.rules import check_order_id, check_skus, check_text
from aftersales.domain.settings import get_settings
from aftersales.domain.models import Process
from aftersales.intake.core import NewCase, Opened, open_case
from aftersales.intake.registry import ProcessEntry, ProcessRequest, cli
from aftersales.integrations.platform import shop_platform
from aftersales.tasks.intake import order_facts


def repair_case_id(order_id: str, sku: str) -> str:
    return f"repair-{order_id}-{sku}"


async def open_repair(order_id: str, sku: str, fault: str, scope: RepairScope | str = RepairScope.IN_SCOPE,
                      requested_by: str = "S001") -> Opened:
    scope = parse_scope(scope)
    order_id = check_order_id(order_id)
    sku = check_skus(sku)[0]
    fault = check_text(fault, "fault", "故障描述")
    requested_by = check_text(requested_by, "requested_by", "录入人工号", 64)
    async with shop_platform() as platform:
        order, facts = await order_facts(platform, order_id)
    # delivered: the platform's time, or the carrier's signature where the platform gives none (TOP)
    terms = validate_repair_request(order_id, order.status, facts.delivered_at, {i.sku for i in order.items}, sku, fault,
                                    scope, utcnow(), get_settings().rules)
    case_id = repair_case_id(order_id, sku)
    fault = mask_text(fault)
    item = next(i for i in order.items if i.sku == sku)
    new = NewCase(
        fields=dict(id=case_id, process=Process.REPAIR, order_id=order_id, customer_id=order.customer.customer_id,
                    requested_by=requested_by, reason=fault, amount=item.unit_price,
                    details=RepairDetails(sku=sku, item=item.name, scope=scope, in_warranty=terms.in_warranty,
                                          warranty_ends=terms.warranty_ends, needs_approval=terms.needs_approval,
                                          why_approval=terms.why_approval, delivered_at=facts.delivered_at,
                                          customer=order.customer.model_dump(mode="json"))),
        opened={"sku": sku, "fault": fault, "scope": scope.value, "in_warranty": terms.in_warranty,
                "warranty_ends": terms.warranty_ends, "needs_approval": terms.needs_approval},
        terms={"scope": scope.value}, actor=requested_by,
        # in warranty and scope the buyer hears from the send-in step; otherwise at once that it needs approval
        notice="repair_needs_approval" if terms.needs_approval else None, buyer=True,
        say=lambda _case: {"item": item.name, "why": terms.why_approval},
    )
    return await open_case(
        "repair/repair", new,
        {"case_id": case_id, "order_id": order_id, "sku": sku, "fault": fault, "scope": scope.value, "requested_by": requested_by},
        tags=["process:repair", "warranty:in" if terms.in_warranty else "warranty:out", f"scope:{scope.value}"],
    )


class RepairRequest(ProcessRequest):
    order_id: str = cli("--order", "订单号 order id (delivered)")
    sku: str = cli("--sku", "需维修的商品 SKU the item to repair")
    fault: str = cli("--fault", "故障描述 the fault")
    scope: str = cli("--scope", "in_scope | out_of_scope 超服务 (e.g. water or drop damage)", RepairScope.IN_SCOPE.value)
    requested_by: str = cli("--requested-by", "the agent's staff id", "S001")


PROCESS = ProcessEntry(
    name="repair", section="§1.5", title="Repairs (§1.5) 返修", route="repairs", request=RepairRequest, opener=open_repair,
    summary="Open a repair order; out-of-warranty or out-of-scope repairs wait for a superior's approval.",
    # in warranty, waiting for the buyer to send the item; water damage, waiting for a supervisor
    demo=(RepairRequest(order_id="O20261120-004", sku="AP-HEPA-600", fault="风机异响 the fan rattles"),
          RepairRequest(order_id="O20261120-003", sku="EB-ANC-BK", fault="耳机进水无声 water damage, no sound",
                        scope=RepairScope.OUT_OF_SCOPE.value, requested_by="S012")),
)
