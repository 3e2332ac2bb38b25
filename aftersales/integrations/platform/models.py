"""The platform's vocabulary as typed models, and money: ``Decimal`` everywhere, a float refused at
the door (``TypeError``) because a float amount has already lost cents."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field


CENT = Decimal("0.01")


def refuse_float(value: Any) -> Any:
    # ValueError, so pydantic reports it as a validation error (the sandbox answers 422).
    # bool is an int subclass; True as an amount is a bug, not one yuan.
    if isinstance(value, (float, bool)):
        raise ValueError(f"money must be a Decimal or a decimal string, not {value!r}")
    return value


def to_cents(value: Decimal) -> Decimal:
    return value.quantize(CENT)


# CNY with at most two places, serialized as a string ("59.00") so JSON never carries a float.
Money = Annotated[
    Decimal,
    BeforeValidator(refuse_float),
    Field(max_digits=14, decimal_places=2),
    AfterValidator(to_cents),
]


def money_text(amount: Decimal) -> str:
    """A Decimal amount as the wire wants it; floats and sub-cent amounts are refused."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"amount must be a Decimal, not {type(amount).__name__} ({amount!r})")
    if not amount.is_finite():
        raise ValueError(f"amount {amount} is not a number of yuan")
    if amount != amount.quantize(CENT):
        raise ValueError(f"amount {amount} has more than two decimal places")
    return str(to_cents(amount))


def yuan_to_fen(amount: Decimal) -> int:
    """A Decimal of yuan as whole fen (分), as TOP's ``refund_infos`` wants it: 200.07 → 20007."""
    return int(Decimal(money_text(amount)) * 100)


def fen_to_yuan(fen: int | str) -> Decimal:
    """Whole fen (an int, or its digits as text) as a Decimal of yuan: 20007 → Decimal("200.07")."""
    if isinstance(fen, (float, bool)) or not str(fen).lstrip("-").isdigit():
        raise ValueError(f"not a whole number of fen: {fen!r}")
    return to_cents(Decimal(int(fen)) / 100)


# --- the platform's vocabulary ----------------------------------------------------------------


class OrderStatus(StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    AWAITING_SHIPMENT = "awaiting_shipment"
    SHIPPED = "shipped"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Rating(StrEnum):
    POSITIVE = "positive"
    NEUTRAL = "neutral"
    NEGATIVE = "negative"


class _Model(BaseModel):
    # A newer gateway may add fields; ignoring them keeps an older client working.
    model_config = ConfigDict(extra="ignore")


class Customer(_Model):
    customer_id: str
    name: str
    phone: str
    email: str | None = None
    address: str
    language: Literal["zh-CN", "en"] = "zh-CN"


class OrderItem(_Model):
    sku: str
    name: str
    category: str
    quantity: int = Field(ge=1)
    unit_price: Money


class Order(_Model):
    order_id: str
    customer: Customer
    items: list[OrderItem]
    paid_amount: Money
    postage_paid: Money = Decimal("0.00")
    free_shipping: bool = False
    status: OrderStatus
    shipped_at: AwareDatetime | None = None
    # when the buyer signed for the parcel; starts the return windows
    delivered_at: AwareDatetime | None = None
    transaction_success_at: AwareDatetime | None = None
    carrier: str | None = None  # Kuaidi100 company code, e.g. "zhongtong"
    waybill: str | None = None
    warehouse_left: bool = False
    # when the platform last created or changed the order (Taobao's ``modified``); set by the platform
    modified_at: AwareDatetime | None = None

    @property
    def delivered(self) -> bool:
        return self.delivered_at is not None


class OrderPage(_Model):
    orders: list[Order]
    next: str | None = None  # cursor for the following page; None on the last one


class ReturnAddress(_Model):
    name: str
    phone: str
    address: str
    postcode: str

    @property
    def text(self) -> str:
        """The address as the buyer's message gives it: one line to copy onto the parcel."""
        return f"{self.name} {self.phone} {self.address} {self.postcode}"


class RefundKind(StrEnum):
    GOODS = "goods"  # part or all of the price paid; never more than was paid in all
    POSTAGE = "postage"  # postage the seller owes the buyer (§1.1: seller at fault), paid on top
    COMPENSATION = "compensation"  # cash to win a buyer's understanding (§1.3, §1.6), paid on top


class Refund(_Model):
    refund_id: str
    order_id: str
    amount: Money
    kind: RefundKind = RefundKind.GOODS
    reason: str
    case_id: str
    status: str
    created_at: AwareDatetime


# --- a buyer's refund at the platform (Taobao/Tmall 退款单, read and decided through top.py) --------


class RefundStatus(StrEnum):
    """A platform refund's state (TOP ``status``, PLATFORMS.md §2.2)."""

    WAIT_SELLER_AGREE = "WAIT_SELLER_AGREE"  # the buyer applied: the seller agrees or refuses
    WAIT_BUYER_RETURN_GOODS = "WAIT_BUYER_RETURN_GOODS"  # the return was agreed: the buyer ships
    WAIT_SELLER_CONFIRM_GOODS = "WAIT_SELLER_CONFIRM_GOODS"  # the buyer shipped (waybill given)
    SELLER_REFUSE_BUYER = "SELLER_REFUSE_BUYER"  # the seller refused
    CLOSED = "CLOSED"  # cancelled by the buyer or closed by the platform
    SUCCESS = "SUCCESS"  # refunded: the platform paid the buyer


class RefundApplication(_Model):
    """A buyer's refund at the platform: refund only or with the goods returned, its state, the
    ``version`` every decision echoes, and the platform's own deadline. ``status`` is kept as text
    (compare with ``RefundStatus``) so a state the platform adds later still reads."""

    refund_id: str
    order_id: str  # TOP tid
    sub_order_id: str | None = None  # TOP oid; equals the tid for a single-item order
    status: str
    goods_returned: bool  # has_good_return: true 退货退款, false 仅退款
    goods_status: str | None = None  # BUYER_NOT_RECEIVED / BUYER_RECEIVED / BUYER_RETURNED_GOODS
    phase: Literal["onsale", "aftersale"] | None = None
    # refund_version: the refund's last change in ms; None from the list call, which does not carry it
    version: int | None = None
    amount: Money  # refund_fee: what the buyer asks back
    order_total: Money | None = None
    reason: str = ""
    description: str = ""
    buyer: str | None = None  # buyer_nick
    buyer_id: str | None = None  # buyer_open_uid (our customer id); only a single refund's read has it
    title: str | None = None
    return_carrier: str | None = None  # company_name of the buyer's return parcel
    return_waybill: str | None = None  # sid
    return_address: str | None = None  # the seller's address the buyer was given
    dispute_type: str | None = None
    created_at: AwareDatetime | None = None
    modified_at: AwareDatetime | None = None
    # refund_remind_timeout: when the platform acts by itself unless someone acts first
    deadline: AwareDatetime | None = None


class RefundPage(_Model):
    refunds: list[RefundApplication]
    has_next: bool = False
    total: int | None = None  # total_results; absent when paging by has_next


class RefundToAgree(_Model):
    """One refund to agree (``taobao.rp.refunds.agree``'s ``refund_infos`` entry
    ``refund_id|amount|version|phase``): the amount in fen on the wire, a Decimal of yuan here."""

    model_config = ConfigDict(frozen=True)

    refund_id: str
    amount: Money
    version: int
    phase: Literal["onsale", "aftersale"] | None = None  # Tmall needs it; Taobao leaves it out

    @property
    def info(self) -> str:
        parts = [self.refund_id, str(yuan_to_fen(self.amount)), str(self.version)]
        return "|".join(parts + [self.phase] if self.phase else parts)

    @classmethod
    def from_info(cls, text: str) -> "RefundToAgree":
        refund_id, fen, version, *phase = text.split("|")
        return cls(refund_id=refund_id, amount=fen_to_yuan(fen), version=int(version), phase=phase[0] if phase else None)


class RefundAgreement(_Model):
    """The platform's answer to an agreement: per refund, whether it went through."""

    msg_code: str | None = None  # OP_SUCC, SOME_OP_SUCC, OP_FAILURE_UE
    message: str = ""
    results: dict[str, tuple[bool, str]] = {}  # refund_id → (succeeded, message)


class RefusalReason(_Model):
    """A reason the platform lets the seller give for refusing this refund."""

    reason_id: int
    text: str
    tips: str | None = None


class RefundMessage(_Model):
    """A message (留言) or evidence left on a refund at the platform."""

    message_id: str
    created_at: AwareDatetime | None = None


class ReshipmentItem(_Model):
    sku: str
    quantity: int = Field(ge=1)


class Reshipment(_Model):
    reshipment_id: str
    order_id: str
    items: list[ReshipmentItem]
    carrier: str
    waybill: str
    status: str
    created_at: AwareDatetime


# --- stock, charges and coupons (§1.2 exchange, §1.3 compensation, §1.7 wrong shipment) ---------


class StockLevel(_Model):
    """A SKU in the shop's catalogue: its price and how many can be shipped now."""

    sku: str
    name: str
    unit_price: Money
    available: int = Field(ge=0)

    def can_ship(self, quantity: int) -> bool:
        return self.available >= quantity


class Charge(_Model):
    """Money the buyer pays (e.g. §1.2: the replacement costs more than the item sent back)."""

    charge_id: str
    order_id: str
    amount: Money
    reason: str
    case_id: str
    status: str
    created_at: AwareDatetime


class Coupon(_Model):
    """A shop coupon issued to a buyer (§1.3 compensation by coupon)."""

    coupon_id: str
    code: str
    customer_id: str
    order_id: str
    amount: Money
    reason: str
    case_id: str
    status: str
    expires_at: AwareDatetime
    created_at: AwareDatetime


class Review(_Model):
    review_id: str
    order_id: str
    customer_id: str
    rating: Rating
    text: str
    created_at: AwareDatetime


class ReviewReport(_Model):
    """A malicious review reported to the platform for verification (§1.6; 000 §5.2.2)."""

    report_id: str
    review_id: str
    reason: str
    evidence: str
    case_id: str
    status: str
    created_at: AwareDatetime


class ReviewPage(_Model):
    reviews: list[Review]
    has_next: bool = False
    total: int | None = None


class TrackingEvent(_Model):
    """One line of a parcel's history, in our words (Kuaidi100: ``data[]``)."""

    time: AwareDatetime
    context: str
    status: str | None = None  # state name, e.g. "签收"
    status_code: str | None = None  # detailed value, e.g. "301" signed by recipient
    area: str | None = None


class TrackingResult(_Model):
    """A parcel's tracking as the carrier aggregator reports it, newest event first."""

    com: str
    waybill: str
    state: int  # Kuaidi100 main state: 3 signed, 0 in transit, 2 problem, ... (Kuaidi100)
    state_code: str  # ``state`` as the aggregator sent it, possibly a detailed value ("301")
    signed: bool  # Kuaidi100 ``ischeck``: the tracking has ended in a signature
    events: list[TrackingEvent]

    @property
    def latest(self) -> TrackingEvent | None:
        return self.events[0] if self.events else None
