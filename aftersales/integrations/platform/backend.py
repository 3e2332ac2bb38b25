"""The shop platform the processes talk to: one interface, a backend per platform.

``ShopPlatform`` is what the flows, tasks and intake call — orders, the order feed, return
addresses, refunds, re-shipments, charges, coupons, stock and reviews — and ``shop_platform()``
gives the backend ``AFTERSALES_PLATFORM`` names: ``gateway`` (``PlatformClient``, our HTTP gateway
API) or ``taobao`` (``TopClient``, Taobao/Tmall's TOP). A third platform is a third class with
these methods and a line in ``BACKENDS``.

A backend without an operation raises ``NotOffered`` saying where the seller does it instead (TOP
cannot start a refund, ship goods, charge a buyer or issue a coupon; those stay in Qianniu). What
only TOP has — a buyer's refund application decided at the platform — is ``TopClient``'s own
(``tasks/platform_refunds.py``, ``tasks/platform_sync.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, Self

from aftersales.domain.models import Case
from aftersales.domain.settings import Settings, get_settings
from aftersales.integrations.platform.models import (
    Charge,
    Coupon,
    Order,
    OrderPage,
    Refund,
    RefundKind,
    Reshipment,
    ReturnAddress,
    Review,
    ReviewReport,
    StockLevel,
)
from aftersales.integrations.platform.shop import PlatformClient
from aftersales.integrations.platform.top import TopClient


class ShopPlatform(Protocol):
    """The shop platform as the processes use it (``async with shop_platform() as platform:``)."""

    # the operations a person does by hand on this platform (Qianniu on TOP), each the name of the
    # method that refuses with ``NotOffered``; ``tasks/money.move`` waits for them instead
    by_hand: frozenset[str]

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    async def get_order(self, order_id: str) -> Order: ...

    async def list_shipped_orders(self, shipped_since: datetime | None = None, after: str | None = None, limit: int = 500,
                                  *, modified_since: datetime | None = None) -> OrderPage: ...

    async def get_return_address(self, order_id: str) -> ReturnAddress: ...

    async def list_refunds(self, order_id: str) -> list[Refund]: ...

    async def refund(self, order_id: str, amount: Decimal, reason: str, case_id: str, idempotency_key: str,
                     kind: RefundKind = RefundKind.GOODS) -> Refund: ...

    async def reship(self, order_id: str, items: Sequence[Any | Mapping[str, Any]], reason: str, case_id: str,
                     idempotency_key: str, carrier: str | None = None) -> Reshipment: ...

    async def put_parcel_on_order(self, order_id: str, carrier: str, waybill: str) -> None: ...

    async def get_stock(self, sku: str) -> StockLevel: ...

    async def charge(self, order_id: str, amount: Decimal, reason: str, case_id: str, idempotency_key: str) -> Charge: ...

    async def issue_coupon(self, order_id: str, amount: Decimal, reason: str, case_id: str, idempotency_key: str,
                           valid_days: int = 90) -> Coupon: ...

    async def list_reviews(self, since: datetime | None = None) -> list[Review]: ...

    async def report_review(self, review_id: str, reason: str, evidence: str, case_id: str,
                            idempotency_key: str) -> ReviewReport: ...


BACKENDS: dict[str, type] = {"gateway": PlatformClient, "taobao": TopClient}


def shop_platform(case: Case | None = None, *, settings: Settings | None = None) -> ShopPlatform:
    """The backend of ``case``'s platform (where its order is, recorded when it was opened), or for
    a new case ``AFTERSALES_PLATFORM`` (read now, so a test or a command that sets it is heard)."""
    settings = settings or get_settings()
    return BACKENDS[case.platform if case is not None else settings.platform](settings=settings)
