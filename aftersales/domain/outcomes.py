"""How a case ended, in the shop's words: each process's own words (``OUTCOMES``, declared once
here) and which of the rulebook's three results each word is (002 §7.1: resolved / partly resolved
/ unresolved; withdrawn or lapsed requests — a buyer who never shipped — and malicious reviews are
no customer problem and are left out of the split).

A flow closes a case with an ``Outcome`` of its own process; any other word — not on this list, or
another process's (a repair closed as "settled") — is refused when the case closes
(``integrations/case_store.close_case``), so the monthly statistics never meet an outcome they
cannot count, nor a case counted under a word its process cannot end with.
"""

from __future__ import annotations

from enum import StrEnum

from aftersales.domain.models import Process


class Result(StrEnum):
    """002 §7.1's results, as the monthly statistics count them."""

    RESOLVED = "resolved"
    PARTLY = "partly_resolved"
    UNRESOLVED = "unresolved"
    EXCLUDED = "excluded"  # left out of the split: withdrawn or abandoned requests, malicious reviews


class Outcome(StrEnum):
    # §1.1 return / §1.2 exchange
    REFUNDED = "refunded"
    PARTLY_REFUNDED = "partly_refunded"
    REFUNDED_AUTOMATICALLY = "refunded_automatically"
    REFUSED = "refused"
    INSPECTION_FAILED = "inspection_failed"
    CLOSED_NOT_SHIPPED = "closed_not_shipped"  # the buyer never sent it back: the request lapsed
    EXCHANGED = "exchanged"
    REFUNDED_OUT_OF_STOCK = "refunded_out_of_stock"
    # §1.3 compensation (and a review's or a complaint's compensation)
    COMPENSATED = "compensated"
    DECLINED = "declined"
    DECLINED_NO_ANSWER = "declined_no_answer"
    # §1.4 express out of area
    CARRIER_SWITCHED = "carrier_switched"
    SELF_PICKUP_ARRANGED = "self_pickup_arranged"
    RETURNED_REFUNDED = "returned_refunded"
    # §1.5 repair
    REPAIRED = "repaired"
    REPAIR_DECLINED = "repair_declined"
    REPAIR_WITHDRAWN = "repair_withdrawn"
    # §1.6 negative review
    APOLOGISED = "apologised"
    NO_OFFER_MADE = "no_offer_made"
    OFFER_DECLINED = "offer_declined"
    NO_RESPONSE = "no_response"
    REPORTED_MALICIOUS = "reported_malicious"
    RESHIPPED = "reshipped"  # §1.1: a short shipment's missing items re-shipped
    # §1.7 wrong shipment
    RESHIPPED_CORRECT_ITEMS = "reshipped_correct_items"
    CORRECTED_BEFORE_DISPATCH = "corrected_before_dispatch"
    REFUNDED_WRONG_ITEMS = "refunded_wrong_items"
    OUT_OF_STOCK_REFUNDED = "out_of_stock_refunded"
    # §1.8 dispute (the closing form's results)
    SETTLED = "settled"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    # §1.9 tracking, §1.10 complaint (as the customer sees it)
    BUYER_CONTACTED = "buyer_contacted"
    RESOLVED = "resolved"
    PARTLY_RESOLVED = "partly_resolved"
    UNRESOLVED = "unresolved"
    # §1.11 enquiry ticket (unresolved as above)
    ANSWERED = "answered"
    CONVERTED = "converted"  # handed over as a return or a complaint: counted there

    @property
    def result(self) -> Result:
        return RESULT[self]

    @property
    def label(self) -> str:
        return LABEL[self]


_R, _P, _U, _X = Result.RESOLVED, Result.PARTLY, Result.UNRESOLVED, Result.EXCLUDED
O = Outcome

RESULT: dict[Outcome, Result] = {
    O.REFUNDED: _R, O.PARTLY_REFUNDED: _P, O.REFUNDED_AUTOMATICALLY: _R, O.REFUSED: _U, O.INSPECTION_FAILED: _U,
    O.CLOSED_NOT_SHIPPED: _X, O.EXCHANGED: _R, O.REFUNDED_OUT_OF_STOCK: _R,
    O.COMPENSATED: _R, O.DECLINED: _U, O.DECLINED_NO_ANSWER: _U,
    O.CARRIER_SWITCHED: _R, O.SELF_PICKUP_ARRANGED: _R, O.RETURNED_REFUNDED: _R,
    O.REPAIRED: _R, O.REPAIR_DECLINED: _U, O.REPAIR_WITHDRAWN: _X,
    O.APOLOGISED: _R, O.NO_OFFER_MADE: _P, O.OFFER_DECLINED: _U, O.NO_RESPONSE: _U, O.REPORTED_MALICIOUS: _X,
    O.RESHIPPED: _R, O.RESHIPPED_CORRECT_ITEMS: _R, O.CORRECTED_BEFORE_DISPATCH: _R, O.REFUNDED_WRONG_ITEMS: _R,
    O.OUT_OF_STOCK_REFUNDED: _R,
    O.SETTLED: _R, O.REJECTED: _U, O.WITHDRAWN: _X,
    O.BUYER_CONTACTED: _R, O.RESOLVED: _R, O.PARTLY_RESOLVED: _P, O.UNRESOLVED: _U,
    O.ANSWERED: _R, O.CONVERTED: _X,
}

LABEL: dict[Outcome, str] = {
    O.REFUNDED: "已退款", O.PARTLY_REFUNDED: "部分退款", O.REFUNDED_AUTOMATICALLY: "超时自动退款", O.REFUSED: "卖家拒绝",
    O.INSPECTION_FAILED: "验货不通过", O.CLOSED_NOT_SHIPPED: "买家未退货，申请关闭", O.EXCHANGED: "已换货",
    O.REFUNDED_OUT_OF_STOCK: "无货退款", O.COMPENSATED: "已补偿", O.DECLINED: "补偿未获批准", O.DECLINED_NO_ANSWER: "审批超时，未补偿",
    O.CARRIER_SWITCHED: "已改发其他快递", O.SELF_PICKUP_ARRANGED: "已安排自提", O.RETURNED_REFUNDED: "退回并退款",
    O.REPAIRED: "已修复寄回", O.REPAIR_DECLINED: "不予维修", O.REPAIR_WITHDRAWN: "买家撤回返修",
    O.APOLOGISED: "已致歉", O.NO_OFFER_MADE: "已致歉，未补偿", O.OFFER_DECLINED: "买家拒绝补偿", O.NO_RESPONSE: "买家未回复",
    O.REPORTED_MALICIOUS: "恶意评价已举报", O.RESHIPPED: "已补发", O.RESHIPPED_CORRECT_ITEMS: "已改发正确商品",
    O.CORRECTED_BEFORE_DISPATCH: "发货前已更正", O.REFUNDED_WRONG_ITEMS: "错发商品退款", O.OUT_OF_STOCK_REFUNDED: "无货退款",
    O.SETTLED: "协商解决", O.REJECTED: "平台驳回", O.WITHDRAWN: "买家撤回",
    O.BUYER_CONTACTED: "已联系买家", O.RESOLVED: "已解决", O.PARTLY_RESOLVED: "部分解决", O.UNRESOLVED: "未解决",
    O.ANSWERED: "已解答", O.CONVERTED: "已转为售后或投诉案件",
}


# Which words each process may close with — the words its flow (``flows/<process>.py``,
# ``tasks/<process>.py``, the deadlines it waits on) actually closes with; ``close_case`` refuses the rest.
P = Process
OUTCOMES: dict[Process, frozenset[Outcome]] = {
    # §1.1: refused at review, failed inspection, refunded in full or in part, lapsed (never shipped),
    # refunded automatically (receipt unconfirmed, or a refused parcel), a short shipment re-shipped
    # — and, for a refund applied for at the platform (TOP), withdrawn when the buyer cancels it there
    P.RETURN: frozenset({O.REFUSED, O.INSPECTION_FAILED, O.REFUNDED, O.PARTLY_REFUNDED, O.CLOSED_NOT_SHIPPED,
                         O.REFUNDED_AUTOMATICALLY, O.RESHIPPED, O.WITHDRAWN}),
    # §1.2: an unconfirmed receipt counts as received (the replacement ships), never an automatic refund
    P.EXCHANGE: frozenset({O.REFUSED, O.INSPECTION_FAILED, O.CLOSED_NOT_SHIPPED, O.REFUNDED_OUT_OF_STOCK, O.EXCHANGED}),
    P.COMPENSATION: frozenset({O.COMPENSATED, O.DECLINED, O.DECLINED_NO_ANSWER}),
    P.OUT_OF_AREA: frozenset({O.CARRIER_SWITCHED, O.SELF_PICKUP_ARRANGED, O.RETURNED_REFUNDED}),
    P.REPAIR: frozenset({O.REPAIRED, O.REPAIR_DECLINED, O.REPAIR_WITHDRAWN, O.CLOSED_NOT_SHIPPED}),
    P.REVIEW: frozenset({O.APOLOGISED, O.NO_OFFER_MADE, O.OFFER_DECLINED, O.NO_RESPONSE, O.REPORTED_MALICIOUS, O.COMPENSATED}),
    P.WRONG_SHIPMENT: frozenset({O.RESHIPPED_CORRECT_ITEMS, O.CORRECTED_BEFORE_DISPATCH, O.REFUNDED_WRONG_ITEMS,
                                 O.OUT_OF_STOCK_REFUNDED}),
    # §1.8: the closing form's results (dispute_rules.DisputeResult), "refunded" when the platform ruled for the buyer
    P.DISPUTE: frozenset({O.SETTLED, O.REFUNDED, O.REJECTED, O.WITHDRAWN}),
    P.COMPLAINT: frozenset({O.RESOLVED, O.PARTLY_RESOLVED, O.UNRESOLVED}),
    P.TRACKING: frozenset({O.BUYER_CONTACTED}),
    # §1.11: answered, handed over as a return or a complaint (its result counted there), or not resolved
    P.ENQUIRY: frozenset({O.ANSWERED, O.CONVERTED, O.UNRESOLVED}),
    # §3: an emergency closes only after its post-incident review
    P.EMERGENCY: frozenset({O.RESOLVED}),
}


class WrongOutcome(ValueError):
    """A word the case's process cannot close with."""


def outcome_for_process(process: Process | str, outcome: Outcome | str) -> Outcome:
    """``outcome`` as one of ``process``'s words, or ``WrongOutcome`` (a ``ValueError``) naming the
    process and the words it may close with."""
    process = Process(process)
    allowed = OUTCOMES[process]
    word = outcome.value if isinstance(outcome, Outcome) else str(outcome)
    if word in allowed:  # StrEnum: the stored string is the member
        return Outcome(word)
    words = ", ".join(sorted(o.value for o in allowed))
    owners = "/".join(p.value for p in OUTCOMES if word in OUTCOMES[p])
    what = f"a {owners} outcome" if owners else "no outcome of any process"
    raise WrongOutcome(f"a {process.value} case cannot close as {word!r}, {what}; {process.value} closes with: {words}")
