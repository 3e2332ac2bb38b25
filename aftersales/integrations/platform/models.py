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
    state: int  # Kuaidi100 main state: 3 signed, 0 in transit, 2 problem, ... (CARRIERS.md)
    state_code: str  # ``state`` as the aggregator sent it, possibly a detailed value ("301")
    signed: bool  # Kuaidi100 ``ischeck``: the tracking has ended in a signature
    events: list[TrackingEvent]

    @property
    def latest(self) -> TrackingEvent | None:
        return self.events[0] if self.events else None
