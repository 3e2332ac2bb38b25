"""The compensation (§1.3): check a request at the door, and say what the approved one gives (it
is paid once by ``tasks.money.pay_compensation``, key ``compensation-<case>``)."""

from __future__ import annotations

from sqlmodel import Session

from aftersales.domain.compensation_rules import CompensationForm, CompensationRequest, parse_goods, validate_compensation_request
from aftersales.domain.details import CompensationDetails, details_of
from aftersales.domain.models import Role, Staff
from aftersales.integrations.db import session_scope
from aftersales.integrations.platform import Order, ShopPlatform
from aftersales.tasks.exchange import stock_of
from aftersales.tasks.intake import order_facts
from aftersales.tasks.money import Compensation


def staff_role(session: Session, staff_id: str) -> Role | None:
    member = session.get(Staff, staff_id)
    return Role(member.role) if member is not None and member.active else None


async def compensation_request(platform: ShopPlatform, order_id: str, form: str, amount: str | None, reason: str,
                               bearer: str, requested_by: str, goods: list[str] | None) -> tuple[Order, CompensationRequest]:
    """Check a compensation request against the order, the staff list and the catalogue."""
    order, facts = await order_facts(platform, order_id)
    wanted = parse_goods(goods) if form == CompensationForm.GOODS.value else []
    catalogue = {}
    for sku, _quantity in wanted:
        level = await stock_of(platform, sku)
        if level is not None:
            catalogue[sku] = (level.unit_price, level.available)
    with session_scope() as session:
        role = staff_role(session, requested_by)
    return order, validate_compensation_request(facts, form, amount, reason, bearer, role, wanted, catalogue)


def request_from_details(case) -> CompensationRequest:
    return details_of(case, CompensationDetails).request(case.amount)


def compensation_of(case) -> Compensation:
    """§1.3: what the approved request gives the buyer, and how finance books it."""
    request = request_from_details(case)
    return Compensation(form=request.form, amount=request.amount, bearer=request.bearer, goods=request.goods,
                        reason=f"补偿 compensation: {case.reason}"[:200], note=f"{request.form.value}: {case.reason}",
                        ledger_kind=request.form.ledger_kind)
