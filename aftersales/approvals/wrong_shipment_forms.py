"""Forms of the wrong shipment (§1.7): the buyer's choice and the supervisor's assessment record."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from aftersales.approvals.forms import MONEY_PATTERN, EventForm, StaffForm
from aftersales.domain.models import Role
from aftersales.domain.wrong_shipment_rules import BuyerChoice


class WrongShipmentChoice(EventForm):
    """§1.7: the parcel has left the warehouse: the buyer chooses re-ship or return."""

    choice: BuyerChoice = Field(
        default=BuyerChoice.RESHIP,
        title="买家选择 Buyer's choice",
        description="reship 补发正确商品（错发商品由本店上门取回）/ return 退货退款（错发商品由本店上门取回，退还货款）. reship: the correct items are sent, the wrong ones picked up; return: the wrong ones are picked up and the price refunded.",
    )
    note: str = Field(default="", title="说明 Note", max_length=500)


class WrongShipmentAssessment(StaffForm):
    """§1.7 记录考核: the supervisor records who is responsible and the assessment."""

    allowed_roles: ClassVar[tuple[Role, ...]] = (Role.SUPERVISOR, Role.MANAGER)

    responsible_person: str = Field(
        title="责任人 Responsible person",
        description="错发的责任人：工号或姓名，如 S004 刘洋（拣货）. Who caused the wrong shipment: staff id or name, e.g. S004 (picking).",
        min_length=1,
        max_length=64,
    )
    department: str = Field(
        default="warehouse",
        title="责任部门 Department",
        description="warehouse 仓库 / logistics 物流 / after_sales 售后 / supplier 供应商",
        pattern=r"^[a-z_]{2,32}$",
    )
    economic_loss: str = Field(
        default="0.00",
        title="直接经济损失(元) Direct economic loss (CNY)",
        description="已预填补发与取回运费；如有其他损失请修改。Prefilled with the extra postage; change it if there is more.",
        pattern=MONEY_PATTERN,
    )
    negative_effect: bool = Field(
        default=False,
        title="造成负面影响 Negative effect",
        description="如买家投诉、差评 e.g. a complaint or a bad review",
    )
    assessment: str = Field(
        title="考核结果 Assessment",
        description="按发货考核制度的处理，如 扣绩效 2 分 / 口头提醒. The result under the shipping assessment rules, e.g. 2 performance points deducted.",
        min_length=1,
        max_length=500,
    )
