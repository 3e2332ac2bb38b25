"""Money and goods that move, each exactly once, through one task: ``move_money``.

A step says what the platform moves (``Movement``: a refund, a postage or compensation refund, a
charge, a coupon, a parcel) and how it is booked once the platform has answered (a ``Booking``:
finance's ledger lines, the case event, the message). ``move_money`` then does it in one order for
every process: idempotency key → platform → ledger lines → case event → message.

Three guards, from the inside out: the platform call carries an idempotency key derived from case
and step (a retried HTTP call or task is answered with the first result); the task's business cache
key skips it on a resumed run; each ledger line has its own key as a unique column. The ledger
lines, the event and the messages are written in one transaction, so finance's ledger, the trail and
what the buyer was told cannot disagree.

Here: refunds (``refund_buyer``), re-shipments (``reship_items``) and compensation in every form
(``pay_compensation``: the compensation process, a review's offer, a complaint's remedy). The
exchange's price difference, the repair's costs, the out-of-area parcel and the wrong shipment
declare their movements and bookings beside their own rules, in ``tasks/<process>.py``.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from functools import partial
from typing import Any, Callable

from prefect import task

from aftersales.approvals.forms import DoneInQianniu, ShippedByHand
from aftersales.approvals.ladder import await_stage, stage_default
from aftersales.approvals.waits import WaitSpec
from aftersales.domain.calendar import business_calendar, utcnow
from aftersales.domain.compensation_rules import CompensationForm
from aftersales.domain.models import Case, Role
from aftersales.domain.rules import PostageLine, parse_amount, refund_explained, refund_split
from aftersales.domain.settings import get_settings
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope
from aftersales.integrations.platform import BACKENDS, PlatformRejected, RefundKind, ShopPlatform, shop_platform
from aftersales.tasks.cases import load_case
from aftersales.tasks.notify import notify_in_session, send_pending
from aftersales.tasks.platform_refunds import agree_refund_at_platform, platform_refund_of
from aftersales.tasks.policy import OUTSIDE_EFFECT

ZERO = Decimal("0.00")
log = logging.getLogger(__name__)


class Moves(StrEnum):
    """What the platform moves for a case."""

    REFUND = "refund"  # goods money back to the buyer (capped by the platform at the price paid)
    POSTAGE_REFUND = "postage_refund"  # postage the seller owes, on top of the price
    COMPENSATION_REFUND = "compensation_refund"  # cash compensation, on top of the price
    CHARGE = "charge"  # money the buyer pays (the dearer replacement)
    COUPON = "coupon"  # a voucher: no money moves
    PARCEL = "parcel"  # goods shipped again (a replacement, missing items, compensation in goods)


@dataclass(frozen=True)
class Movement:
    """One thing to move, under the platform idempotency key ``key``."""

    moves: Moves
    key: str
    amount: Decimal  # money; for a parcel, the goods' value (nothing is paid)
    reason: str  # on the platform's record
    items: tuple[tuple[str, int], ...] = ()  # a parcel's (sku, quantity)
    carrier: str | None = None  # a parcel sent with another carrier (§1.4); else the order's
    verification_code: str | None = None  # the seller's SMS code a large platform (TOP) refund asks for
    by_hand: dict | None = None  # done by a person where the platform has no call (Qianniu): reference, amount, actor…


@dataclass(frozen=True)
class Moved:
    """What the platform confirmed for one movement."""

    movement: Movement
    reference: str  # the platform's refund, charge, coupon or re-shipment id
    amount: Decimal  # the amount the platform confirmed; a parcel's goods value
    carrier: str = ""
    waybill: str = ""
    coupon_code: str = ""
    coupon_expires: datetime | None = None
    by_platform: bool = False  # the platform had paid by itself (its deadline) before our call
    by_hand: str = ""  # who did it by hand where the platform has no call (Qianniu)

    @property
    def paid_to_buyer(self) -> bool:
        """A payment the platform made: a ``platform_paid`` ledger line that must reconcile with its statement."""
        return self.movement.moves in (Moves.REFUND, Moves.POSTAGE_REFUND, Moves.COMPENSATION_REFUND)


@dataclass(frozen=True)
class Entry:
    """One line of finance's ledger, under its own unique key."""

    key: str
    kind: str
    amount: Decimal
    bearer: str
    note: str
    platform_ref: str = ""
    platform_paid: bool = False
    department: str = ""


@dataclass
class Booking:
    """How a step is written down once the platform has answered: ledger, trail, message."""

    entries: list[Entry]
    event_key: str
    action: str
    event: dict[str, Any]
    notice: str = ""  # the message template; none when empty
    staff_tags: list[str] = field(default_factory=list)
    buyer: bool = False
    context: dict[str, Any] = field(default_factory=dict)


Book = Callable[[Case, list[Moved]], Booking]

_REFUND_KINDS = {Moves.REFUND: RefundKind.GOODS, Moves.POSTAGE_REFUND: RefundKind.POSTAGE,
                 Moves.COMPENSATION_REFUND: RefundKind.COMPENSATION}


async def _through_platform(platform: ShopPlatform, case: Case, movement: Movement) -> Moved:
    order, key = case.order_id, movement.key
    if movement.by_hand is not None:
        return await _done_by_hand(platform, case, movement)
    if movement.moves is Moves.REFUND and platform_refund_of(case):
        # the buyer's refund at the platform (TOP): agreeing it is what pays it, once
        refund_id, paid, ours = await agree_refund_at_platform(case, movement.amount, movement.verification_code)
        return Moved(movement, refund_id, paid, by_platform=not ours)
    if movement.moves in _REFUND_KINDS:
        refund = await platform.refund(order, movement.amount, movement.reason, case.id, key, _REFUND_KINDS[movement.moves])
        return Moved(movement, refund.refund_id, refund.amount)
    if movement.moves is Moves.CHARGE:
        charge = await platform.charge(order, movement.amount, movement.reason, case.id, key)
        return Moved(movement, charge.charge_id, charge.amount)
    if movement.moves is Moves.COUPON:
        coupon = await platform.issue_coupon(order, movement.amount, movement.reason, case.id, key,
                                             get_settings().rules.compensation_coupon_valid_days)
        return Moved(movement, coupon.coupon_id, coupon.amount, coupon_code=coupon.code, coupon_expires=coupon.expires_at)
    items = [{"sku": sku, "quantity": quantity} for sku, quantity in movement.items]
    shipment = await platform.reship(order, items, movement.reason, case.id, key, carrier=movement.carrier)
    return Moved(movement, shipment.reshipment_id, movement.amount, carrier=shipment.carrier, waybill=shipment.waybill)


# --- what the case's platform has no call for: a person does it (Qianniu) and records it ---------

_OPERATION = {Moves.REFUND: "refund", Moves.POSTAGE_REFUND: "refund", Moves.COMPENSATION_REFUND: "refund",
              Moves.CHARGE: "charge", Moves.COUPON: "issue_coupon", Moves.PARCEL: "reship"}
_DONE_BY_HAND = {  # what the person does, in the shop's words
    Moves.REFUND: "在千牛给买家打款 pay the buyer in Qianniu", Moves.POSTAGE_REFUND: "在千牛给买家打款运费 pay the buyer the postage in Qianniu",
    Moves.COMPENSATION_REFUND: "在千牛给买家打款补偿 pay the buyer the compensation in Qianniu",
    Moves.CHARGE: "在千牛发补差价链接并确认买家已付 send the buyer a price-difference link in Qianniu and confirm it was paid",
    Moves.COUPON: "在千牛发放优惠券 issue the coupon in Qianniu", Moves.PARCEL: "仓库补发包裹 the warehouse ships the parcel",
}


def done_by_hand(case: Case, movement: Movement) -> bool:
    """The case's platform has no call for this movement (TOP: a payment the seller starts, a charge,
    a coupon, a parcel); a buyer's refund application at the platform is agreed there, not by hand."""
    if movement.moves is Moves.REFUND and platform_refund_of(case):
        return False
    return _OPERATION[movement.moves] in BACKENDS[case.platform].by_hand


def by_hand_wait(case: Case, movement: Movement) -> WaitSpec:
    """The person's step: finance pays (or collects, or issues) in Qianniu and records the reference
    and amount; the warehouse ships a parcel and records carrier and waybill. One working day, then
    the supervisor and the manager (the ladder)."""
    parcel = movement.moves is Moves.PARCEL
    what = _DONE_BY_HAND[movement.moves]
    goods = "、".join(f"{sku} × {quantity}" for sku, quantity in movement.items)
    return WaitSpec(
        # one step per movement, the same on every replay: its number comes from the movement's key
        step=f"in-qianniu-{zlib.crc32(movement.key.encode()) % 100000}",
        title=f"{what}（平台无此接口）{case.platform}: no platform call for this, done by hand",
        form=ShippedByHand if parcel else DoneInQianniu,
        deadline=business_calendar().add_working_days(utcnow(), 1),
        default_action=stage_default(1),
        default_input={"carrier": "none", "waybill": "NONE000"} if parcel else {"reference": "none", "amount": "0.00"},
        addressed_to=(Role.WAREHOUSE if parcel else Role.FINANCE).value,
        decides=None if parcel else movement.amount,
        check=None if parcel else partial(_at_most, movement.amount),
        facts=(f"**{what}** · {goods or f'{movement.amount:.2f} 元'}", f"订单 Order `{case.order_id}` · {movement.reason}"),
    )


def _at_most(decided: Decimal, form: DoneInQianniu) -> str | None:
    amount = parse_amount(form.amount, "amount")
    if amount > decided:
        return f"金额 {amount} 元超过已决定的 {decided} 元 {amount} is more than the {decided} decided"
    return None


async def move(step: Callable[..., Any], case_id: str, key: str, movements: list[Movement], approved_by: str,
               book: Book) -> list[Moved]:
    """How a process moves money and goods: ``step`` (``move_money`` under the process's name) with
    ``movements`` — each the case's platform has no call for first done by a person, the case
    waiting for them (``by_hand_wait``) and what they record taken as the platform's answer."""
    case = load_case(case_id)
    ready = []
    for movement in movements:
        if done_by_hand(case, movement):
            decision = await await_stage(case, by_hand_wait(case, movement), 1)
            ready.append(replace(movement, by_hand={**decision.data.model_dump(include={"reference", "amount", "carrier", "waybill"}),
                                                    "actor": decision.actor}))
        else:
            ready.append(movement)
    return await step(case_id, key, ready, approved_by, book)


async def _done_by_hand(platform: ShopPlatform, case: Case, movement: Movement) -> Moved:
    done = movement.by_hand
    if movement.moves is Moves.PARCEL:
        try:  # the buyer follows the new parcel on the order's page
            await platform.put_parcel_on_order(case.order_id, done["carrier"], done["waybill"])
        except PlatformRejected as refused:  # shipped all the same: the message carries the waybill
            log.warning("%s: parcel %s %s not put on order %s: %s", case.id, done["carrier"], done["waybill"], case.order_id, refused)
        return Moved(movement, done["waybill"], movement.amount, carrier=done["carrier"], waybill=done["waybill"], by_hand=done["actor"])
    return Moved(movement, done["reference"], parse_amount(done["amount"], "amount"),
                 coupon_code=done["reference"] if movement.moves is Moves.COUPON else "", by_hand=done["actor"])


def _money_cache_key(_context, parameters) -> str:
    return f"money-{parameters['key']}"


@task(name="move-money", cache_key_fn=_money_cache_key, **OUTSIDE_EFFECT)
async def move_money(case_id: str, key: str, movements: list[Movement], approved_by: str, book: Book) -> list[Moved]:
    """The one way money and goods move: each movement through the platform under its idempotency
    key, then ``book``'s ledger lines, case event and message in one transaction. Once per ``key``
    (the business cache key): a resumed run is answered with what moved the first time.

    Callers use it under a name saying what moves (``move_money.with_options(name=…)``), so the
    run page reads "refund-buyer", "reship-items", "pay-compensation"."""
    case = load_case(case_id)
    moved: list[Moved] = []
    if movements:
        async with shop_platform(case) as platform:
            for movement in movements:
                moved.append(await _through_platform(platform, case, movement))
    with session_scope() as session:
        case = case_store.get_case(session, case_id)
        booking = book(case, moved)
        for entry in booking.entries:
            case_store.add_ledger_line(session, idempotency_key=entry.key, case=case, kind=entry.kind, amount=entry.amount,
                                       bearer=entry.bearer, approved_by=approved_by, platform_ref=entry.platform_ref,
                                       platform_paid=entry.platform_paid, note=entry.note[:500],
                                       responsible_department=entry.department)
        # who moved it: the platform when it had paid by itself before our call reached it
        actor = "platform" if moved and all(m.by_platform for m in moved) else approved_by
        hands = {m.movement.moves.value: m.by_hand for m in moved if m.by_hand}
        case_store.record_event(session, case_id, booking.event_key, actor, booking.action,
                                {**booking.event, "done_by_hand": hands} if hands else booking.event)
        if booking.notice:
            notify_in_session(session, case, booking.event_key, booking.notice, staff_tags=booking.staff_tags,
                              buyer=booking.buyer, **booking.context)
    send_pending(case_id)
    return moved


# ``move_money`` under names that say what moves, for the run page and the task-run filters
REFUND_BUYER = move_money.with_options(name="refund-buyer")
RESHIP_ITEMS = move_money.with_options(name="reship-items")
PAY_COMPENSATION = move_money.with_options(name="pay-compensation")


# --- refunds -------------------------------------------------------------------------------------


async def refund_buyer(case_id: str, step: str, goods_amount: Decimal, approved_by: str, reason: str,
                       postage: list[PostageLine] | None = None, verification_code: str | None = None) -> list[Moved]:
    """Refund the buyer once: the goods (less any postage share of theirs), and separately the
    postage the rulebook puts on the seller — the platform caps goods refunds at the price paid."""
    postage = postage or []
    if platform_refund_of(load_case(case_id)):
        postage = []  # TOP pays the refund the buyer applied for; postage is settled on the platform (运费险)
    goods, owed_postage = refund_split(goods_amount, postage)
    key = f"refund-{case_id}-{step}"
    movements = []
    if goods > 0:
        movements.append(Movement(Moves.REFUND, key, goods, reason, verification_code=verification_code))
    if owed_postage > 0:
        movements.append(Movement(Moves.POSTAGE_REFUND, f"{key}-postage", owed_postage, f"{reason}（运费 postage）"))
    book = partial(_book_refund, step=step, key=key, goods_amount=goods_amount, goods=goods, owed_postage=owed_postage,
                   postage=postage, reason=reason)
    return await move(REFUND_BUYER, case_id, key, movements, approved_by, book)


def _book_refund(case: Case, moved: list[Moved], *, step: str, key: str, goods_amount: Decimal, goods: Decimal,
                 owed_postage: Decimal, postage: list[PostageLine], reason: str) -> Booking:
    """The ledger records what the platform confirmed: the refund line's amount is the platform's
    refund amount under its reference (for a free-shipping no-reason return, the price less the
    buyer's half of the outbound postage), and each platform refund is one ``platform_paid`` line,
    so finance's platform-paid total reconciles with the platform's statement. The postage lines
    that moved no money (the buyer's return postage, the buyer's deducted half, the seller's half)
    stay as informational lines with their bearer; they name the refund in the note, not as their
    platform reference, so the lines under a reference add up to what the platform paid."""
    paid = {m.movement.moves: m for m in moved}
    refunded = paid.get(Moves.REFUND)
    postage_refund = paid.get(Moves.POSTAGE_REFUND)
    goods_ref = refunded.reference if refunded else ""
    goods_paid = refunded.amount if refunded else ZERO
    postage_paid = postage_refund.amount if postage_refund else ZERO
    entries = [Entry(key, "refund", goods_paid, "seller", reason if refunded else f"{reason}（平台未退款 nothing refunded by the platform）",
                     platform_ref=goods_ref, platform_paid=refunded is not None)]
    # the postage refund covers the lines that add to the refund; their amounts add up to what the
    # platform confirmed (one line in practice: the seller-at-fault return postage)
    shares = confirmed_shares(postage_paid, [line.add_to_refund for line in postage if line.add_to_refund > 0]) if postage_refund else []
    for index, line in enumerate(postage):
        line_key = f"{key}-{line.kind}-{line.bearer}-{index}"
        if line.add_to_refund > 0 and shares:
            entries.append(Entry(line_key, line.kind, shares.pop(0), line.bearer, line.note, platform_ref=postage_refund.reference,
                                 platform_paid=True))
        else:
            entries.append(Entry(line_key, line.kind, line.amount, line.bearer, _informational_note(line, goods_ref)))
    total = goods_paid + postage_paid
    refs = {name: m.reference for name, m in (("goods", refunded), ("postage", postage_refund)) if m is not None}
    return Booking(entries, f"{step}:refunded", "refund.paid",
                   {"amount": total, "goods_amount": goods_paid, "postage": postage_paid, "platform_refs": refs,
                    "requested": {"goods": goods, "postage": owed_postage}, "reason": reason},
                   notice="refund_paid", staff_tags=["finance"], buyer=True,
                   context=dict(refund_amount=f"{total:.2f}", reason=reason, refund_note=_refund_note(goods_amount, postage)))


def _refund_note(goods_amount: Decimal, postage: list[PostageLine]) -> str:
    explained = refund_explained(goods_amount, postage)
    return f"\n{explained}" if explained else ""


def confirmed_shares(confirmed: Decimal, asked: list[Decimal]) -> list[Decimal]:
    """Split what the platform confirmed over the lines it pays: each line as asked, the last one
    taking any difference, so the lines add up to the platform's amount exactly."""
    shares = list(asked[:-1])
    return shares + [confirmed - sum(shares, Decimal("0"))] if asked else []


def _informational_note(line: PostageLine, goods_ref: str) -> str:
    """The note of a postage line that moved no money through the platform."""
    if not goods_ref:
        suffix = "（无平台退款 no platform refund）"
    elif line.add_to_refund < 0:
        suffix = f"（已从退款 {goods_ref} 中扣除 deducted from refund {goods_ref}）"
    else:
        suffix = f"（关联退款 refund {goods_ref}）"
    return f"{line.note}{suffix}"[:500]


# --- parcels -------------------------------------------------------------------------------------


async def reship_items(case_id: str, step: str, items: list[dict], value: Decimal, approved_by: str, reason: str) -> list[Moved]:
    """Re-ship goods once; the goods and the postage are the seller's cost (§1.1)."""
    key = f"reship-{case_id}-{step}"
    parcel = Movement(Moves.PARCEL, key, value, reason, items=tuple((item["sku"], int(item["quantity"])) for item in items))
    return await move(RESHIP_ITEMS, case_id, key, [parcel], approved_by, partial(_book_reshipment, step=step, key=key, reason=reason))


def _book_reshipment(case: Case, moved: list[Moved], *, step: str, key: str, reason: str) -> Booking:
    [parcel] = moved
    return Booking([Entry(key, "reshipment", parcel.amount, "seller", reason, platform_ref=parcel.reference),
                    Entry(f"{key}-postage", "outbound_postage", get_settings().rules.standard_postage, "seller",
                          "补发运费 postage of the re-shipment", platform_ref=parcel.reference)],
                   f"{step}:reshipped", "goods.reshipped",
                   {"items": [{"sku": sku, "quantity": quantity} for sku, quantity in parcel.movement.items],
                    "carrier": parcel.carrier, "waybill": parcel.waybill},
                   notice="reshipped", staff_tags=["warehouse"], buyer=True, context=dict(carrier=parcel.carrier, waybill=parcel.waybill))


# --- compensation (§1.3) --------------------------------------------------------------------------


@dataclass(frozen=True)
class Compensation:
    """A compensation to give, in one of §1.3's forms, and how finance books it."""

    form: CompensationForm  # cash | partial_refund | coupon | goods
    amount: Decimal  # for goods: their value (nothing is paid)
    bearer: str  # who carries the cost in the ledger
    reason: str  # on the platform's record
    note: str  # on the ledger line
    ledger_kind: str  # what finance books it as (see the callers: finance has yet to agree one kind for goods)
    goods: tuple[tuple[str, int], ...] = ()  # (sku, quantity) for goods
    department: str = ""  # the responsible department, when one is known

    def movement(self, key: str) -> Movement:
        """Cash → a compensation refund on top of the price; a partial refund → a goods refund
        (capped at what was paid); a coupon; goods → a parcel."""
        moves = {CompensationForm.CASH: Moves.COMPENSATION_REFUND, CompensationForm.PARTIAL_REFUND: Moves.REFUND,
                 CompensationForm.COUPON: Moves.COUPON, CompensationForm.GOODS: Moves.PARCEL}[self.form]
        return Movement(moves, key, self.amount, self.reason, items=self.goods if self.form is CompensationForm.GOODS else ())


async def pay_compensation(case_id: str, step: str, compensation: Compensation, approved_by: str, notice: str,
                           staff_tags: list[str], context: dict[str, Any] | None = None) -> list[Moved]:
    """Give the approved compensation once (key ``compensation-<case>[-<step>]``: one per case, or
    one per step where a case may compensate more than once) and write finance's ledger line."""
    key = f"compensation-{case_id}" + (f"-{step}" if step else "")
    book = partial(_book_compensation, step=step, key=key, compensation=compensation, notice=notice, staff_tags=staff_tags,
                   context=context or {}, approved_by=approved_by)
    return await move(PAY_COMPENSATION, case_id, key, [compensation.movement(key)], approved_by, book)


def _book_compensation(case: Case, moved: list[Moved], *, step: str, key: str, compensation: Compensation, notice: str,
                       staff_tags: list[str], context: dict[str, Any], approved_by: str) -> Booking:
    """Cash and a partial refund are ``platform_paid`` lines at the amount the platform confirmed
    under its reference, so the platform-paid total reconciles with the platform's statement. A
    coupon and goods (plus the parcel's postage line) move no money through the platform: their
    lines stay informational."""
    [given] = moved
    detail = ""
    if compensation.form is CompensationForm.CASH:
        delivery = f"款项已退至您的原支付方式 paid to your original payment method ({given.reference})"
    elif compensation.form is CompensationForm.PARTIAL_REFUND:
        delivery = f"部分货款已原路退回 part of the price paid back to your original payment method ({given.reference})"
    elif compensation.form is CompensationForm.COUPON:
        expires = given.coupon_expires.astimezone(get_settings().tz).date().isoformat()
        delivery = f"券码 coupon code {given.coupon_code},有效期至 valid until {expires}"
    else:
        detail = f"{given.carrier} {given.waybill}"
        delivery = f"商品已寄出 sent with {given.carrier},运单号 tracking number {given.waybill}"
    entries = [Entry(key, compensation.ledger_kind, given.amount, compensation.bearer, compensation.note, platform_ref=given.reference,
                     platform_paid=given.paid_to_buyer, department=compensation.department)]
    if compensation.form is CompensationForm.GOODS:
        entries.append(Entry(f"{key}-postage", "outbound_postage", get_settings().rules.standard_postage, compensation.bearer,
                             "补偿商品运费 postage of the goods given as compensation", platform_ref=given.reference,
                             department=compensation.department))
    return Booking(entries, f"{step}:paid" if step else "paid", "compensation.paid",
                   {"form": compensation.form.value, "amount": given.amount, "bearer": compensation.bearer, "platform_ref": given.reference,
                    "goods": [list(g) for g in compensation.goods]},
                   notice=notice, staff_tags=staff_tags, buyer=True,
                   context=dict(compensation_form=compensation.form.value, paid_amount=given.amount, delivery=delivery, detail=detail,
                                bearer=compensation.bearer, approved_by=approved_by, platform_ref=given.reference,
                                department=compensation.department, **context))
