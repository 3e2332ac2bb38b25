"""What a case keeps (``Case.details``), typed: one pydantic model per process over ``CaseDetails``,
what every case may carry.

The JSON column stays as it is: the field names are its keys, so stored rows keep their shape and
no migration is needed. Every model refuses a key it does not declare (``extra="forbid"``), so a
misspelt or forgotten key fails where it is written or read, not silently later.

- Read a case's state with ``details_of(case)`` (validated on every read: a row that does not fit
  fails loudly, naming the key).
- Intake builds the process's model and stores ``stored(model)``; a later writer changes it with
  ``with_changes`` and ``store`` — a new dict on ``case.details``, so SQLAlchemy sees the change.
- A field is required where the flows always relied on it (``details["x"]``); where they read it
  with a default (``details.get("kind", "no_reason")``) the model has that default, so an older or
  hand-written row still reads. ``stored`` writes only the keys that were given: a default is not
  written into a row that never had it.

Money is ``Decimal`` (stored as a string, "59.00"), times are aware (stored with ``isoformat()``
as before, "2026-11-20T10:00:00+00:00"). Pure: no Prefect, nothing above the domain.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator

from aftersales.domain.complaint_rules import Category, Channel
from aftersales.domain.compensation_rules import CompensationForm, CompensationRequest
from aftersales.domain.dispute_rules import Closing, DisputeReason
from aftersales.domain.emergency_rules import Source
from aftersales.domain.enquiry_rules import EnquiryChannel, EnquiryType
from aftersales.domain.exchange_rules import ExchangeTerms, PriceDifference
from aftersales.domain.models import Case, Process, Role
from aftersales.domain.out_of_area_rules import ParcelProblem
from aftersales.domain.repair_rules import RepairScope, RepairTerms
from aftersales.domain.rules import ReturnKind


def _no_float(value: Any) -> Any:
    if isinstance(value, (float, bool)):
        raise ValueError(f"money must be a Decimal or a decimal string, not {value!r}")
    return value


# CNY as Decimal; JSON carries it as a string, never a float
Money = Annotated[Decimal, BeforeValidator(_no_float), PlainSerializer(str, return_type=str, when_used="json")]
# an aware time, stored as ``isoformat()`` (as the rows always had it)
Time = Annotated[AwareDatetime, PlainSerializer(lambda moment: moment.isoformat(), return_type=str, when_used="json")]
Bearer = Literal["seller", "carrier", "platform", "supplier"]  # compensation_rules.BEARERS


class _Stored(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- what every case may carry ---------------------------------------------------------------------


class Customer(_Stored):
    """The buyer as intake wrote them: the platform's customer, or a complaint's customer from the
    contact given. The id is what messages and links need; the rest was always read with a default."""

    customer_id: str
    name: str = ""
    phone: str = ""
    email: str | None = None
    address: str = ""
    language: str = "zh-CN"
    contact: str | None = None  # a complaint: how the customer reached us (phone or email)


class OrderLine(_Stored):
    """One line of the order, as the platform gave it at intake."""

    sku: str
    name: str
    category: str
    quantity: int = Field(ge=1)
    unit_price: Money


class RunRequest(_Stored):
    """How the case's run was asked for (``intake/core.start_case_run``), kept so that a case
    recorded without its run — the Prefect API refused the request (a busy SQLite server answers
    503), or the process died in between — is given it later, once (the case id is the key)."""

    deployment: str
    parameters: dict[str, Any] = {}
    tags: list[str] = []


class Opening(_Stored):
    """What the run's first task records and sends (written at the door, ``intake/core.py``)."""

    actor: str
    run: RunRequest | None = None
    event: dict[str, Any] = {}
    notice: str | None = None
    staff_tags: list[str] = []
    buyer: bool = False
    context: dict[str, Any] = {}
    times: list[str] = []  # the keys of ``context`` that are times, kept as text in JSON

    def message_context(self) -> dict[str, Any]:
        """The placeholders of the first messages, with their times as times again."""
        context = dict(self.context)
        context.update({key: datetime.fromisoformat(context[key]) for key in self.times if context.get(key)})
        return context


class SatisfactionAnswer(_Stored):
    """The buyer's score after the close (``reporting/satisfaction.py``)."""

    score: int = Field(ge=1, le=5)
    at: Time
    comment: str = ""


class CaseDetails(_Stored):
    """What every case may carry."""

    customer: Customer | None = None
    items: list[OrderLine] = []  # the order's lines, where a process stores them (the review keeps prices instead)
    request_terms: dict[str, Any] | None = None  # what a repeated request must agree on (intake/core.py)
    opening: Opening | None = None
    satisfaction: SatisfactionAnswer | None = None

    def names(self) -> dict[str, str]:
        """The order's item names by SKU."""
        return {line.sku: line.name for line in self.items}


# --- one model per process -------------------------------------------------------------------------


class ReturnDetails(CaseDetails):
    """§1.1. The readers always defaulted these: a return without them is a no-reason return."""

    kind: ReturnKind = ReturnKind.NO_REASON
    missing_skus: list[str] = []
    free_shipping: bool = False
    # a return the buyer applied for at the platform (TOP): decided on that refund there
    platform_refund_id: str | None = None
    platform_phase: str | None = None  # onsale / aftersale, echoed with every decision
    goods_back: bool = True  # false: refund only (仅退款), nothing is sent back
    platform_deadline: Time | None = None  # when the platform acts by itself (refund_remind_timeout)
    platform_status: str | None = None  # the refund's status as platform-sync last read it
    platform_modified: Time | None = None  # …and when it last changed there


class ExchangeDetails(CaseDetails):
    """§1.2: what is exchanged for what, at which prices (``ExchangeTerms.as_details``)."""

    kind: ReturnKind = ReturnKind.NO_REASON
    sku: str
    new_sku: str
    quantity: int = Field(ge=1)
    unit_price: Money
    new_unit_price: Money
    difference: Money
    settlement: PriceDifference
    new_name: str

    @property
    def terms(self) -> ExchangeTerms:
        return ExchangeTerms(sku=self.sku, new_sku=self.new_sku, quantity=self.quantity, unit_price=self.unit_price,
                             new_unit_price=self.new_unit_price)


class CompensationDetails(CaseDetails):
    """§1.3: the form, who bears it, the goods (SKU, quantity) and the approval levels it needs."""

    form: CompensationForm
    bearer: Bearer
    goods: list[tuple[str, int]] = []
    approvals_needed: list[Role] = []

    def request(self, amount: Decimal) -> CompensationRequest:
        return CompensationRequest(self.form, amount, self.bearer, tuple(self.goods))


class OutOfAreaDetails(CaseDetails):
    """§1.4: the problem parcel, who bears the extra postage, and the remedies' defaults."""

    problem: ParcelProblem
    carrier: str
    waybill: str
    bearer: Bearer
    last_scan: str = ""
    pickup_point: str = ""
    note: str = ""
    new_carrier: str


class RepairDetails(CaseDetails):
    """§1.5: the item, its warranty and scope, and why it needs a superior's approval."""

    sku: str
    item: str
    scope: RepairScope
    in_warranty: bool
    warranty_ends: Time
    needs_approval: bool
    why_approval: str
    delivered_at: Time

    @property
    def terms(self) -> RepairTerms:
        return RepairTerms(in_warranty=self.in_warranty, warranty_ends=self.warranty_ends, scope=self.scope)


class ReviewDetails(CaseDetails):
    """§1.6: the review and the department that finds its cause. ``prices`` are the order's unit
    prices by SKU (the goods an offer may give); rows written before it had its own name kept them
    under ``items`` as ``{sku: price}`` — read as ``prices``."""

    review_id: str
    rating: Literal["neutral", "negative"]
    text: str
    department: Role
    review_created_at: Time
    prices: dict[str, Money] = {}

    @model_validator(mode="before")
    @classmethod
    def _prices_were_items(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("items"), dict):
            data = dict(data)
            data["prices"] = {**data.pop("items"), **(data.get("prices") or {})}
        return data


class WrongShipmentDetails(CaseDetails):
    """§1.7: the ordered items sent wrong, and whether the parcel had left the warehouse."""

    skus: list[str]
    warehouse_left: bool
    negative_effect: bool = False


class DisputeDetails(CaseDetails):
    """§1.8: the dispute as registered, and its closing once it closed."""

    order_id: str
    reason: DisputeReason
    reason_label: str
    buyer_statement: str
    platform_ref: str | None = None
    claimed_amount: Money
    registered_by: str
    reply_due: str  # shown as the shop's time, with its offset
    closing: Closing | None = None
    closed_by: str | None = None


class ComplaintRouting(_Stored):
    department: Role
    handler: Role
    copied: list[Role] = []
    intake_tags: list[str] = []


class ComplaintDetails(CaseDetails):
    """§1.10: the ticket as received, its routing and its clocks (the due times as shown)."""

    channel: Channel
    category_code: int
    category: Category
    category_label: str
    level: int = Field(ge=1, le=4)
    level_meaning: str
    order_id: str | None = None
    object: str
    cause: str
    demand: str
    received_at: Time
    first_response_due: str
    plan_due: str
    special: list[str] = []
    special_label: str = "-"
    brand_owner: str | None = None
    requested_by: str
    routing: ComplaintRouting


class TrackingDetails(CaseDetails):
    """§1.9: a buyer contacted by the 15-day tracker."""

    finding: str
    carrier: str
    waybill: str


class EnquiryDetails(CaseDetails):
    """§1.11: a customer's question as a ticket, with the channel's own timestamps."""

    channel: EnquiryChannel
    type: EnquiryType
    summary: str
    order_id: str | None = None
    received_at: Time
    first_response_due: Time
    responded_at: Time | None = None  # the channel's first response (intake) or the agent's answer
    response_seconds: float | None = None
    first_response_breached: bool | None = None
    requested_by: str
    converted_to: str | None = None  # the return or complaint case it became


class PostIncidentReview(_Stored):
    cause: str
    actions: str
    prevention: str
    by: str


class EmergencyDetails(CaseDetails):
    """§3: an incident, the cases, orders and customers it touches, its plan, updates and review."""

    title: str
    severity: int = Field(ge=1, le=3)
    scope: str
    source: Source
    affected_cases: list[str] = []
    affected_orders: list[str] = []
    customers: list[Customer] = []
    reported_by: str
    owner: str | None = None
    plan: str | None = None
    update_every_hours: int | None = None
    updates_sent: int = 0
    review: PostIncidentReview | None = None


D = TypeVar("D", bound=CaseDetails)

MODELS: dict[Process, type[CaseDetails]] = {
    Process.RETURN: ReturnDetails, Process.EXCHANGE: ExchangeDetails, Process.COMPENSATION: CompensationDetails,
    Process.OUT_OF_AREA: OutOfAreaDetails, Process.REPAIR: RepairDetails, Process.REVIEW: ReviewDetails,
    Process.WRONG_SHIPMENT: WrongShipmentDetails, Process.DISPUTE: DisputeDetails, Process.COMPLAINT: ComplaintDetails,
    Process.TRACKING: TrackingDetails, Process.ENQUIRY: EnquiryDetails, Process.EMERGENCY: EmergencyDetails,
}


def details_model(process: Process | str) -> type[CaseDetails]:
    """The details model of a process (KeyError for a process without one)."""
    return MODELS[Process(process)]


def details_of(case: Case, expected: type[D] = CaseDetails) -> D:  # type: ignore[assignment]
    """The case's details as its process's model, validated (``pydantic.ValidationError`` when the
    row does not fit). ``expected`` is the model the caller reads (``details_of(case, ReturnDetails)``);
    a case of another process is a ``TypeError``."""
    details = details_model(case.process).model_validate(case.details or {})
    if not isinstance(details, expected):
        raise TypeError(f"case {case.id} is a {case.process} case: its details are not {expected.__name__}")
    return details


def stored(details: CaseDetails) -> dict[str, Any]:
    """What goes into the JSON column: the keys that were given, money as strings, times isoformat."""
    return details.model_dump(mode="json", exclude_unset=True)


def with_changes(details: CaseDetails, **changes: Any) -> CaseDetails:
    """A validated copy of ``details`` with ``changes`` (field names; an unknown one is refused)."""
    return type(details).model_validate({**details.model_dump(exclude_unset=True), **changes})


def store(case: Case, details: CaseDetails) -> None:
    """Put ``details`` on the case as a new dict: SQLAlchemy does not see in-place changes of a JSON column."""
    case.details = stored(details)
