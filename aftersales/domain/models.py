"""The case database: every table in one place (SQLModel).

The database is the system of record; Prefect is the engine that drives it. Cases, their
append-only event log, the waits a case is suspended in, the compensation ledger finance exports,
the notification outbox, and the staff who may approve.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import JSON, Column, Field, SQLModel, UniqueConstraint

from aftersales.domain.calendar import utcnow
from aftersales.domain.stages import Stage


class UTCDateTime(TypeDecorator):
    """Stores UTC, returns aware UTC datetimes on every backend (SQLite drops tzinfo)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Optional[datetime], dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} refused: store timezone-aware times")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: Optional[datetime], dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Money(TypeDecorator):
    """Decimal CNY with two places; refuses floats so a float never sneaks into the ledger."""

    impl = sa.Numeric(14, 2, asdecimal=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError(f"money must be Decimal, not float ({value!r})")
        amount = Decimal(value).quantize(Decimal("0.01"))
        return str(amount) if dialect.name == "sqlite" else amount

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return Decimal(str(value)).quantize(Decimal("0.01"))


def _ts(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, **kw)


class Process(StrEnum):  # stored as plain strings: a new process needs no ALTER TYPE
    RETURN = "return"
    EXCHANGE = "exchange"
    COMPENSATION = "compensation"
    OUT_OF_AREA = "out_of_area"
    REPAIR = "repair"
    REVIEW = "review"
    WRONG_SHIPMENT = "wrong_shipment"
    DISPUTE = "dispute"
    COMPLAINT = "complaint"
    TRACKING = "tracking"  # §1.9: a proactive contact raised by the 15-day tracker
    ENQUIRY = "enquiry"  # §1.11: a customer's question as a ticket, from any channel
    EMERGENCY = "emergency"  # §3: an incident affecting many customers, with its plan, updates and review


class CaseStatus(StrEnum):
    """Where a case stands, in the spirit of the platforms' refund statuses (WAIT_SELLER_AGREE,
    WAIT_BUYER_RETURN_GOODS …); ``Case.stage`` says at which step."""

    OPEN = "open"  # recorded, or the system is between steps (paying, shipping, telling)
    WAIT_SELLER = "wait_seller"  # waiting for the shop: a person's decision or work (review, approval, inspection)
    WAIT_BUYER = "wait_buyer"  # waiting for the buyer or an outside event (ship it back, choose, answer)
    CLOSED = "closed"

    @property
    def label(self) -> str:
        return {"open": "处理中 in progress", "wait_seller": "等待商家处理 waiting for the shop",
                "wait_buyer": "等待买家 waiting for the buyer", "closed": "已结束 closed"}[self.value]


class Role(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    MANAGER = "manager"
    WAREHOUSE = "warehouse"
    FINANCE = "finance"
    REVIEW = "review"
    DISPUTE = "dispute"
    QUALITY = "quality"
    LOGISTICS = "logistics"


ADDRESSEE_LABELS = {
    "buyer": "买家 the buyer", "agent": "客服 agents", "supervisor": "主管 supervisors", "manager": "经理 managers",
    "warehouse": "仓库 the warehouse", "finance": "财务 finance", "review": "评价组 the review team",
    "dispute": "维权组 the dispute team", "quality": "质检 quality", "logistics": "物流 logistics",
}


def addressee_label(addressed_to: str) -> str:
    """Whom a wait is for, Chinese first (a role, or the buyer)."""
    return ADDRESSEE_LABELS.get(addressed_to, addressed_to)


def addressee_words(addressed_to: str) -> tuple[str, str]:
    """Whom a wait is for in each language apart (主管, supervisors), for the two halves of a message."""
    zh, _, en = addressee_label(addressed_to).partition(" ")
    return zh, en or zh


class WaitStatus(StrEnum):
    OPEN = "open"
    EXPIRING = "expiring"  # the deadline sweeper has claimed it and is applying the default
    ANSWERED = "answered"  # a valid decision was taken (by a person, an event or the deadline)
    REJECTED = "rejected"  # the input failed a check; a new wait follows
    ESCALATED = "escalated"  # the approver's limit was too low; a wait at the next level follows


class Case(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=80)  # e.g. return-O20261122-001
    process: Process = Field(index=True, sa_type=sa.String(32))
    order_id: str = Field(index=True, max_length=64)
    customer_id: str = Field(index=True, max_length=64)
    status: CaseStatus = Field(default=CaseStatus.OPEN, index=True, sa_type=sa.String(16))
    stage: Stage = Field(default=Stage.OPENED, sa_type=sa.String(64))  # where in the flow chart (domain/stages.py)
    outcome: Optional[str] = Field(default=None, max_length=64)
    level: Optional[int] = None
    requested_by: str = Field(max_length=64)  # "buyer" or the staff id who opened it
    reason: str = Field(default="", max_length=500)
    amount: Decimal = Field(default=Decimal("0"), sa_type=Money)
    currency: str = Field(default="CNY", max_length=3)
    details: dict = Field(default_factory=dict, sa_column=Column(JSON))
    flow_run_id: Optional[str] = Field(default=None, max_length=64)
    # the shop platform the case's order is on (AFTERSALES_PLATFORM when it was opened): its steps
    # talk to that platform for the case's life, whatever the setting is later
    platform: str = Field(default="gateway", max_length=16)
    opened_at: datetime = _ts()
    updated_at: datetime = _ts()
    closed_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)


class CaseEvent(SQLModel, table=True):
    """Append-only audit trail: who did what, when and why. ``key`` makes replays idempotent."""

    __tablename__ = "case_event"
    __table_args__ = (UniqueConstraint("case_id", "key", name="uq_case_event_key"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    case_id: str = Field(foreign_key="case.id", index=True, max_length=80)
    key: str = Field(max_length=120)
    at: datetime = _ts()
    actor: str = Field(max_length=64)  # staff id, "buyer", "system", "platform"
    action: str = Field(max_length=64)
    details: dict = Field(default_factory=dict, sa_column=Column(JSON))


class Wait(SQLModel, table=True):
    """A case suspended for a person or an outside event, with its deadline and default action."""

    # the open waits' deadlines: the deadline sweeper's claim reads the expired ones, oldest first (migration 0009)
    __table_args__ = (UniqueConstraint("case_id", "key", name="uq_wait_key"),
                      sa.Index("ix_wait_open_deadline", "deadline", sqlite_where=sa.text("status = 'open'"),
                               postgresql_where=sa.text("status = 'open'")))

    id: Optional[int] = Field(default=None, primary_key=True)
    case_id: str = Field(foreign_key="case.id", index=True, max_length=80)
    key: str = Field(max_length=80)  # the suspend key, e.g. seller-review-1
    step: str = Field(max_length=64)  # e.g. seller-review
    form: str = Field(max_length=64)
    flow_run_id: Optional[str] = Field(default=None, max_length=64)
    addressed_to: str = Field(max_length=32)  # role or "buyer"/"event"
    deadline: datetime = Field(sa_type=UTCDateTime, index=True)
    default_action: str = Field(max_length=200)
    default_input: dict = Field(default_factory=dict, sa_column=Column(JSON))
    status: WaitStatus = Field(default=WaitStatus.OPEN, index=True, sa_type=sa.String(16))
    notice: str = Field(default="", max_length=1000)  # why this wait (re)opened
    opened_at: datetime = _ts()
    answered_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)
    actor: Optional[str] = Field(default=None, max_length=64)
    decision: dict = Field(default_factory=dict, sa_column=Column(JSON))
    reason: str = Field(default="", max_length=1000)


class LedgerLine(SQLModel, table=True):
    """Money that moved for a case: what finance settles each month (§1, issue 5)."""

    __tablename__ = "ledger_line"

    id: Optional[int] = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True, max_length=120)
    case_id: str = Field(foreign_key="case.id", index=True, max_length=80)
    process: Process = Field(sa_type=sa.String(32))
    order_id: str = Field(index=True, max_length=64)
    kind: str = Field(max_length=32)  # refund, postage, reshipment, compensation, coupon, goods
    amount: Decimal = Field(sa_type=Money)
    currency: str = Field(default="CNY", max_length=3)
    bearer: str = Field(max_length=32)  # seller, buyer, carrier, platform
    responsible_department: str = Field(default="", max_length=64)
    approved_by: str = Field(max_length=64)
    platform_ref: str = Field(default="", max_length=64)
    # True on the line that records a payment the platform confirmed under ``platform_ref``: its
    # amount is the platform's confirmed amount, one line per platform refund, so these lines add up
    # to the platform's statement. False on informational lines (a cost borne by the buyer, the
    # seller's half of the outbound postage, goods re-shipped …), which carry no payment.
    platform_paid: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    note: str = Field(default="", max_length=500)
    created_at: datetime = _ts(index=True)


class OutboxMessage(SQLModel, table=True):
    """A notification written with its case event; delivered by Apprise with retries."""

    __tablename__ = "outbox_message"

    id: Optional[int] = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=160)  # case + event + audience: replays write once
    case_id: str = Field(foreign_key="case.id", index=True, max_length=80)
    audience: str = Field(max_length=16)  # "staff" or "customer"
    tags: str = Field(default="", max_length=200)  # Apprise tags for staff channels
    to_url: str = Field(default="", max_length=500)  # customer channel (unmasked: their own)
    language: str = Field(default="zh-CN", max_length=8)
    subject: str = Field(max_length=300)
    body: str = Field(max_length=4000)
    status: str = Field(default="pending", index=True, max_length=16)  # pending, sending, sent, dead
    attempts: int = 0
    next_attempt_at: datetime = _ts(index=True)
    last_error: str = Field(default="", max_length=1000)
    created_at: datetime = _ts()
    sent_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)


class Staff(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=64)
    role: Role = Field(sa_type=sa.String(16))
    approval_limit: Decimal = Field(default=Decimal("0"), sa_type=Money)
    contact: str = Field(default="", max_length=200)
    # Base32 secret of the staff member's authenticator app (TOTP, RFC 6238).
    totp_secret: str = Field(max_length=64)
    active: bool = True


class OneTimeCodeUse(SQLModel, table=True):
    """A one-time code is accepted once: the (staff, time step) pair is burnt on first use."""

    __tablename__ = "one_time_code_use"
    __table_args__ = (UniqueConstraint("staff_id", "time_step", name="uq_code_use"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    staff_id: str = Field(foreign_key="staff.id", max_length=32)
    time_step: int
    used_at: datetime = _ts()
    case_id: str = Field(default="", max_length=80)


class PushSubscription(SQLModel):
    """A waybill's Kuaidi100 push subscription (快递信息推送服务), kept on the row it serves: subscribed
    once (a waybill may be subscribed only a few times a month), its pushes applied idempotently."""

    subscribed_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)
    subscriptions: int = 0  # times subscribed, against the provider's monthly limit
    # "" never subscribed, "subscribed" waiting for the first push, then the last push's status:
    # polling / updateall (tracking), shutdown (finished), abort (the provider gave up); "failed"
    # when subscribing failed (push_note says why); "polled": a return parcel the tracker polls instead
    push_status: str = Field(default="", max_length=16, index=True)
    push_note: str = Field(default="", max_length=200)
    last_push_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)
    resubscribe_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)  # after a "no record" abort
    carrier_was: str = Field(default="", max_length=32)  # the code before the provider's correction (comOld)


class TrackedOrder(PushSubscription, table=True):
    """An order the 15-day tracker watches (§1.9): from shipment to 15 days after it was signed."""

    __tablename__ = "tracked_order"

    order_id: str = Field(primary_key=True, max_length=64)
    customer_id: str = Field(max_length=64)
    carrier: str = Field(max_length=32)
    waybill: str = Field(max_length=64)
    phone_tail: str = Field(default="", max_length=4)  # SF checks the last 4 digits; no full phone kept
    shipped_at: datetime = Field(sa_type=UTCDateTime)
    signed_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)
    watching: bool = Field(default=True, index=True)
    next_check_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    last_checked_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)
    last_state: Optional[int] = None
    last_status_code: str = Field(default="", max_length=8)
    last_event_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)
    acted_on: list = Field(default_factory=list, sa_column=Column(JSON))  # finding keys already handled


class ReturnParcel(PushSubscription, table=True):
    """The parcel a buyer sends back (§1.1 step 4), subscribed when they report its waybill: the
    carrier's signature at our warehouse answers the case's receipt wait (§1.1 step 5)."""

    __tablename__ = "return_parcel"

    case_id: str = Field(primary_key=True, max_length=80)
    order_id: str = Field(max_length=64)
    carrier: str = Field(max_length=32)
    waybill: str = Field(max_length=64)
    receipt_step: str = Field(max_length=64)  # the wait a signature answers (return: receipt)
    last_state: Optional[int] = None
    last_event_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)
    signed_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)
    acted_on: list = Field(default_factory=list, sa_column=Column(JSON))  # e.g. "receipt": answered once


class Checkpoint(SQLModel, table=True):
    """Where a poller got to (e.g. the newest review or order it has seen)."""

    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=200)
    updated_at: datetime = _ts()


class WarningAlert(SQLModel, table=True):
    """An early-warning alert (002 §9.2): one per subject (SKU or category) and window, so a
    breach is announced once however often the check runs; delivered to the department's tag."""

    __tablename__ = "warning_alert"

    id: Optional[int] = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=200)  # e.g. sku:SKU-TSHIRT-M:2026-11-16
    subject_kind: str = Field(max_length=16)  # "sku" or "category"
    subject: str = Field(max_length=100)
    window_start: datetime = Field(sa_type=UTCDateTime)
    window_end: datetime = Field(sa_type=UTCDateTime)
    count: int
    threshold: float  # mean + k·stddev of earlier windows, at least the floor (a count, not money)
    department: str = Field(max_length=32)  # Apprise staff tag
    status: str = Field(default="pending", index=True, max_length=16)  # pending, sent
    attempts: int = 0
    last_error: str = Field(default="", max_length=1000)
    created_at: datetime = _ts()
    sent_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)
