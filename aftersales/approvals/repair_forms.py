"""§1.5 Repair: the superior's approval of an out-of-warranty/out-of-scope repair, and the forms of
the six stages (the buyer ships, the warehouse receives, the repair is done, the item goes back,
the buyer receives it)."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from aftersales.approvals.forms import MONEY_PATTERN, ApprovalDecision, EventForm, StaffForm
from aftersales.domain.models import Role


class RepairApproval(StaffForm):
    """§1.5: an out-of-warranty (超期) or out-of-scope (超服务) repair needs a superior's approval."""

    allowed_roles: ClassVar[tuple[Role, ...]] = (Role.SUPERVISOR, Role.MANAGER)

    decision: ApprovalDecision = Field(
        default=ApprovalDecision.APPROVE,
        title="审批结果 Decision",
        description="approve 同意维修（买家按下方报价付费）the repair goes ahead at the quote below / decline 不予维修（须写明原因，会告知买家）give the reason, the buyer is told",
    )
    quote: str = Field(
        default="0.00",
        title="维修报价(元) Quote to the buyer (CNY)",
        description="买家承担的维修费（含来回运费）；0 表示本店免费维修。What the buyer pays for the repair incl. postage both ways; 0 = the shop repairs free of charge.",
        pattern=MONEY_PATTERN,
    )
    note: str = Field(default="", title="说明 Note（不予维修时必填 required to decline）", description="不予维修时必填，会发给买家。Required when declining; sent to the buyer.", max_length=500)


class ShipmentAction(StrEnum):
    SHIPPED = "shipped"
    WITHDRAWN = "withdrawn"


class RepairShipment(EventForm):
    """Stage 1 买家已寄出: the buyer sends the item in (or withdraws the repair)."""

    action: ShipmentAction = Field(
        default=ShipmentAction.SHIPPED,
        title="买家操作 Buyer's action",
        description="shipped 已寄出（有报价时即表示接受报价）sent, which accepts any quote / withdrawn 撤销返修 withdraw the repair",
    )
    carrier: str = Field(default="", title="快递公司编码 Carrier code（已寄出时必填 required when shipped）", description="快递100 编码，如 zhongtong Kuaidi100 code, e.g. zhongtong", pattern=r"^([a-z0-9]{2,20})?$")
    tracking_number: str = Field(default="", title="运单号 Tracking number（已寄出时必填 required when shipped）", description="寄修包裹的运单号 waybill of the parcel sent in", pattern=r"^([A-Za-z0-9]{6,32})?$")
    postage_paid: str = Field(
        default="0.00",
        title="买家支付的寄修运费(元) Postage the buyer paid (CNY)",
        description="保修期内由本店退还 refunded by the shop for an in-warranty repair",
        pattern=MONEY_PATTERN,
    )


class RepairReceipt(StaffForm):
    """Stage 2 仓库收货确认: the warehouse confirms the item arrived and hands it to repair."""

    allowed_roles: ClassVar[tuple[Role, ...]] = (Role.WAREHOUSE, Role.SUPERVISOR, Role.MANAGER)

    note: str = Field(default="", title="到货情况 Condition on arrival", description="外观、配件是否齐全 outer condition, accessories present", max_length=500)


class RepairDone(StaffForm):
    """Stages 3–4 维修中 → 维修完成入库: the repair is done and the item is back in stock."""

    allowed_roles: ClassVar[tuple[Role, ...]] = (Role.QUALITY, Role.WAREHOUSE, Role.SUPERVISOR, Role.MANAGER)

    repair_cost: str = Field(
        default="0.00",
        title="维修成本(元) Repair cost (CNY)",
        description="配件和人工的实际成本，记入售后台账 actual parts and labour, booked in the after-sales ledger",
        pattern=MONEY_PATTERN,
    )
    note: str = Field(default="", title="维修记录 Repair record", description="更换了什么、检测结果 what was replaced, test result", max_length=500)


class RepairShippedBack(StaffForm):
    """Stage 5 返修出库/寄回: the warehouse ships the repaired item back."""

    allowed_roles: ClassVar[tuple[Role, ...]] = (Role.WAREHOUSE, Role.SUPERVISOR, Role.MANAGER)

    carrier: str = Field(title="快递公司编码 Carrier code", description="快递100 编码 Kuaidi100 code, e.g. zhongtong", pattern=r"^[a-z0-9]{2,20}$")
    tracking_number: str = Field(title="运单号 Tracking number", description="寄回包裹的运单号 waybill of the parcel back to the buyer", pattern=r"^[A-Za-z0-9]{6,32}$")
    postage: str = Field(title="寄回运费(元) Postage back (CNY)", description="寄回的实际运费 what sending it back cost", pattern=MONEY_PATTERN)


class RepairReceived(EventForm):
    """Stage 6 买家已收货: the buyer (or the carrier's signature) confirms the item arrived."""

    note: str = Field(default="", title="说明 Note", description="买家反馈 the buyer's feedback", max_length=500)
