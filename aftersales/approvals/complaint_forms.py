"""The forms of a complaint (§1.10, 002 §4.2): first response, investigation, solution, compensation
approval, the customer's answer and the result feedback. Chinese first, English alongside."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from aftersales.approvals.forms import MONEY_PATTERN, EventForm, StaffForm
from aftersales.domain.complaint_rules import FeedbackChannel, Satisfaction
from aftersales.domain.models import Role

# Anyone in the departments complaints are routed to, and their superiors.
HANDLERS = (Role.AGENT, Role.QUALITY, Role.LOGISTICS, Role.FINANCE, Role.SUPERVISOR, Role.MANAGER)


class FirstResponse(StaffForm):
    """002 §4.2 step 2 (confirm): the first contact with the customer, within 2/4/6/8 hours by level."""

    allowed_roles: ClassVar[tuple[Role, ...]] = HANDLERS

    message: str = Field(
        default="",
        title="给客户的首次回复 First response to the customer",
        description="确认已受理、复述问题、告知处理时限；会发给客户。Confirm receipt, restate the problem, say by when it will be handled; sent to the customer.",
        max_length=1000,
    )
    confirmed_facts: str = Field(
        default="",
        title="核实的情况 Facts confirmed",
        description="与客户核实的情况(内部记录) what was confirmed with the customer (internal)",
        max_length=1000,
    )


class ResponsibleParty(StrEnum):
    SELLER = "seller"  # the shop
    SUPPLIER = "supplier"
    CARRIER = "carrier"
    PLATFORM = "platform"
    CUSTOMER = "customer"
    NONE = "none"


class Investigation(StaffForm):
    """002 §4.2 step 3 (investigate): what happened and who is responsible."""

    allowed_roles: ClassVar[tuple[Role, ...]] = HANDLERS

    findings: str = Field(
        default="",
        title="调查结果 Findings",
        description="调查经过和结论；质量问题写明与供应商核实的结果。What was found; for quality problems, what the supplier confirmed.",
        max_length=2000,
    )
    responsible_party: ResponsibleParty = Field(
        default=ResponsibleParty.SELLER,
        title="责任方 Responsible party",
        description="seller 本店 / supplier 供应商 / carrier 快递 / platform 平台 / customer 客户 / none 无. Who bears the cost of a remedy.",
    )


class Remedy(StrEnum):
    APOLOGY = "apology"  # apologise and explain
    COMPENSATION = "compensation"  # cash compensation on top of the price (needs approval by amount)
    RETURN_EXCHANGE = "return_exchange"  # the customer is invited to a return or exchange (§1.1/§1.2)


class Solution(StaffForm):
    """002 §4.2 step 4 (propose a solution): the remedy proposed to the customer."""

    allowed_roles: ClassVar[tuple[Role, ...]] = HANDLERS
    must_answer: ClassVar[tuple[str, ...]] = ("message",)

    remedy: Remedy = Field(
        default=Remedy.APOLOGY,
        title="处理方案 Remedy",
        description="apology 道歉说明 / compensation 现金补偿(按金额审批) cash compensation, approved by amount / return_exchange 引导退换货 invite a return or exchange",
    )
    compensation_amount: str = Field(
        default="0.00",
        title="补偿金额(元) Compensation (CNY)（现金补偿时必填 required for compensation）",
        description="仅 compensation 时填写；超过您的权限将送上级审批。Only for compensation; above your limit it goes to a superior.",
        pattern=MONEY_PATTERN,
    )
    message: str = Field(
        default="",
        title="给客户的方案说明 The proposal as the customer reads it",
        description="将发给客户并征求同意。Sent to the customer, who is asked to agree.",
        max_length=1000,
    )


class CustomerAnswerChoice(StrEnum):
    AGREE = "agree"
    REJECT = "reject"


class CustomerAnswer(EventForm):
    """002 §4.2 step 4: the customer agrees to the proposal or rejects it (then a new proposal)."""

    answer: CustomerAnswerChoice = Field(
        title="客户意见 Customer's answer",
        description="agree 同意方案 / reject 不同意(将重新拟定方案) reject: a new proposal follows",
    )
    comment: str = Field(default="", title="客户说明 Customer's comment", max_length=1000)


class ResultFeedback(StaffForm):
    """002 §4.3: the result told to the customer within 3 working days after handling ends."""

    allowed_roles: ClassVar[tuple[Role, ...]] = HANDLERS

    channel: FeedbackChannel = Field(
        default=FeedbackChannel.PHONE,
        title="反馈方式 Channel",
        description="phone 电话(口头) / email 邮件 / sms 短信. 一级投诉须书面(email/sms) a level-1 complaint needs written feedback.",
    )
    satisfaction: Satisfaction = Field(
        default=Satisfaction.SATISFIED,
        title="客户满意度 Customer satisfaction",
        description="satisfied 满意(已解决) / partly 部分满意 / unsatisfied 不满意(未解决，转主管)",
    )
    note: str = Field(default="", title="客户反馈 What the customer said", max_length=1000)
