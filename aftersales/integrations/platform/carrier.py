"""The carrier tracking aggregator: Kuaidi100's real-time query (``/poll/query.do``),
so going live is a URL and a key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from pydantic import SecretStr

from aftersales.domain.settings import Settings, get_settings
from aftersales.integrations.platform.errors import CarrierError, NoTrackingRecord
from aftersales.integrations.platform.http import GatewayClient, detail_of, json_body, secret_value, with_retries
from aftersales.integrations.platform.models import TrackingEvent, TrackingResult

# Kuaidi100 writes its times as local China time without an offset.
CARRIER_TZ = ZoneInfo("Asia/Shanghai")


def kuaidi100_sign(param: str, key: str, customer: str) -> str:
    """Kuaidi100's signature: upper-case hex MD5 of ``param + key + customer``."""
    return hashlib.md5((param + key + customer).encode("utf-8")).hexdigest().upper()


class CarrierClient(GatewayClient):
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
        self._key = secret_value(key or settings.carrier_key)
        # no carrier-specific timeout/retry settings yet: the platform's serve both gateways
        super().__init__(settings=settings, timeout=timeout, retries=retries, transport=transport,
                         backoff_base=backoff_base, backoff_cap=backoff_cap)

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

        response = await with_retries(send, self.retries, self._backoff, give_up)
        return _tracking_result(com, num, response)


def _tracking_result(com: str, num: str, response: httpx.Response) -> TrackingResult:
    if not response.is_success:
        raise CarrierError(com, num, str(response.status_code), detail_of(response))
    try:
        body = json_body(response)
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
    """Kuaidi100's main state for a main or detailed value (Kuaidi100 state table).

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
