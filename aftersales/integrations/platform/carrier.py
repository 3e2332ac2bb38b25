"""The carrier tracking aggregator: Kuaidi100's real-time query (``/poll/query.do``) and its push
subscription (``/poll``, pushes signed with our salt), so going live is a URL and a key."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
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


def push_sign(param: str, salt: str) -> str:
    """The signature of a Kuaidi100 push: upper-case hex MD5 of ``param + salt``."""
    return hashlib.md5((param + salt).encode("utf-8")).hexdigest().upper()


def push_signed(param: str, sign: str, salt: str) -> bool:
    """Was this push signed with our salt? (Compared in constant time; hex case does not matter.)"""
    return hmac.compare_digest(sign.strip().upper().encode(), push_sign(param, salt).encode())


class PushMalformed(ValueError):
    """A correctly signed push whose ``param`` is not Kuaidi100's push shape; says what is wrong."""


@dataclass(frozen=True)
class CarrierPush:
    """One Kuaidi100 push, read: its status, the message (why, for an abort), a carrier-code
    correction (``autoCheck``: comOld → comNew), and the track (``lastResult``), if any."""

    status: str  # polling, shutdown, abort, updateall
    message: str
    com_old: str | None
    com_new: str | None
    tracking: TrackingResult | None

    @property
    def newest_event_at(self) -> datetime | None:
        return self.tracking.latest.time if self.tracking and self.tracking.latest else None


PUSH_STATUSES = {"polling", "shutdown", "abort", "updateall"}
CARRIER_CODE = re.compile(r"[a-z0-9]{2,32}")  # Kuaidi100's company codes: shunfeng, zhongtong, jd …


def read_push(param_text: str) -> CarrierPush:
    """A push's ``param`` (JSON) as a ``CarrierPush``; ``PushMalformed`` naming what is wrong."""
    try:
        param = json.loads(param_text)
    except ValueError:
        raise PushMalformed(f"param is not JSON: {param_text[:80]!r}") from None
    if not isinstance(param, dict):
        raise PushMalformed("param is not a JSON object")
    status = str(param.get("status", ""))
    if status not in PUSH_STATUSES:
        raise PushMalformed(f"param.status {status!r} is none of {', '.join(sorted(PUSH_STATUSES))}")
    check = param.get("autoCheck")
    com_old = com_new = None
    if str(param.get("autoCheck", "0")) == "1" or isinstance(check, dict):
        com_old, com_new = param.get("comOld") or None, param.get("comNew") or None
        if com_new is not None and not CARRIER_CODE.fullmatch(str(com_new)):
            raise PushMalformed(f"param.comNew {str(com_new)[:40]!r} is not a carrier code (lower-case letters and digits)")
    last = param.get("lastResult")
    tracking = None
    if last:
        if not isinstance(last, dict) or not last.get("nu"):
            raise PushMalformed("param.lastResult has no waybill (nu)")
        try:
            tracking = TrackingResult(
                com=last.get("com") or com_new or "", waybill=str(last["nu"]), state=main_state(str(last.get("state", "0"))),
                state_code=str(last.get("state", "0")), signed=str(last.get("ischeck", "0")) == "1",
                events=[_tracking_event(item) for item in last.get("data") or []],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PushMalformed(f"param.lastResult is not a Kuaidi100 track: {type(exc).__name__} {exc}"[:200]) from None
    return CarrierPush(status=status, message=str(param.get("message", ""))[:200], com_old=com_old, com_new=com_new, tracking=tracking)


class CarrierClient(GatewayClient):
    """Kuaidi100 real-time query and push subscription. Use as ``async with CarrierClient() as carrier:``.

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
        self.subscribe_url = settings.carrier_subscribe_url
        self._key = secret_value(key or settings.carrier_key)
        # the platform's retry budget serves both gateways; the timeout is the carrier's own
        super().__init__(settings=settings, timeout=settings.carrier_timeout_seconds if timeout is None else timeout,
                         retries=retries, transport=transport, backoff_base=backoff_base, backoff_cap=backoff_cap)

    async def subscribe(self, com: str, num: str, *, callback_url: str, salt: str | SecretStr, phone: str | None = None) -> str:
        """Subscribe the waybill to pushes (``/poll``): the provider then POSTs its track to
        ``callback_url``, signed with ``salt``. Returns "subscribed", or "already" when the provider
        says the waybill is subscribed already (returnCode 501: one subscription stands, keep it).
        ``CarrierError`` (operation "subscribe") names the waybill, the code and the provider's words."""
        parameters = {"callbackurl": callback_url, "salt": secret_value(salt), "resultv2": "4", "autoCom": "1"}
        if phone:
            parameters["phone"] = phone
        param = {"company": com, "number": num, "key": self._key, "parameters": parameters}
        form = {"schema": "json", "param": json.dumps(param, ensure_ascii=False, separators=(",", ":"))}

        def send() -> Awaitable[httpx.Response]:
            return self._http.post(self.subscribe_url, data=form)

        def give_up(status: int | None, detail: str) -> Exception:
            return CarrierError(com, num, str(status) if status else None, detail, operation="subscribe")

        response = await with_retries(send, self.retries, self._backoff, give_up)
        if not response.is_success:
            raise CarrierError(com, num, str(response.status_code), detail_of(response), operation="subscribe")
        try:
            body = json_body(response)
        except ValueError:
            raise CarrierError(com, num, None, f"not JSON: {response.text[:200]}", operation="subscribe") from None
        code = str(body.get("returnCode", ""))
        if code == "501":  # 重复订阅: the standing subscription keeps pushing
            return "already"
        if body.get("result") is not True or code != "200":
            raise CarrierError(com, num, code or None, str(body.get("message", "")), operation="subscribe")
        return "subscribed"

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
