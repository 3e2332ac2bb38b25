"""§1.4 Express out-of-area (快递超区, 004 fig. 5.4) as pure rules: which parcels are problem
parcels, what the buyer may choose, and who bears the extra postage.

Nothing here talks to the outside world; callers pass in what the platform said.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from aftersales.domain.rules import InvalidRequest, shown

CARRIER_CODE = re.compile(r"^[a-z0-9]{2,20}$")  # Kuaidi100 company code, e.g. "ems", "shunfeng"


class ParcelProblem(StrEnum):
    OUT_OF_AREA = "out_of_area"  # 超区: the outlet does not deliver to this address
    BLIND_AREA = "blind_area"  # 盲区件/无网点件: the carrier has no outlet there at all
    STRANDED = "stranded"  # 网点暂停后的滞留件: the outlet suspended service with the parcel inside

    @property
    def bearer(self) -> str:
        """Who bears the extra postage. Out-of-area and blind-area parcels should have been caught
        by checking coverage before shipping (§1.4 “prevent”): the seller's miss. A parcel stranded
        when an outlet suspends service is the carrier's failure: the carrier bears it (claimed
        from the carrier under the shipping contract)."""
        return "carrier" if self is ParcelProblem.STRANDED else "seller"


class OutOfAreaRemedy(StrEnum):
    SWITCH_CARRIER = "switch_carrier"  # 转其他快递: ship again with a carrier that delivers there
    SELF_PICKUP = "self_pickup"  # 买家自提: the buyer collects at the outlet or a station nearby
    RETURN_REFUND = "return_refund"  # 退回并退款: the parcel comes back and the buyer is refunded


def parse_problem(raw: str) -> ParcelProblem:
    try:
        return ParcelProblem(str(raw).strip().lower())
    except ValueError:
        choices = ", ".join(p.value for p in ParcelProblem)
        raise InvalidRequest("unknown_problem", f"未知问题类型 unknown problem type {shown(raw)}; one of {choices}") from None


def parse_remedy(raw: str) -> OutOfAreaRemedy:
    try:
        return OutOfAreaRemedy(str(raw).strip().lower())
    except ValueError:
        choices = ", ".join(r.value for r in OutOfAreaRemedy)
        raise InvalidRequest("unknown_remedy", f"未知处理方式 unknown remedy {shown(raw)}; one of {choices}") from None


def validate_problem_parcel(order_id: str, status: str, delivered_at: datetime | None, carrier: str | None,
                            waybill: str | None) -> None:
    """§1.4: only a parcel that is on its way (shipped, not yet signed for) can be a problem parcel."""
    if status in ("awaiting_payment", "awaiting_shipment", "cancelled"):
        raise InvalidRequest("not_shipped", f"订单 {order_id} 状态为 {status}，尚未发货 order {order_id} is {status}: no parcel on the road")
    if delivered_at is not None:
        raise InvalidRequest("already_delivered", f"订单 {order_id} 已于 {delivered_at.isoformat()} 签收，不是超区件 order {order_id} was already delivered")
    if not (carrier and waybill):
        raise InvalidRequest("no_waybill", f"订单 {order_id} 没有运单号 order {order_id} has no carrier waybill")


def check_new_carrier(new_carrier: str, current_carrier: str | None) -> str | None:
    """Why a carrier switch cannot go ahead, or None. Switching to the same carrier fixes nothing."""
    if not CARRIER_CODE.match(new_carrier or ""):
        return f"请填写新快递公司编码 give the new carrier's Kuaidi100 code (e.g. ems, shunfeng), got {shown(new_carrier)}"
    if new_carrier == current_carrier:
        return f"新快递公司不能与原快递 {current_carrier} 相同 the new carrier must differ from {current_carrier}"
    return None


def fallback_carrier(current: str | None, preferred: str) -> str:
    """The carrier a switch goes to when nobody names one: the shop's preferred carrier (EMS by
    default), or SF Express if the parcel already travels with it."""
    return preferred if preferred != current else ("shunfeng" if preferred != "shunfeng" else "ems")


def pickup_suggestion(context: str, area: str | None) -> str:
    """Where the parcel sits, from the carrier's latest scan: 【outlet】 in the text, and the area."""
    match = re.search(r"【(.+?)】", context or "")
    place = match.group(1) if match else ""
    return " ".join(part for part in (place, (area or "").replace(",", " ")) if part).strip()
