"""The sandbox carrier's push service, as Kuaidi100's (快递信息推送服务): ``POST /poll`` subscribes a
waybill (``schema=json``, ``param`` with ``company``, ``number``, ``key`` and ``parameters``:
``callbackurl``, ``salt``, ``resultv2``, ``autoCom``), and the sandbox then POSTs the waybill's
track to the callback as a form (``param`` JSON, ``sign`` = MD5(param + salt) upper-case hex):
at once after subscribing when the parcel has a track, and on each new event.

Knobs (``POST /sandbox/carrier/push-knobs``), as the real service misbehaves:

* ``auto``: push on subscription and on each new event (off: only the ``push`` lever pushes);
* ``duplicates``: send each push so many extra times;
* ``reorder``: after the newest track, send an older one (the track without its newest event);
* ``bad_sign``: before each push, a forged one — a signed-looking push with a wrong signature;
* ``abort``: the next push of each waybill is ``status: abort`` with this message (e.g.
  "3天查询无记录"), ending its subscription;
* ``com_new``: pushes say the provider corrected the carrier code to this one (``autoCheck``);
* ``retries`` / ``retry_seconds``: a push not answered ``{"result": true, "returnCode": "200"}``
  is sent again (Kuaidi100: a few times, about every 35 minutes).

``POST /sandbox/carrier/push/{waybill}`` pushes now and returns what the receiver answered to each
copy; ``GET /sandbox/carrier/subscriptions`` lists the subscriptions and the pushes sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from sandbox_platform.parcels import Parcel, ParcelEvent

if TYPE_CHECKING:
    from sandbox_platform.app import SandboxShop

SIGNED_STATES = {3, 4}
# Kuaidi100's subscription answers
SUBSCRIBED = ("200", "提交成功")
DUPLICATE = ("501", "重复订阅")
NOT_SUBSCRIBER = ("600", "您不是合法的订阅者")
BAD_DATA = ("700", "订阅方的订阅数据存在错误（如不支持的快递公司、单号为空、单号超长等）或错误的回调地址")
TOO_MANY = ("700", "该单号本月订阅次数已达上限 subscribed too often this month")


class PushKnobs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    auto: bool = True
    duplicates: int = Field(default=0, ge=0, le=10)
    reorder: bool = False
    bad_sign: bool = False
    abort: str = ""
    com_new: str = Field(default="", pattern=r"^([a-z0-9]{2,20})?$")
    retries: int = Field(default=3, ge=0, le=10)
    retry_seconds: float = Field(default=1.0, ge=0, le=3600)


class PushAllRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    concurrency: int = Field(default=32, ge=1, le=512)


@dataclass
class Subscription:
    waybill: str
    com: str
    callback: str
    salt: str
    auto_com: bool
    times: int = 1  # subscriptions of this waybill (the provider allows a few a month)
    active: bool = True
    sent: list[dict[str, Any]] = field(default_factory=list)  # each push sent and the answer


def push_sign(param: str, salt: str) -> str:
    return hashlib.md5((param + salt).encode("utf-8")).hexdigest().upper()


class Pusher:
    """The subscriptions and the pushes; shares the shop's lock for its state."""

    SUBSCRIBE_LIMIT = 4

    def __init__(self, shop: "SandboxShop"):
        self.shop = shop
        self.reset()
        self._tasks: set[asyncio.Task] = set()

    def reset(self) -> None:
        self.subscriptions: dict[str, Subscription] = {}
        self.knobs = PushKnobs()

    # --- subscribing ------------------------------------------------------------------------------

    def subscribe(self, form: dict[str, str]) -> dict[str, Any]:
        try:
            param = json.loads(form.get("param") or "")
            com, num, key = param["company"], param["number"], param.get("key", "")
            parameters = param.get("parameters") or {}
            callback, salt = parameters["callbackurl"], parameters.get("salt", "")
        except (ValueError, KeyError, TypeError):
            return _answer(BAD_DATA)
        if form.get("schema") != "json":
            return _answer(BAD_DATA)
        if key != self.shop.carrier_key:
            return _answer(NOT_SUBSCRIBER)
        if not (com and num and len(num) <= 32 and str(callback).startswith(("http://", "https://")) and len(salt) <= 32):
            return _answer(BAD_DATA)
        with self.shop.lock:
            known = self.subscriptions.get(num)
            if known is not None and known.active and known.callback == callback:
                return _answer(DUPLICATE)
            times = (known.times + 1) if known else 1
            if times > self.SUBSCRIBE_LIMIT:
                return _answer(TOO_MANY)
            self.subscriptions[num] = Subscription(num, com, callback, salt, str(parameters.get("autoCom", "0")) == "1", times)
            has_track = bool((self.shop.parcels.get(num) or Parcel(num, None)).events)
            auto = self.knobs.auto
        if auto and has_track:
            self.later(num)  # the first push comes once the provider has a track
        return {"result": True, **_answer(SUBSCRIBED)}

    # --- pushing ----------------------------------------------------------------------------------

    def later(self, waybill: str) -> None:
        """Push in the background (the provider's own schedule), from the sandbox's event loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not called from a request: the lever pushes instead
        task = loop.create_task(self.push(waybill))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def event_added(self, waybill: str) -> None:
        with self.shop.lock:
            subscription = self.subscriptions.get(waybill)
            push = subscription is not None and subscription.active and self.knobs.auto
        if push:
            self.later(waybill)

    def pushes_for(self, waybill: str) -> list[tuple[str, str, bool]]:
        """The pushes (param, sign, genuine) the knobs make of the waybill's track, in sending order."""
        with self.shop.lock:
            subscription = self.subscriptions.get(waybill)
            if subscription is None or not subscription.active:
                return []
            knobs = self.knobs
            parcel = self.shop.parcels.get(waybill) or Parcel(waybill, subscription.com)
            events = parcel.newest_first()
            true_com = parcel.com or subscription.com
            com_new = knobs.com_new or (true_com if subscription.auto_com and true_com != subscription.com else "")
            if knobs.abort:
                subscription.active = False  # the provider gives up: no more pushes until subscribed again
                tracks = [("abort", knobs.abort, events)]
            else:
                tracks = [("shutdown" if events and events[0].state in SIGNED_STATES else "polling", "", events)]
                if knobs.reorder and len(events) > 1:
                    tracks.append(("polling", "", events[1:]))  # an older track, arriving after the newer
            salt, com = subscription.salt, subscription.com
        pushes: list[tuple[str, str, bool]] = []
        for status, message, track in tracks:
            param = json.dumps(_push_param(waybill, com_new or com, status, message, track, com if com_new else "", com_new),
                               ensure_ascii=False, separators=(",", ":"))
            if knobs.bad_sign:
                # a forger's push: it claims a signature by someone else, and cannot sign it with our salt
                forged_event = ParcelEvent(self.shop.now(), 3, "303", "【伪造 forged】已签收，他人代签 signed by someone else")
                forged = json.dumps(_push_param(waybill, com_new or com, "shutdown", "", [forged_event, *track], "", ""),
                                    ensure_ascii=False, separators=(",", ":"))
                pushes.append((forged, push_sign(forged, salt + "-forged"), False))
            pushes.extend([(param, push_sign(param, salt), True)] * (1 + knobs.duplicates))
        return pushes

    async def push(self, waybill: str, client: httpx.AsyncClient | None = None) -> list[dict[str, Any]]:
        """Send the waybill's pushes now; a genuine one not accepted is retried as the knobs say."""
        with self.shop.lock:
            subscription = self.subscriptions.get(waybill)
            callback = subscription.callback if subscription else ""
            retries, pause = self.knobs.retries, self.knobs.retry_seconds
        answers = []
        own = client is None
        client = client or httpx.AsyncClient(timeout=30)
        try:
            for param, sign, genuine in self.pushes_for(waybill):
                for attempt in range(retries + 1 if genuine else 1):
                    answer = await _send(client, callback, param, sign)
                    answer.update(genuine=genuine, attempt=attempt + 1, status=json.loads(param)["status"])
                    answers.append(answer)
                    if answer["accepted"] or not genuine:
                        break
                    await asyncio.sleep(pause)
        finally:
            if own:
                await client.aclose()
        with self.shop.lock:
            if subscription is not None:
                subscription.sent.extend(answers[-20:])
                del subscription.sent[:-50]  # the last few only: 100,000 subscriptions in a bench
        return answers

    async def push_all(self, concurrency: int) -> dict[str, Any]:
        """Push every active subscription now (the benchmark's load): counts and seconds."""
        with self.shop.lock:
            waybills = [w for w, s in self.subscriptions.items() if s.active]
        limit = asyncio.Semaphore(concurrency)
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=concurrency)) as client:
            async def one(waybill: str) -> list[dict[str, Any]]:
                async with limit:
                    return await self.push(waybill, client)

            results = []
            for start in range(0, len(waybills), 5000):  # bounded fan-out: 100,000 coroutines at once cost memory
                results.extend(await asyncio.gather(*(one(w) for w in waybills[start:start + 5000])))
        seconds = loop.time() - started
        sent = [a for answers in results for a in answers]
        return {"waybills": len(waybills), "pushes": len(sent), "accepted": sum(a["accepted"] for a in sent), "seconds": seconds}

    def listing(self) -> list[dict[str, Any]]:
        with self.shop.lock:
            return [{"waybill": s.waybill, "com": s.com, "callbackurl": s.callback, "times": s.times, "active": s.active,
                     "sent": list(s.sent)} for s in self.subscriptions.values()]


def _push_param(waybill: str, com: str, status: str, message: str, events: list, com_old: str, com_new: str) -> dict[str, Any]:
    state = events[0].state if events else 0
    param: dict[str, Any] = {
        "status": status, "billstatus": "check" if status != "abort" else "", "message": message,
        "autoCheck": "1" if com_new else "0", "comOld": com_old, "comNew": com_new,
        "lastResult": {"message": "ok", "nu": waybill, "ischeck": "1" if state in SIGNED_STATES else "0", "condition": "F00",
                       "com": com, "status": "200", "state": str(state), "data": [e.as_kuaidi100() for e in events]},
    }
    if not events:
        param["lastResult"] = {}
    return param


async def _send(client: httpx.AsyncClient, callback: str, param: str, sign: str) -> dict[str, Any]:
    try:
        response = await client.post(callback, data={"param": param, "sign": sign})
    except httpx.HTTPError as exc:
        return {"accepted": False, "http": None, "answer": f"{type(exc).__name__}: {exc}"[:200]}
    try:
        body = response.json()
    except ValueError:
        body = response.text[:200]
    accepted = isinstance(body, dict) and body.get("result") is True and str(body.get("returnCode")) == "200"
    return {"accepted": accepted, "http": response.status_code, "answer": body}


def _answer(code_and_message: tuple[str, str]) -> dict[str, Any]:
    code, message = code_and_message
    return {"result": code == "200", "returnCode": code, "message": message}


def push_routes(pusher: Pusher, form_of) -> APIRouter:
    router = APIRouter(tags=["carrier (Kuaidi100)"])

    @router.post("/poll")
    async def kuaidi100_subscribe(request: Request) -> dict[str, Any]:
        """Kuaidi100 push subscription: form fields ``schema=json`` and ``param``."""
        return pusher.subscribe(form_of(await request.body()))

    return router


def push_levers(pusher: Pusher) -> APIRouter:
    admin = APIRouter(prefix="/sandbox/carrier", tags=["sandbox levers"])

    @admin.post("/push-knobs")
    async def set_knobs(knobs: PushKnobs) -> dict[str, Any]:
        """Replaces all knobs at once: ``{}`` is the well-behaved provider."""
        with pusher.shop.lock:
            pusher.knobs = knobs
        return knobs.model_dump()

    @admin.post("/push/{waybill}")
    async def push_now(waybill: str) -> list[dict[str, Any]]:
        return await pusher.push(waybill)

    @admin.post("/push-all")
    async def push_all(request: PushAllRequest | None = None) -> dict[str, Any]:
        return await pusher.push_all((request or PushAllRequest()).concurrency)

    @admin.get("/subscriptions")
    async def subscriptions() -> list[dict[str, Any]]:
        return pusher.listing()

    return admin
