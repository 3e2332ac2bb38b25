"""§1.5 Repair (返修, 004 fig. 5.5) as pure rules: the six stages, the warranty, when a superior
must approve, and who bears the costs.

Who pays (our decision, documented in the flow): inside the warranty and the service scope the
seller bears the repair cost, the buyer's postage to send the item in (refunded) and the postage
back. Out of warranty (超期) or out of scope (超服务) the repair needs a superior's approval with a
quote; the buyer accepts it by shipping the item, and then bears the quoted repair cost and the
postage both ways.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from aftersales.domain.rules import InvalidRequest, shown
from aftersales.domain.settings import Rules


class RepairScope(StrEnum):
    IN_SCOPE = "in_scope"  # a fault the warranty covers
    OUT_OF_SCOPE = "out_of_scope"  # 超服务: e.g. water or drop damage, a part not covered


class RepairStage(StrEnum):
    """The six stages of 004 fig. 5.5, in order; each is a recorded event the buyer is told of."""

    BUYER_SHIPPED = "repair_buyer_shipped"  # 买家已寄出
    WAREHOUSE_RECEIVED = "repair_warehouse_received"  # 仓库收货确认
    UNDER_REPAIR = "repair_under_repair"  # 维修中
    REPAIRED = "repair_repaired"  # 维修完成入库
    SHIPPED_BACK = "repair_shipped_back"  # 返修出库/寄回
    BUYER_RECEIVED = "repair_buyer_received"  # 买家已收货


@dataclass(frozen=True)
class RepairTerms:
    in_warranty: bool
    warranty_ends: datetime
    scope: RepairScope

    @property
    def needs_approval(self) -> bool:
        """§1.5: out-of-warranty or out-of-scope repairs need a superior's approval."""
        return not self.in_warranty or self.scope is RepairScope.OUT_OF_SCOPE

    def bearer(self, quote) -> str:
        """Who bears the repair cost and the postage: the seller inside warranty and scope, or when
        a superior approved an out-of-warranty repair free of charge (quote 0); else the buyer,
        who accepted the quote by sending the item in."""
        return "buyer" if self.needs_approval and quote > 0 else "seller"

    @property
    def why_approval(self) -> str:
        reasons = []
        if not self.in_warranty:
            reasons.append(f"超出保修期 out of warranty (ended {self.warranty_ends.date().isoformat()})")
        if self.scope is RepairScope.OUT_OF_SCOPE:
            reasons.append("超出服务范围 out of the service scope")
        return "; ".join(reasons)


def parse_scope(raw: str) -> RepairScope:
    try:
        return RepairScope(str(raw).strip().lower())
    except ValueError:
        raise InvalidRequest("unknown_scope", f"未知维修范围 unknown scope {shown(raw)}; one of in_scope, out_of_scope") from None


def validate_repair_request(order_id: str, status: str, delivered_at: datetime | None, skus: set[str], sku: str,
                            fault: str, scope: RepairScope, now: datetime, rules: Rules) -> RepairTerms:
    """§1.5: a repair order must be linked to an order the buyer has received, for an item in it."""
    if status in ("awaiting_payment", "cancelled"):
        raise InvalidRequest("order_not_paid", f"订单 {order_id} 状态为 {status}，不能返修 order {order_id} is {status}: nothing to repair")
    if delivered_at is None:
        raise InvalidRequest("not_delivered", f"订单 {order_id} 尚未签收，不能返修 order {order_id} has not been delivered yet")
    if sku not in skus:
        raise InvalidRequest("unknown_item", f"订单 {order_id} 中没有商品 {sku} item {sku} is not in order {order_id} (items: {', '.join(sorted(skus))})")
    if not fault.strip():
        raise InvalidRequest("fault_required", "请描述故障 describe the fault to repair")
    warranty_ends = delivered_at + timedelta(days=rules.repair_warranty_days)
    return RepairTerms(in_warranty=now <= warranty_ends, warranty_ends=warranty_ends, scope=scope)
