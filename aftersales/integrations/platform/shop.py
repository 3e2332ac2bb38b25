"""The shop platform's HTTP gateway: orders, return addresses, refunds, re-shipments, stock,
charges, coupons and reviews (the sandbox in ``sandbox_platform/`` speaks the same API)."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
from pydantic import SecretStr

from aftersales.domain.settings import Settings, get_settings
from aftersales.integrations.platform.errors import OrderNotFound, PlatformError, PlatformRejected, PlatformUnavailable
from aftersales.integrations.platform.http import GatewayClient, detail_of, json_body, secret_value, with_retries
from aftersales.integrations.platform.models import (
    Charge,
    Coupon,
    Order,
    OrderPage,
    Refund,
    RefundKind,
    Reshipment,
    ReshipmentItem,
    ReturnAddress,
    Review,
    ReviewReport,
    StockLevel,
    money_text,
)


class PlatformClient(GatewayClient):
    """The shop platform's gateway. Use as ``async with PlatformClient() as platform:``.

    Arguments override the settings (``AFTERSALES_PLATFORM_*``).
    """

    by_hand: frozenset[str] = frozenset()  # the gateway has a call for everything

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | SecretStr | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff_base: float = 0.2,
        backoff_cap: float = 5.0,
        settings: Settings | None = None,
    ):
        settings = settings or get_settings()
        super().__init__(settings=settings, timeout=timeout, retries=retries, transport=transport, backoff_base=backoff_base,
                         backoff_cap=backoff_cap, base_url=base_url or settings.platform_url,
                         headers={"X-Api-Key": secret_value(api_key or settings.platform_api_key)})

    # orders

    async def get_order(self, order_id: str) -> Order:
        body = await self._call("get order", "GET", f"/api/orders/{order_id}")
        return Order.model_validate(body)

    async def get_return_address(self, order_id: str) -> ReturnAddress:
        body = await self._call("get return address", "GET", f"/api/orders/{order_id}/return-address")
        return ReturnAddress.model_validate(body)

    # money and goods: every call carries the caller's idempotency key

    async def refund(
        self, order_id: str, amount: Decimal, reason: str, case_id: str, idempotency_key: str,
        kind: RefundKind = RefundKind.GOODS,
    ) -> Refund:
        payload = {
            "order_id": order_id, "amount": money_text(amount), "reason": reason, "case_id": case_id,
            "kind": RefundKind(kind).value,
        }
        body = await self._call(
            "refund", "POST", "/api/refunds", json=payload, idempotency_key=idempotency_key
        )
        return Refund.model_validate(body)

    async def list_refunds(self, order_id: str) -> list[Refund]:
        body = await self._call("list refunds", "GET", "/api/refunds", params={"order_id": order_id})
        return [Refund.model_validate(item) for item in body]

    async def reship(
        self,
        order_id: str,
        items: Sequence[ReshipmentItem | Mapping[str, Any]],
        reason: str,
        case_id: str,
        idempotency_key: str,
        carrier: str | None = None,
    ) -> Reshipment:
        """Ship goods again; ``carrier`` (a Kuaidi100 code) switches carrier (§1.4), else the order's."""
        lines = [ReshipmentItem.model_validate(item).model_dump() for item in items]
        payload = {"order_id": order_id, "items": lines, "reason": reason, "case_id": case_id}
        if carrier is not None:
            payload["carrier"] = carrier
        body = await self._call(
            "reship", "POST", "/api/reshipments", json=payload, idempotency_key=idempotency_key
        )
        return Reshipment.model_validate(body)

    async def put_parcel_on_order(self, order_id: str, carrier: str, waybill: str) -> None:
        """Nothing to do: a re-shipment through the gateway is on the order already."""

    async def list_reshipments(self, order_id: str) -> list[Reshipment]:
        params = {"order_id": order_id}
        body = await self._call("list reshipments", "GET", "/api/reshipments", params=params)
        return [Reshipment.model_validate(item) for item in body]

    # --- stock, charges and coupons (§1.2, §1.3, §1.7); POSTs carry the caller's idempotency key

    async def get_stock(self, sku: str) -> StockLevel:
        """The SKU's price and stock; ``OrderNotFound`` (404) for a SKU the catalogue does not know."""
        body = await self._call("get stock", "GET", f"/api/stock/{sku}")
        return StockLevel.model_validate(body)

    async def charge(self, order_id: str, amount: Decimal, reason: str, case_id: str, idempotency_key: str) -> Charge:
        """Charge the buyer of ``order_id`` (their original payment method)."""
        payload = {"order_id": order_id, "amount": money_text(amount), "reason": reason, "case_id": case_id}
        body = await self._call("charge", "POST", "/api/charges", json=payload, idempotency_key=idempotency_key)
        return Charge.model_validate(body)

    async def list_charges(self, order_id: str) -> list[Charge]:
        body = await self._call("list charges", "GET", "/api/charges", params={"order_id": order_id})
        return [Charge.model_validate(item) for item in body]

    async def issue_coupon(self, order_id: str, amount: Decimal, reason: str, case_id: str, idempotency_key: str,
                           valid_days: int = 90) -> Coupon:
        """Issue a coupon worth ``amount`` to the buyer of ``order_id``."""
        payload = {"order_id": order_id, "amount": money_text(amount), "reason": reason, "case_id": case_id,
                   "valid_days": valid_days}
        body = await self._call("issue coupon", "POST", "/api/coupons", json=payload, idempotency_key=idempotency_key)
        return Coupon.model_validate(body)

    async def list_coupons(self, order_id: str) -> list[Coupon]:
        body = await self._call("list coupons", "GET", "/api/coupons", params={"order_id": order_id})
        return [Coupon.model_validate(item) for item in body]

    # --- §1.9 the order feed the 15-day tracker reads ---------------------------------------------

    async def list_shipped_orders(self, shipped_since: datetime | None = None, after: str | None = None, limit: int = 500,
                                  *, modified_since: datetime | None = None) -> OrderPage:
        """One page of shipped orders; pass the previous page's ``next`` as ``after``.

        With ``modified_since``: the incremental feed, the orders created or changed at the platform
        at or after that time (and shipped at or after ``shipped_since`` if given), oldest change
        first — the one to sync from, since an order that reaches the platform late comes after
        everything already read. Without it: orders shipped at or after ``shipped_since``, oldest
        shipment first."""
        if shipped_since is None and modified_since is None:
            raise ValueError("give shipped_since or modified_since")
        params: dict[str, Any] = {"limit": limit}
        for name, moment in (("shipped_since", shipped_since), ("modified_since", modified_since)):
            if moment is not None:
                if moment.tzinfo is None:
                    raise ValueError(f"naive datetime {moment!r}: pass a timezone-aware time")
                params[name] = moment.isoformat()
        if after:
            params["after"] = after
        body = await self._call("list shipped orders", "GET", "/api/orders", params=params)
        return OrderPage.model_validate(body)

    # reviews

    async def list_reviews(self, since: datetime | None = None) -> list[Review]:
        """Reviews created at or after ``since`` (inclusive: dedupe by ``review_id``), oldest first."""
        params = {}
        if since is not None:
            if since.tzinfo is None:
                raise ValueError(f"naive datetime {since!r}: pass a timezone-aware time")
            params["since"] = since.isoformat()
        body = await self._call("list reviews", "GET", "/api/reviews", params=params)
        return [Review.model_validate(item) for item in body]

    # --- §1.6 malicious reviews (out-of-area/repair/review engineer) ---------------------------

    async def report_review(self, review_id: str, reason: str, evidence: str, case_id: str, idempotency_key: str) -> ReviewReport:
        """Report a verified malicious review to the platform, once per idempotency key."""
        payload = {"reason": reason, "evidence": evidence, "case_id": case_id}
        body = await self._call("report review", "POST", f"/api/reviews/{review_id}/report", json=payload,
                                idempotency_key=idempotency_key)
        return ReviewReport.model_validate(body)

    async def list_review_reports(self, review_id: str) -> list[ReviewReport]:
        body = await self._call("list review reports", "GET", f"/api/reviews/{review_id}/reports")
        return [ReviewReport.model_validate(item) for item in body]

    # plumbing

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
    ) -> Any:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        if method == "POST" and not idempotency_key:
            raise ValueError(f"{operation} moves money or goods: it needs an idempotency key")

        def send() -> Awaitable[httpx.Response]:
            return self._http.request(method, path, params=params, json=json, headers=headers)

        def give_up(status: int | None, detail: str) -> Exception:
            return PlatformUnavailable(operation, status, detail)

        response = await with_retries(send, self.retries, self._backoff, give_up)
        if response.is_success:
            return json_body(response)
        raise _rejection(operation, response)


def _rejection(operation: str, response: httpx.Response) -> PlatformError:
    detail = detail_of(response)
    if response.status_code == 404:
        return OrderNotFound(operation, 404, detail)
    if 400 <= response.status_code < 500:
        return PlatformRejected(operation, response.status_code, detail)
    # 1xx/3xx: the gateway answered something we do not speak (a redirect to a login page...)
    return PlatformError(operation, response.status_code, detail)
