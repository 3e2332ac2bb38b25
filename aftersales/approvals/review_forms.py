"""§1.6 Negative-review follow-up: the department's cause, the review specialist's verification of a
suspected malicious review, the superior's approval of an offer, and the buyer's answer."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from aftersales.approvals.forms import MONEY_PATTERN, EventForm, StaffForm
from aftersales.domain.models import Role
from aftersales.domain.review_rules import OfferForm


class ReviewVerdict(StrEnum):
    GENUINE = "genuine"
    SUSPECTED_MALICIOUS = "suspected_malicious"




class CauseFinding(StaffForm):
    """The responsible department finds the cause and proposes how to win the buyer over."""

    allowed_roles: ClassVar[tuple[Role, ...]] = (
        Role.QUALITY, Role.WAREHOUSE, Role.LOGISTICS, Role.AGENT, Role.REVIEW, Role.SUPERVISOR, Role.MANAGER,
    )

    cause: str = Field(title="原因 Cause", description="问题的原因（必填）what caused the problem (required)", max_length=500)
    verdict: ReviewVerdict = Field(
        default=ReviewVerdict.GENUINE,
        title="评价性质 The review is",
        description="genuine 真实评价 / suspected_malicious 疑似恶意评价（交回评专员核实，不补偿）goes to the review specialist to verify, no offer",
    )
    offer_form: OfferForm = Field(
        default=OfferForm.NONE,
        title="建议补偿方式 Proposed compensation",
        description="none 不补偿（致歉说明）apology only / cash 现金 / goods 商品（从订单商品中赠送 an item of the order, sent free）. 须上级审批 a superior must approve",
    )
    offer_amount: str = Field(default="0.00", title="建议金额(元) Proposed amount (CNY)（建议补偿时必填 required with an offer）", description="现金金额或赠品价值 the cash, or the goods' value", pattern=MONEY_PATTERN)
    goods_sku: str = Field(default="", title="赠品 SKU Goods SKU（赠品补偿时必填 required for goods）", description="商品补偿时填写 for goods: the SKU to send", max_length=64)


class VerificationResult(StrEnum):
    MALICIOUS = "malicious"
    GENUINE = "genuine"


class MaliciousVerification(StaffForm):
    """The review specialist verifies a suspected malicious review (000 §5.2.2)."""

    allowed_roles: ClassVar[tuple[Role, ...]] = (Role.REVIEW, Role.SUPERVISOR, Role.MANAGER)

    result: VerificationResult = Field(
        default=VerificationResult.GENUINE,
        title="核实结果 Result",
        description="malicious 确认恶意，向平台举报 confirmed, report it to the platform / genuine 真实评价，按正常流程跟进 genuine, follow up as usual (the buyer stays protected)",
    )
    evidence: str = Field(default="", title="证据 Evidence（确认恶意时必填 required for malicious）", description="确认恶意时必填，随举报提交平台 required for malicious; sent with the report", max_length=1000)


class OfferDecision(StrEnum):
    APPROVE = "approve"
    REFUSE = "refuse"


class OfferApproval(StaffForm):
    """§1.6: the amount and form of compensation always need a superior's approval."""

    allowed_roles: ClassVar[tuple[Role, ...]] = (Role.SUPERVISOR, Role.MANAGER)

    decision: OfferDecision = Field(
        default=OfferDecision.APPROVE,
        title="审批结果 Decision",
        description="approve 同意按下方方式和金额补偿 offer the form and amount below / refuse 不补偿 no offer",
    )
    offer_form: OfferForm = Field(default=OfferForm.CASH, title="补偿方式 Form", description="cash 现金 / goods 商品")
    amount: str = Field(title="补偿金额(元) Amount (CNY)", description="不得高于建议金额 not above the proposed amount", pattern=MONEY_PATTERN)
    goods_sku: str = Field(default="", title="赠品 SKU Goods SKU（赠品补偿时必填 required for goods）", description="商品补偿时 for goods", max_length=64)
    note: str = Field(default="", title="说明 Note", max_length=500)


class BuyerAnswer(StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"


class BuyerResponse(EventForm):
    """The buyer's answer to the offer (from the platform's chat, or entered by the agent)."""

    response: BuyerAnswer = Field(default=BuyerAnswer.ACCEPTED, title="买家答复 Buyer's answer", description="accepted 接受补偿 / declined 拒绝补偿")
    review_updated: bool = Field(default=False, title="买家已修改评价 The buyer updated the review", description="买家是否追评或修改了评价 whether the buyer revised the review")
    note: str = Field(default="", title="说明 Note", max_length=500)
