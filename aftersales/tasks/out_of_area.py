"""§1.4 Express out-of-area as Prefect tasks: open the case, switch carrier, book the extra postage.

Every shipment carries the three guards of ``tasks/money.py``: a platform idempotency key, a
business cache key and a unique ledger key.
"""

from __future__ import annotations


from prefect import task

from aftersales.domain.calendar import business_calendar
from aftersales.domain.models import Case, Role
from aftersales.domain.out_of_area_rules import pickup_suggestion
from aftersales.domain.settings import get_settings
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope
from aftersales.integrations.platform import CarrierClient, CarrierError, PlatformClient
from aftersales.tasks.cases import load_case, per_case
from aftersales.tasks.notify import notify_in_session, send_pending
from aftersales.tasks.policy import OUTSIDE_EFFECT


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


@task(name="switch-carrier", cache_key_fn=per_case("switch-carrier"), **OUTSIDE_EFFECT)
async def switch_carrier(case_id: str, new_carrier: str, chosen_by: str) -> dict:
    """Ship the order again with another carrier, once; the stranded parcel comes back to stock.
    The new parcel's postage is the extra cost, borne by the seller or the carrier (§1.4)."""
    key = f"switch-carrier-{case_id}"
    case = load_case(case_id)
    items = [{"sku": item["sku"], "quantity": item["quantity"]} for item in case.details["items"]]
    reason = f"超区件换快递 {case.details['carrier']}→{new_carrier} problem parcel: switch carrier"
    async with PlatformClient() as platform:
        shipment = await platform.reship(case.order_id, items, reason, case_id, key, carrier=new_carrier)
    bearer = case.details["bearer"]
    with session_scope() as session:
        case = case_store.get_case(session, case_id)
        case_store.add_ledger_line(session, idempotency_key=f"{key}-postage", case=case, kind="outbound_postage",
                                   amount=get_settings().rules.standard_postage, bearer=bearer, approved_by=chosen_by,
                                   platform_ref=shipment.reshipment_id, responsible_department=Role.LOGISTICS.value,
                                   note=f"换快递重新发货运费，由 {bearer} 承担 postage of the new parcel, borne by the {bearer}")
        case_store.record_event(session, case_id, "carrier-switched", chosen_by, "carrier.switched",
                                {"from": case.details["carrier"], "to": shipment.carrier, "waybill": shipment.waybill,
                                 "reshipment_id": shipment.reshipment_id, "items": items})
        notify_in_session(session, case, "carrier-switched", "reshipped", staff_tags=[Role.LOGISTICS.value, Role.WAREHOUSE.value],
                          buyer=True, carrier=shipment.carrier, waybill=shipment.waybill)
    send_pending(case_id)
    return {"reshipment_id": shipment.reshipment_id, "carrier": shipment.carrier, "waybill": shipment.waybill}


@task(name="book-returned-parcel", cache_key_fn=per_case("returned-parcel"), **OUTSIDE_EFFECT)
async def book_returned_parcel(case_id: str, chosen_by: str) -> None:
    """Return and refund: the stranded parcel travels back; its postage is the extra cost (§1.4)."""
    case = load_case(case_id)
    bearer = case.details["bearer"]
    with session_scope() as session:
        case = case_store.get_case(session, case_id)
        case_store.add_ledger_line(session, idempotency_key=f"returned-parcel-{case_id}", case=case, kind="return_postage",
                                   amount=get_settings().rules.standard_postage, bearer=bearer, approved_by=chosen_by,
                                   responsible_department=Role.LOGISTICS.value,
                                   note=f"问题件退回运费，由 {bearer} 承担 postage of the problem parcel back, borne by the {bearer}")
        case_store.record_event(session, case_id, "parcel-return-requested", chosen_by, "parcel.return_requested",
                                {"carrier": case.details["carrier"], "waybill": case.details["waybill"]})
        notify_in_session(session, case, "parcel-return-requested", "ooa_return_requested",
                          staff_tags=[Role.LOGISTICS.value, Role.WAREHOUSE.value],
                          carrier=case.details["carrier"], waybill=case.details["waybill"], bearer=bearer)
    send_pending(case_id)


