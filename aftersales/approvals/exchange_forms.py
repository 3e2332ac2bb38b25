"""Forms of the exchange (§1.2). The seller's review, the buyer's shipment and the receipt are the
return's own forms (``approvals/forms.py``); only the inspection differs: an exchange has no partial
refund — the goods pass (the replacement ships) or fail (they go back to the buyer)."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from aftersales.approvals.forms import StaffForm
from aftersales.domain.models import Role


class ExchangeInspectionResult(StrEnum):
    PASS = "pass"
    FAIL = "fail"


class ExchangeInspection(StaffForm):
    """§1.2 (as §1.1 step 6): the warehouse inspects the goods sent back for an exchange."""

    allowed_roles: ClassVar[tuple[Role, ...]] = (Role.WAREHOUSE, Role.QUALITY, Role.SUPERVISOR, Role.MANAGER)

    result: ExchangeInspectionResult = Field(
        default=ExchangeInspectionResult.PASS,
        title="验货结果 Result",
        description="pass 通过，发出换货商品 the replacement ships / fail 不通过，商品退回买家，不换货（须写说明）no exchange, the goods go back to the buyer (give a note)",
    )
    note: str = Field(default="", title="验货说明 Inspection note（不通过时必填 required for fail）", description="不通过时必填，会发给买家 required for fail; sent to the buyer", max_length=500)
