"""The outside world's two doors: the shop platform and the carrier tracking aggregator.

One client per outside system, each wrapping one ``httpx.AsyncClient``:

* ``PlatformClient``: orders, return addresses, refunds, re-shipments and reviews from the shop
  platform's HTTP gateway (the sandbox in ``sandbox_platform/`` speaks the same API).
* ``CarrierClient``: Kuaidi100's real-time query (``shared/domain/CARRIERS.md``), so going live is
  a URL and a key.

Money is ``Decimal`` everywhere; a float is refused at the door (``TypeError``) because a float
amount has already lost cents. Times are timezone-aware.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import httpx
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
)

from aftersales.domain.settings import Settings, get_settings

CENT = Decimal("0.01")
# Kuaidi100 writes its times as local China time without an offset.
CARRIER_TZ = ZoneInfo("Asia/Shanghai")


# --- money -------------------------------------------------------------------------------------


def refuse_float(value: Any) -> Any:
    # ValueError, so pydantic reports it as a validation error (the sandbox answers 422).
    # bool is an int subclass; True as an amount is a bug, not one yuan.
    if isinstance(value, (float, bool)):
        raise ValueError(f"money must be a Decimal or a decimal string, not {value!r}")
    return value


def to_cents(value: Decimal) -> Decimal:
    return value.quantize(CENT)


# CNY with at most two places, serialized as a string ("59.00") so JSON never carries a float.
Money = Annotated[
    Decimal,
    BeforeValidator(refuse_float),
    Field(max_digits=14, decimal_places=2),
    AfterValidator(to_cents),
]


def money_text(amount: Decimal) -> str:
    """A Decimal amount as the wire wants it; floats and sub-cent amounts are refused."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"amount must be a Decimal, not {type(amount).__name__} ({amount!r})")
    if not amount.is_finite():
        raise ValueError(f"amount {amount} is not a number of yuan")
    if amount != amount.quantize(CENT):
        raise ValueError(f"amount {amount} has more than two decimal places")
    return str(to_cents(amount))


# --- the platform's vocabulary ----------------------------------------------------------------


class OrderStatus(StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    AWAITING_SHIPMENT = "awaiting_shipment"
    SHIPPED = "shipped"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Rating(StrEnum):
    POSITIVE = "positive"
    NEUTRAL = "neutral"
    NEGATIVE = "negative"


class _Model(BaseModel):
    # A newer gateway may add fields; ignoring them keeps an older client working.
    model_config = ConfigDict(extra="ignore")


class Customer(_Model):
    customer_id: str
    name: str
    phone: str
    email: str | None = None
    address: str
    language: Literal["zh-CN", "en"] = "zh-CN"


class OrderItem(_Model):
    sku: str
    name: str
    category: str
    quantity: int = Field(ge=1)
    unit_price: Money


class Order(_Model):
    order_id: str
    customer: Customer
    items: list[OrderItem]
    paid_amount: Money
    postage_paid: Money = Decimal("0.00")
    free_shipping: bool = False
    status: OrderStatus
    shipped_at: AwareDatetime | None = None
    # when the buyer signed for the parcel; starts the return windows
    delivered_at: AwareDatetime | None = None
    transaction_success_at: AwareDatetime | None = None
    carrier: str | None = None  # Kuaidi100 company code, e.g. "zhongtong"
    waybill: str | None = None
    warehouse_left: bool = False
    # when the platform last created or changed the order (Taobao's ``modified``); set by the platform
    modified_at: AwareDatetime | None = None

    @property
    def delivered(self) -> bool:
        return self.delivered_at is not None


class OrderPage(_Model):
    orders: list[Order]
    next: str | None = None  # cursor for the following page; None on the last one


class ReturnAddress(_Model):
    name: str
    phone: str
    address: str
    postcode: str


class RefundKind(StrEnum):
    GOODS = "goods"  # part or all of the price paid; never more than was paid in all
    POSTAGE = "postage"  # postage the seller owes the buyer (§1.1: seller at fault), paid on top
    COMPENSATION = "compensation"  # cash to win a buyer's understanding (§1.3, §1.6), paid on top


class Refund(_Model):
    refund_id: str
    order_id: str
    amount: Money
    kind: RefundKind = RefundKind.GOODS
    reason: str
    case_id: str
    status: str
    created_at: AwareDatetime


class ReshipmentItem(_Model):
    sku: str
    quantity: int = Field(ge=1)


class Reshipment(_Model):
    reshipment_id: str
    order_id: str
    items: list[ReshipmentItem]
    carrier: str
    waybill: str
    status: str
    created_at: AwareDatetime


# --- stock, charges and coupons (§1.2 exchange, §1.3 compensation, §1.7 wrong shipment) ---------


class StockLevel(_Model):
    """A SKU in the shop's catalogue: its price and how many can be shipped now."""

    sku: str
    name: str
    unit_price: Money
    available: int = Field(ge=0)

    def can_ship(self, quantity: int) -> bool:
        return self.available >= quantity


class Charge(_Model):
    """Money the buyer pays (e.g. §1.2: the replacement costs more than the item sent back)."""

    charge_id: str
    order_id: str
    amount: Money
    reason: str
    case_id: str
    status: str
    created_at: AwareDatetime


class Coupon(_Model):
    """A shop coupon issued to a buyer (§1.3 compensation by coupon)."""

    coupon_id: str
    code: str
    customer_id: str
    order_id: str
    amount: Money
    reason: str
    case_id: str
    status: str
    expires_at: AwareDatetime
    created_at: AwareDatetime


class Review(_Model):
    review_id: str
    order_id: str
    customer_id: str
    rating: Rating
    text: str
    created_at: AwareDatetime


class ReviewReport(_Model):
    """A malicious review reported to the platform for verification (§1.6; 000 §5.2.2)."""

    report_id: str
    review_id: str
    reason: str
    evidence: str
    case_id: str
    status: str
    created_at: AwareDatetime


class TrackingEvent(_Model):
    """One line of a parcel's history, in our words (Kuaidi100: ``data[]``)."""

    time: AwareDatetime
    context: str
    status: str | None = None  # state name, e.g. "签收"
    status_code: str | None = None  # detailed value, e.g. "301" signed by recipient
    area: str | None = None


class TrackingResult(_Model):
    """A parcel's tracking as the carrier aggregator reports it, newest event first."""

    com: str
    waybill: str
    state: int  # Kuaidi100 main state: 3 signed, 0 in transit, 2 problem, ... (CARRIERS.md)
    state_code: str  # ``state`` as the aggregator sent it, possibly a detailed value ("301")
    signed: bool  # Kuaidi100 ``ischeck``: the tracking has ended in a signature
    events: list[TrackingEvent]

    @property
    def latest(self) -> TrackingEvent | None:
        return self.events[0] if self.events else None


# --- errors ------------------------------------------------------------------------------------


class PlatformError(Exception):
    """A platform call failed; says which call, with what HTTP status and why."""

    def __init__(self, operation: str, status_code: int | None, detail: str):
        self.operation = operation
        self.status_code = status_code
        self.detail = detail
        status = f"HTTP {status_code}" if status_code is not None else "no answer"
        super().__init__(f"platform {operation} failed ({status}): {detail}")


class OrderNotFound(PlatformError):
    """The platform does not know the order (404)."""


class PlatformRejected(PlatformError):
    """The platform refused the request (4xx): wrong key, over-refund, bad input. Not retried."""


class PlatformUnavailable(PlatformError):
    """No good answer after every retry: timeouts, connection errors, 429 or 5xx."""


class CarrierError(Exception):
    """The carrier aggregator answered with an error code (Kuaidi100 ``returnCode``)."""

    def __init__(self, com: str, waybill: str, return_code: str | None, message: str):
        self.com = com
        self.waybill = waybill
        self.return_code = return_code
        self.message = message
        super().__init__(f"carrier query {com} {waybill} failed ({return_code}): {message}")


class NoTrackingRecord(CarrierError):
    """Kuaidi100 ``returnCode`` 500: no tracking yet (or a wrong carrier code/waybill)."""


# --- retries -----------------------------------------------------------------------------------

RETRYABLE_STATUS = {429} | set(range(500, 600))


class _Backoff:
    """Exponential backoff with jitter, so many clients retrying do not hit the gateway in step."""

    def __init__(self, base: float, cap: float):
        self.base = base
        self.cap = cap

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after and retry_after.isdigit():
            # the gateway knows best when it will be back; still never wait past the cap
            return min(float(retry_after), self.cap)
        return min(self.base * 2**attempt, self.cap) * random.uniform(0.5, 1.0)


async def _with_retries(
    send: Callable[[], Awaitable[httpx.Response]],
    retries: int,
    backoff: _Backoff,
    give_up: Callable[[int | None, str], Exception],
) -> httpx.Response:
    """Send until an answer that is not worth retrying; ``give_up`` builds the final error.

    The caller's ``send`` repeats the same request, idempotency key included, so a retry after a
    lost answer replays the first effect instead of paying twice.
    """
    for attempt in range(retries + 1):
        try:
            response = await send()
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as error:
            # transient only: a bad URL or scheme (UnsupportedProtocol) is a setup bug, raised as is
            status, detail, retry_after = None, f"{type(error).__name__} {error}".strip(), None
        else:
            if response.status_code not in RETRYABLE_STATUS:
                return response
            status, detail = response.status_code, _detail(response)
            retry_after = response.headers.get("Retry-After")
        if attempt < retries:
            await asyncio.sleep(backoff.delay(attempt, retry_after))
    raise give_up(status, f"{detail} (after {retries + 1} attempts)")


def _json(response: httpx.Response) -> Any:
    # parse_float=Decimal: should a gateway ever send a number, no cent is lost on the way
    return json.loads(response.content, parse_float=Decimal)


def _detail(response: httpx.Response) -> str:
    try:
        body = _json(response)
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict) and "detail" in body:
        detail = body["detail"]
        return detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False, default=str)
    return json.dumps(body, ensure_ascii=False, default=str)[:300]


def _secret(value: str | SecretStr) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


# --- the shop platform -------------------------------------------------------------------------


class PlatformClient:
    """The shop platform's gateway. Use as ``async with PlatformClient() as platform:``.

    Arguments override the settings (``AFTERSALES_PLATFORM_*``); ``transport`` lets a test or a
    bench plug in its own httpx transport.
    """

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
        self.retries = settings.platform_retries if retries is None else retries
        self._backoff = _Backoff(backoff_base, backoff_cap)
        seconds = settings.platform_timeout_seconds if timeout is None else timeout
        self._http = httpx.AsyncClient(
            base_url=base_url or settings.platform_url,
            headers={"X-Api-Key": _secret(api_key or settings.platform_api_key)},
            timeout=httpx.Timeout(seconds),
            transport=transport,
        )

    async def __aenter__(self) -> PlatformClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

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

        response = await _with_retries(send, self.retries, self._backoff, give_up)
        if response.is_success:
            return _json(response)
        raise _rejection(operation, response)


def _rejection(operation: str, response: httpx.Response) -> PlatformError:
    detail = _detail(response)
    if response.status_code == 404:
        return OrderNotFound(operation, 404, detail)
    if 400 <= response.status_code < 500:
        return PlatformRejected(operation, response.status_code, detail)
    # 1xx/3xx: the gateway answered something we do not speak (a redirect to a login page...)
    return PlatformError(operation, response.status_code, detail)


# --- the carrier tracking aggregator (Kuaidi100 protocol) --------------------------------------


def kuaidi100_sign(param: str, key: str, customer: str) -> str:
    """Kuaidi100's signature: upper-case hex MD5 of ``param + key + customer``."""
    return hashlib.md5((param + key + customer).encode("utf-8")).hexdigest().upper()


class CarrierClient:
    """Kuaidi100 real-time query. Use as ``async with CarrierClient() as carrier:``.

    Respect the aggregator's rate rule (one query per waybill about every 30 minutes) in the
    caller; this client only retries lost or failed calls, which Kuaidi100 does not count.
    """

    def __init__(
        self,
        *,
        url: str | None = None,
        customer: str | None = None,
        key: str | SecretStr | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff_base: float = 0.2,
        backoff_cap: float = 5.0,
        settings: Settings | None = None,
    ):
        settings = settings or get_settings()
        self.url = url or settings.carrier_url
        self.customer = customer or settings.carrier_customer
        self._key = _secret(key or settings.carrier_key)
        # no carrier-specific timeout/retry settings yet: the platform's serve both gateways
        self.retries = settings.platform_retries if retries is None else retries
        self._backoff = _Backoff(backoff_base, backoff_cap)
        seconds = settings.platform_timeout_seconds if timeout is None else timeout
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(seconds), transport=transport)

    async def __aenter__(self) -> CarrierClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def query(self, com: str, num: str, phone: str | None = None) -> TrackingResult:
        """The parcel's tracking; ``phone`` (recipient's, or its last 4 digits) is needed for SF."""
        param = {"com": com, "num": num, "resultv2": "4", "order": "desc"}
        if phone:
            param["phone"] = phone
        param_text = json.dumps(param, ensure_ascii=False, separators=(",", ":"))
        sign = kuaidi100_sign(param_text, self._key, self.customer)
        form = {"customer": self.customer, "sign": sign, "param": param_text}

        def send() -> Awaitable[httpx.Response]:
            return self._http.post(self.url, data=form)

        def give_up(status: int | None, detail: str) -> Exception:
            return CarrierError(com, num, str(status) if status else None, detail)

        response = await _with_retries(send, self.retries, self._backoff, give_up)
        return _tracking_result(com, num, response)


def _tracking_result(com: str, num: str, response: httpx.Response) -> TrackingResult:
    if not response.is_success:
        raise CarrierError(com, num, str(response.status_code), _detail(response))
    try:
        body = _json(response)
    except ValueError:
        raise CarrierError(com, num, None, f"not JSON: {response.text[:200]}") from None
    # Errors come as {"result": false, "returnCode": "...", "message": "..."} with HTTP 200.
    status = str(body.get("status") or body.get("returnCode") or "")
    if status != "200":
        error = NoTrackingRecord if status == "500" else CarrierError
        raise error(com, num, status or None, str(body.get("message", "")))
    return TrackingResult(
        com=body.get("com") or com,
        waybill=body.get("nu") or num,
        state=main_state(str(body.get("state", "0"))),
        state_code=str(body.get("state", "0")),
        signed=str(body.get("ischeck", "0")) == "1",
        events=[_tracking_event(item) for item in body.get("data") or []],
    )


def main_state(code: str) -> int:
    """Kuaidi100's main state for a main or detailed value (CARRIERS.md's table).

    Asked for detailed statuses (resultv2), the aggregator may put a detailed value such as "301"
    into ``state`` too; our rules speak main states, so fold it back.
    """
    value = int(code)
    if 10 <= value <= 13:
        return 8  # customs: 10 waiting, 11 clearing, 12 cleared, 13 problem
    if 1000 <= value <= 9999:
        return 14 if code.startswith("14") else 0  # 1001-1003 in transit; 14xx refused
    if 100 <= value <= 999:
        return value // 100  # 101-103 collected, 301-304 signed, 401 returned, 501 out for delivery
    return value


def _tracking_event(item: Mapping[str, Any]) -> TrackingEvent:
    return TrackingEvent(
        time=_carrier_time(item.get("ftime") or item["time"]),
        context=item.get("context", ""),
        status=item.get("status") or None,
        status_code=item.get("statusCode") or None,
        area=item.get("areaName") or None,
    )


def _carrier_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=CARRIER_TZ)
