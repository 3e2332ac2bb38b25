"""Where a case stands in its process's flow chart (``Case.stage``), in the shop's words.

A case's *status* says for whom it waits (``CaseStatus``: the shop, the buyer, nobody, closed), its
*outcome* how it ended (``outcomes.Outcome``); its *stage* is the step of the rulebook's flow chart
it is at: one word per step, each with its Chinese-first label, shown by ``aftersales case show``,
the intake API and the case card. A wait's step carries its round and level (``solution-2``,
``repair-receipt-supervisor``, ``approval-manager``); the stage is the step without them
(``stage_of``), so every round and every level of one step is the same stage.
"""

from __future__ import annotations

import re
from enum import StrEnum


class Stage(StrEnum):
    OPENED = "opened"
    CLOSED = "closed"
    # §1.1 return (and §1.2 exchange, which goes the same way back)
    SELLER_REVIEW = "seller-review"
    BUYER_SHIPMENT = "buyer-shipment"
    IN_RETURN_TRANSIT = "in-return-transit"
    RECEIPT = "receipt"
    INSPECTION = "inspection"
    SHORT_SHIPMENT_REMEDY = "short-shipment-remedy"
    REFUSED_PARCEL_BACK = "refused-parcel-back"
    SMS_CODE = "sms-code"  # a large refund on Taobao/Tmall waits for the seller's SMS code
    # any process, on a platform without the call (TOP): a person does it in Qianniu and records it
    IN_QIANNIU = "in-qianniu"
    REPORT_IN_QIANNIU = "in-qianniu-report"  # a malicious review reported (§1.6)
    REFUSE_GOODS_IN_QIANNIU = "in-qianniu-refuse-goods"  # returned goods that failed inspection refused (§1.1)
    # §1.3 compensation
    APPROVAL = "approval"
    # §1.4 express out of area, §1.7 wrong shipment
    BUYER_CHOICE = "buyer-choice"
    SELF_PICKUP = "self-pickup"
    ASSESSMENT = "assessment"
    # §1.5 repair: the approval, the buyer's parcel, the six recorded stages (004 fig. 5.5)
    REPAIR_APPROVAL = "repair-approval"
    BUYER_SHIPS = "buyer-ships"
    REPAIR_RECEIPT = "repair-receipt"
    REPAIR_DONE = "repair-done"
    REPAIR_SHIP_BACK = "repair-ship-back"
    BUYER_RECEIPT = "buyer-receipt"
    REPAIR_BUYER_SHIPPED = "repair_buyer_shipped"
    REPAIR_WAREHOUSE_RECEIVED = "repair_warehouse_received"
    REPAIR_UNDER_REPAIR = "repair_under_repair"
    REPAIR_REPAIRED = "repair_repaired"
    REPAIR_SHIPPED_BACK = "repair_shipped_back"
    REPAIR_BUYER_RECEIVED = "repair_buyer_received"
    # §1.6 negative review
    REVIEW_CAUSE = "review-cause"
    CAUSE_FOUND = "cause-found"
    REVIEW_VERIFY = "review-verify"
    OFFER_APPROVAL = "offer-approval"
    OFFER = "offer"
    BUYER_RESPONSE = "buyer-response"
    # §1.8 dispute
    SHOP_REPLY = "shop-reply"
    CLOSING = "closing"
    # §1.10 complaint: the six steps of 002 §4.2
    FIRST_RESPONSE = "first-response"
    INVESTIGATION = "investigation"
    SOLUTION = "solution"
    COMPENSATION_APPROVAL = "compensation-approval"
    CUSTOMER_ANSWER = "customer-answer"
    EXECUTION = "execution"
    RESULT_FEEDBACK = "result-feedback"
    FEEDBACK = "feedback"
    # §1.11 enquiry ticket (its first response is FIRST_RESPONSE)
    RESOLUTION = "resolution"
    # §3 emergency
    CONTINGENCY_PLAN = "contingency-plan"
    CUSTOMER_UPDATE = "customer-update"
    POST_INCIDENT_REVIEW = "post-incident-review"

    @property
    def label(self) -> str:
        return LABELS[self]


LABELS: dict[Stage, str] = {
    Stage.OPENED: "已开案 opened",
    Stage.CLOSED: "已结束 closed",
    Stage.SELLER_REVIEW: "商家审核 the seller reviews the request",
    Stage.BUYER_SHIPMENT: "等待买家退货 waiting for the buyer to send the goods back",
    Stage.IN_RETURN_TRANSIT: "退货在途 the goods are on their way back",
    Stage.RECEIPT: "等待仓库收货 waiting for the warehouse to confirm receipt",
    Stage.INSPECTION: "验货 inspection",
    Stage.SHORT_SHIPMENT_REMEDY: "少件处理 short shipment: refund or re-ship",
    Stage.REFUSED_PARCEL_BACK: "确认拒收包裹已退回 confirming the refused parcel is back",
    Stage.SMS_CODE: "等待退款短信验证码 waiting for the refund's SMS code",
    Stage.IN_QIANNIU: "等待在千牛手工处理 waiting for it to be done by hand in Qianniu",
    Stage.REPORT_IN_QIANNIU: "等待在千牛投诉恶意评价 waiting for the review to be reported in Qianniu",
    Stage.REFUSE_GOODS_IN_QIANNIU: "等待在千牛拒绝退货（附验货照片）waiting for the goods to be refused in Qianniu, with the photos",
    Stage.APPROVAL: "补偿审批 compensation approval",
    Stage.BUYER_CHOICE: "等待买家选择 waiting for the buyer's choice",
    Stage.SELF_PICKUP: "买家自提 the buyer collects the parcel",
    Stage.ASSESSMENT: "责任考核 assessing who was responsible",
    Stage.REPAIR_APPROVAL: "返修审批 repair approval",
    Stage.BUYER_SHIPS: "等待买家寄修 waiting for the buyer to send the item in",
    Stage.REPAIR_RECEIPT: "仓库收货确认 the warehouse confirms receipt",
    Stage.REPAIR_DONE: "维修中 under repair",
    Stage.REPAIR_SHIP_BACK: "维修完成待寄回 repaired, to be sent back",
    Stage.BUYER_RECEIPT: "等待买家收货 waiting for the buyer to receive it",
    Stage.REPAIR_BUYER_SHIPPED: "买家已寄出 the buyer sent the item",
    Stage.REPAIR_WAREHOUSE_RECEIVED: "仓库已收货 the warehouse received it",
    Stage.REPAIR_UNDER_REPAIR: "维修中 under repair",
    Stage.REPAIR_REPAIRED: "维修完成入库 repaired and back in stock",
    Stage.REPAIR_SHIPPED_BACK: "已寄回 sent back to the buyer",
    Stage.REPAIR_BUYER_RECEIVED: "买家已收货 the buyer received it",
    Stage.REVIEW_CAUSE: "查找差评原因 finding the review's cause",
    Stage.CAUSE_FOUND: "已查明原因 cause found",
    Stage.REVIEW_VERIFY: "核实恶意评价 verifying a malicious review",
    Stage.OFFER_APPROVAL: "补偿方案审批 approving the offer",
    Stage.OFFER: "已向买家提出补偿 offer made to the buyer",
    Stage.BUYER_RESPONSE: "等待买家答复 waiting for the buyer's answer",
    Stage.SHOP_REPLY: "店铺答复 the shop's reply",
    Stage.CLOSING: "维权结案 closing the dispute",
    Stage.FIRST_RESPONSE: "首次响应 first response",
    Stage.INVESTIGATION: "调查核实 investigation",
    Stage.SOLUTION: "提出方案 proposing a solution",
    Stage.COMPENSATION_APPROVAL: "补偿审批 compensation approval",
    Stage.CUSTOMER_ANSWER: "等待客户确认方案 waiting for the customer to agree",
    Stage.EXECUTION: "执行方案 carrying out the solution",
    Stage.RESULT_FEEDBACK: "结果反馈 feeding back the result",
    Stage.FEEDBACK: "结果反馈 feeding back the result",
    Stage.RESOLUTION: "处理工单 resolving the enquiry",
    Stage.CONTINGENCY_PLAN: "启动应急预案 starting the contingency plan",
    Stage.CUSTOMER_UPDATE: "处理中，定时通报受影响客户 being solved, affected customers updated on schedule",
    Stage.POST_INCIDENT_REVIEW: "事后复盘 post-incident review",
}

# what a wait's step adds to its stage: a reminder round, the level it escalated to, a round number
_SUFFIXES = (re.compile(r"-overdue-\d+$"), re.compile(r"-(agent|supervisor|manager)$"), re.compile(r"-\d+$"))


def stage_of(step: str) -> Stage:
    """The stage of a step (``solution-2`` → solution, ``approval-manager`` → approval); a ValueError
    names a step that is no stage of any process."""
    name = step
    for suffix in _SUFFIXES:
        name = suffix.sub("", name)
    try:
        return Stage(name)
    except ValueError:
        raise ValueError(f"{step!r} is no stage of any process (domain/stages.py)") from None


def stage_label(stage: str) -> str:
    """A stored stage in the shop's words (a row written before stages were words shows as stored)."""
    try:
        return stage_of(stage).label
    except ValueError:
        return stage
