"""§1.11 Enquiry tickets: the agent's first response (when the channel has not reported it) and the
ticket's resolution."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from aftersales.approvals.forms import MONEY_PATTERN, StaffForm
from aftersales.domain.enquiry_rules import Resolution
from aftersales.domain.models import Role

AGENTS = (Role.AGENT, Role.SUPERVISOR, Role.MANAGER)


class FirstResponse(StaffForm):
    """001 §二: the first answer to the customer (an e-mail: confirming receipt, explaining the process)."""

    allowed_roles: ClassVar[tuple[Role, ...]] = AGENTS
    must_answer: ClassVar[tuple[str, ...]] = ("note",)

    note: str = Field(default="", title="首次答复 First answer", description="已回复客户的内容（确认收到、说明流程）what the customer was told: received, and what happens next",
                      min_length=1, max_length=500)


class EnquiryResolution(StaffForm):
    """The ticket's end: answered, handed over as a return or a complaint (its history kept), or not resolved."""

    allowed_roles: ClassVar[tuple[Role, ...]] = AGENTS
    must_answer: ClassVar[tuple[str, ...]] = ("note",)

    result: Resolution = Field(
        default=Resolution.ANSWERED,
        title="处理结果 Result",
        description=("answered 已解答 the customer has the answer / convert_to_return 转为退货（售后工单，须有订单）"
                     "becomes a return case (an after-sales ticket with an order) / convert_to_complaint 转为投诉 becomes a complaint / "
                     "unresolved 未解决 not resolved (the supervisor is told)"),
    )
    note: str = Field(default="", title="告知客户的结果 Result told to the customer",
                      description="发给客户的处理结果 the result, sent to the customer", min_length=1, max_length=500)
    refund_amount: str = Field(default="", title="退款金额(元) Refund amount (CNY)（转退货时填写 for convert_to_return）",
                               description="转退货时申请的金额，不填为订单实付 for convert_to_return; empty: what the order paid",
                               pattern=rf"^(|{MONEY_PATTERN[1:-1]})$")
    return_kind: str = Field(default="no_reason", title="退货类型 Return kind（转退货时 for convert_to_return）",
                             description="no_reason 七天无理由 / quality 质量问题 / wrong_item 描述不符或错发", pattern=r"^(no_reason|quality|wrong_item)$")
    complaint_level: int = Field(default=3, ge=1, le=4, title="投诉等级 Complaint level（转投诉时 for convert_to_complaint）",
                                 description="1 重大 … 4 建议 (002 §3.3)")
    complaint_category: str = Field(default="4001", title="投诉分类 Complaint category（转投诉时 for convert_to_complaint）",
                                    description="四位分类代码，4xxx 售后服务 four-digit code, 4xxx after-sales", pattern=r"^\d{4}$")
