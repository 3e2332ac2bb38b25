"""The forms of a dispute (§1.8): the shop's reply, and the closing with responsibility and root
cause. Chinese first, English alongside."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from aftersales.approvals.forms import StaffForm
from aftersales.domain.dispute_rules import Department, DisputeResult, RootCause
from aftersales.domain.models import Role

DISPUTE_STAFF = (Role.DISPUTE, Role.SUPERVISOR, Role.MANAGER)


class Position(StrEnum):
    ACCEPT = "accept"  # the buyer is right
    PARTIAL = "partial"  # partly right: an offer
    CONTEST = "contest"  # the shop contests, with evidence


class DisputeReply(StaffForm):
    """§1.8: the shop's reply to the buyer's reasons, within ``dispute_reply_days``."""

    allowed_roles: ClassVar[tuple[Role, ...]] = DISPUTE_STAFF

    position: Position = Field(
        default=Position.CONTEST,
        title="本店立场 The shop's position",
        description="accept 认可买家诉求 / partial 部分认可(提出方案) / contest 有异议(附凭证) accept the claim, partly (an offer), or contest it with evidence",
    )
    reply: str = Field(
        default="",
        title="本店答复 The shop's reply",
        description="提交平台并发给买家的答复 the reply filed with the platform and sent to the buyer",
        max_length=2000,
    )
    evidence: str = Field(
        default="",
        title="凭证 Evidence",
        description="发货底单、聊天记录、质检报告等(编号或链接) waybill, chat logs, inspection report (ids or links)",
        max_length=1000,
    )


class DisputeClosing(StaffForm):
    """§1.8: the dispute closes with its final explanation and handling opinion, the responsible
    department, person and penalty/assessment, and the root cause — none may be left out."""

    allowed_roles: ClassVar[tuple[Role, ...]] = DISPUTE_STAFF

    result: DisputeResult = Field(
        title="维权结果 Result",
        description="settled 协商解决 / refunded 平台判买家胜并退款 / rejected 平台驳回买家诉求 / withdrawn 买家撤诉",
    )
    final_explanation: str = Field(default="", title="最终说明 Final explanation", max_length=2000)
    handling_opinion: str = Field(default="", title="处理意见 Handling opinion", max_length=2000)
    responsible_department: Department = Field(
        title="责任部门 Responsible department",
        description="warehouse 仓库 / quality 质检 / logistics 物流 / after_sales 售后 / customer_service 客服 / purchasing 采购 / operations 运营 / none 无(仅买家诉求不成立时)",
    )
    responsible_person: str = Field(default="", title="责任人 Responsible person", description="姓名或工号 name or staff id", max_length=64)
    penalty: str = Field(default="", title="处罚/考核结果 Penalty or assessment", description="如：扣绩效 5 分、警告、无 e.g. 5 performance points, warning, none", max_length=500)
    root_cause: RootCause = Field(
        title="根本原因类别 Root cause",
        description="product_quality 商品质量 / description 描述 / packing_shipping 包装发货 / carrier 快递 / service 服务 / process 流程 / buyer 买家原因 / other 其他",
    )
    root_cause_detail: str = Field(default="", title="根本原因说明 Root cause in words", description="暴露出的管理漏洞 the management gap this dispute shows", max_length=1000)
