"""§1.4 Express out-of-area as Prefect tasks: open the case, switch carrier, book the extra postage.

The new parcel and the parcel's postage go through ``tasks.money.move_money``, exactly once.
"""

from __future__ import annotations

from decimal import Decimal
from functools import partial


from aftersales.domain.calendar import business_calendar
from aftersales.domain.details import OutOfAreaDetails, details_of
from aftersales.domain.models import Case, Role
from aftersales.domain.out_of_area_rules import pickup_suggestion
from aftersales.domain.settings import get_settings
from aftersales.integrations.platform import CarrierClient, CarrierError
from aftersales.tasks.cases import load_case
from aftersales.tasks.money import Booking, Entry, Moved, Movement, Moves, move, move_money

# the one money task, under a name that says what moves here
SWITCH_CARRIER = move_money.with_options(name="switch-carrier")
BOOK_RETURNED_PARCEL = move_money.with_options(name="book-returned-parcel")


def choice_deadline(case: Case):
    return business_calendar().add_hours(case.opened_at, get_settings().rules.out_of_area_choice_hours)


async def last_scan(carrier: str, waybill: str, phone: str) -> tuple[str, str]:
    """The carrier's latest scan and the pickup point it suggests; empty if the carrier has none."""
    try:
        async with CarrierClient() as client:
            tracking = await client.query(carrier, waybill, phone=phone)
    except CarrierError:
        return "", ""
    latest = tracking.latest
    if latest is None:
        return "", ""
    return latest.context, pickup_suggestion(latest.context, latest.area)


async def switch_carrier(case_id: str, new_carrier: str, chosen_by: str) -> list[Moved]:
    """Ship the order again with another carrier, once; the stranded parcel comes back to stock.
    The new parcel's postage is the extra cost, borne by the seller or the carrier (§1.4)."""
    key = f"switch-carrier-{case_id}"
    details = details_of(load_case(case_id), OutOfAreaDetails)
    parcel = Movement(Moves.PARCEL, key, Decimal("0"), f"超区件换快递 {details.carrier}→{new_carrier} problem parcel: switch carrier",
                      items=tuple((line.sku, line.quantity) for line in details.items), carrier=new_carrier)
    return await move(SWITCH_CARRIER, case_id, key, [parcel], chosen_by, partial(_book_new_parcel, key=key, details=details))


def _book_new_parcel(case: Case, moved: list[Moved], *, key: str, details: OutOfAreaDetails) -> Booking:
    [parcel] = moved
    bearer = details.bearer
    return Booking([Entry(f"{key}-postage", "outbound_postage", get_settings().rules.standard_postage, bearer,
                          f"换快递重新发货运费，由 {bearer} 承担 postage of the new parcel, borne by the {bearer}",
                          platform_ref=parcel.reference, department=Role.LOGISTICS.value)],
                   "carrier-switched", "carrier.switched",
                   {"from": details.carrier, "to": parcel.carrier, "waybill": parcel.waybill, "reshipment_id": parcel.reference,
                    "items": [{"sku": sku, "quantity": quantity} for sku, quantity in parcel.movement.items]},
                   notice="reshipped", staff_tags=[Role.LOGISTICS.value, Role.WAREHOUSE.value], buyer=True,
                   context=dict(carrier=parcel.carrier, waybill=parcel.waybill))


async def book_returned_parcel(case_id: str, chosen_by: str) -> list[Moved]:
    """Return and refund: the stranded parcel travels back; its postage is the extra cost (§1.4).
    Nothing moves through the platform here (the refund follows); the postage is booked once."""
    details = details_of(load_case(case_id), OutOfAreaDetails)
    return await move(BOOK_RETURNED_PARCEL, case_id, f"returned-parcel-{case_id}", [], chosen_by,
                                               partial(_book_returned_parcel, details=details))


def _book_returned_parcel(case: Case, moved: list[Moved], *, details: OutOfAreaDetails) -> Booking:
    bearer = details.bearer
    return Booking([Entry(f"returned-parcel-{case.id}", "return_postage", get_settings().rules.standard_postage, bearer,
                          f"问题件退回运费，由 {bearer} 承担 postage of the problem parcel back, borne by the {bearer}",
                          department=Role.LOGISTICS.value)],
                   "parcel-return-requested", "parcel.return_requested", {"carrier": details.carrier, "waybill": details.waybill},
                   notice="ooa_return_requested", staff_tags=[Role.LOGISTICS.value, Role.WAREHOUSE.value],
                   context=dict(carrier=details.carrier, waybill=details.waybill, bearer=bearer))
