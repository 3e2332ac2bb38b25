"""The shop platform over Taobao/Tmall's TOP protocol (淘宝开放平台 ``/router/rest``), as the
open platform's documentation describes it (its envelope, MD5 signature, fields, statuses, errors).

Every call is one POST of a signed form: the common envelope (``method``, ``app_key``, ``session``,
``timestamp`` in Beijing time, ``v=2.0``, ``format=json``, ``sign_method=md5``) with the call's own
parameters, signed by ``top_sign`` (§1.3). The answer is JSON under ``<api>_response`` (§1.4), or an
``error_response`` that becomes a typed error (errors.py, §6):

* a signature, app-key, session, permission or timestamp error: ``TopAuthError`` naming the setting
  to check (``AFTERSALES_TOP_APP_SECRET``, ``_APP_KEY``, ``_SESSION_KEY``);
* busy or down (App Call Limited, Service Unavailable, ``isp.*``): retried with backoff like any
  transient failure, then ``TopUnavailable``;
* a business refusal: ``TopRejected`` (a ``PlatformRejected``: final, the flows do not retry it);
  among them ``RefundVersionConflict`` (read the refund again and decide again) and
  ``VerificationCodeRequired`` (a large refund waits for the seller's SMS code).

TOP has no idempotency key. A write retried after a lost answer is still applied at most once:
every decision on a refund echoes the ``refund_version`` it was made on, and the first call's
change moved the version on, so the repeat comes back as a ``RefundVersionConflict`` — reading the
refund again then shows the decision already taken.

Money: TOP's amounts are strings of yuan ("200.07"), read as ``Decimal``; ``refund_infos`` takes
whole fen. Times are Beijing time without an offset on the wire, timezone-aware here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from pydantic import SecretStr

from aftersales.domain.settings import Settings, get_settings
from aftersales.integrations.platform.errors import (
    NotOffered,
    OrderNotFound,
    PlatformError,
    PlatformRejected,
    PlatformUnavailable,
    RefundVersionConflict,
    TopAuthError,
    TopError,
    TopNotFound,
    TopRejected,
    TopUnavailable,
    VerificationCodeRequired,
)
from aftersales.integrations.platform.http import GatewayClient, detail_of, json_body, secret_value, with_retries
from aftersales.integrations.platform.models import (
    Charge,
    Coupon,
    Customer,
    Order,
    OrderItem,
    OrderPage,
    OrderStatus,
    Rating,
    Refund,
    RefundAgreement,
    RefundApplication,
    RefundKind,
    RefundMessage,
    RefundPage,
    RefundStatus,
    RefundToAgree,
    RefusalReason,
    ReturnAddress,
    Reshipment,
    Review,
    ReviewPage,
    ReviewReport,
    StockLevel,
    money_text,
)

TOP_TZ = ZoneInfo("Asia/Shanghai")  # TOP's times: 'yyyy-MM-dd HH:mm:ss', GMT+8
TOP_TIME = "%Y-%m-%d %H:%M:%S"

# --- the envelope and the signature (PLATFORMS.md §1) ------------------------------------------


def top_sign(params: Mapping[str, str], secret: str, sign_method: str = "md5") -> str:
    """TOP's signature (§1.3): every parameter but ``sign`` (files are never in ``params``), empty
    values left out, sorted by name, concatenated as ``name1value1name2value2…``; ``md5`` digests
    ``secret + text + secret``, ``hmac`` is HMAC-MD5 of the text keyed with the secret. Upper-case hex."""
    text = "".join(f"{name}{value}" for name, value in sorted(params.items()) if name != "sign" and value not in (None, ""))
    if sign_method == "md5":
        digest = hashlib.md5(f"{secret}{text}{secret}".encode("utf-8")).hexdigest()
    elif sign_method == "hmac":
        digest = hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.md5).hexdigest()
    else:
        raise ValueError(f"sign_method {sign_method!r}: md5 or hmac")
    return digest.upper()


def top_time(moment: datetime) -> str:
    """A timezone-aware moment as TOP writes it: Beijing time, 'YYYY-MM-DD HH:MM:SS'."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: pass a timezone-aware time")
    return moment.astimezone(TOP_TZ).strftime(TOP_TIME)


def parse_top_time(text: str | None) -> datetime | None:
    return datetime.strptime(text, TOP_TIME).replace(tzinfo=TOP_TZ) if text else None


def response_key(method: str) -> str:
    """Where TOP puts a call's answer (§1.4): ``taobao.refund.get`` → ``refund_get_response``."""
    return method.removeprefix("taobao.").replace(".", "_") + "_response"


# --- error_response → typed errors (PLATFORMS.md §6) -----------------------------------------

APP_KEY, APP_SECRET, SESSION_KEY = "AFTERSALES_TOP_APP_KEY", "AFTERSALES_TOP_APP_SECRET", "AFTERSALES_TOP_SESSION_KEY"
CLOCK_HINT = ("时间戳缺失或与平台相差超过 10 分钟，请校准本机时钟 / the timestamp is missing or more than 10 minutes "
              "off the platform's: check this machine's clock")
SESSION_HINT = ("卖家授权 session 缺失、过期或已撤销：请卖家重新授权应用后更新 / the seller's session key is missing, "
                "expired or revoked: have the seller authorise the app again and set the new key")
# TOP's codes for who we are, each with the setting to check and what to do
AUTH_CODES: dict[int, tuple[str | None, str]] = {
    11: (APP_KEY, "应用没有此接口的权限，请在开放平台申请 / the app is not granted this API: apply for it in the TOP console"),
    12: (SESSION_KEY, "该卖家账号无此操作权限（同意退款只允许子账号）/ the seller's account may not do this "
                      "(agreeing a refund needs a sub-account's session)"),
    13: (APP_KEY, "合作伙伴权限不足 / insufficient partner permissions"),
    24: (APP_SECRET, "请求缺少签名 / the request is not signed"),
    25: (APP_SECRET, "签名不符，请核对 AppSecret / the signature does not match: check the app secret"),
    26: (SESSION_KEY, SESSION_HINT),
    27: (SESSION_KEY, SESSION_HINT),
    28: (APP_KEY, "缺少 AppKey / the app key is missing"),
    29: (APP_KEY, "AppKey 无效 / TOP does not know this app key"),
    30: (None, CLOCK_HINT),
    31: (None, CLOCK_HINT),
    42: (SESSION_KEY, "session 权限不足 / the session lacks the permission"),
    44: (SESSION_KEY, SESSION_HINT),
}
BUSY_CODES = {7, 10}  # App Call Limited, Service Currently Unavailable
BUSY_SUB_CODES = ("isp.", "accesscontrol.", "isv.access-limited")  # platform faults and flow limits
# PLATFORMS.md names no sub_code for these; the sandbox's (sandbox_platform/top.py) until a live
# answer says otherwise [unverified]
VERSION_CONFLICT_SUB_CODES = {"isv.refund-version-expired"}
SMS_CODE_SUB_CODES = {"isv.refund-sms-code-required", "isv.refund-sms-code-invalid"}
NOT_FOUND_SUB_CODES = {"isv.trade-not-exist", "isv.refund-not-exist", "isv.traderate-not-exist"}


def top_error(method: str, error: Mapping[str, Any], params: Mapping[str, str]) -> TopError:
    """The typed error for an ``error_response`` to ``method`` called with ``params``."""
    code = int(error["code"]) if str(error.get("code", "")).isdigit() else None
    fields = dict(method=method, code=code, msg=str(error.get("msg", "")), sub_code=error.get("sub_code"),
                  sub_msg=error.get("sub_msg"), request_id=error.get("request_id"))
    sub_code = fields["sub_code"] or ""
    if code in AUTH_CODES:
        setting, hint = AUTH_CODES[code]
        return TopAuthError(**fields, setting=setting, hint=hint)
    if code in BUSY_CODES or sub_code.startswith(BUSY_SUB_CODES):  # retried by _call, then raised
        return TopUnavailable(**fields)
    if sub_code in VERSION_CONFLICT_SUB_CODES:
        return RefundVersionConflict(**fields, hint="退款单已变化，请重新读取后再决定 / the refund changed: read it again and decide again")
    if sub_code in SMS_CODE_SUB_CODES:
        infos = params.get("refund_infos", "")
        refunds = tuple(RefundToAgree.from_info(info) for info in infos.split(",") if info)
        return VerificationCodeRequired(**fields, refunds=refunds,
                                        hint="请输入卖家手机收到的短信验证码后重试 / repeat the call with the SMS code the seller received")
    if sub_code in NOT_FOUND_SUB_CODES:
        return TopNotFound(**fields)
    return TopRejected(**fields)


def _error_response(response: httpx.Response) -> Mapping[str, Any] | None:
    try:
        body = json_body(response)
    except ValueError:
        return None
    error = body.get("error_response") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


# --- the shop's vocabulary on TOP --------------------------------------------------------------

# TOP trade status → ours (§4)
TRADE_STATUS = {
    "TRADE_NO_CREATE_PAY": OrderStatus.AWAITING_PAYMENT, "WAIT_BUYER_PAY": OrderStatus.AWAITING_PAYMENT,
    "PAY_PENDING": OrderStatus.AWAITING_PAYMENT, "WAIT_PRE_AUTH_CONFIRM": OrderStatus.AWAITING_PAYMENT,
    "WAIT_SELLER_SEND_GOODS": OrderStatus.AWAITING_SHIPMENT, "PAID_FORBID_CONSIGN": OrderStatus.AWAITING_SHIPMENT,
    "SELLER_CONSIGNED_PART": OrderStatus.SHIPPED, "WAIT_BUYER_CONFIRM_GOODS": OrderStatus.SHIPPED,
    "TRADE_BUYER_SIGNED": OrderStatus.SHIPPED, "TRADE_FINISHED": OrderStatus.COMPLETED,
    "TRADE_CLOSED": OrderStatus.CANCELLED, "TRADE_CLOSED_BY_TAOBAO": OrderStatus.CANCELLED,
}
# Our carrier codes (Kuaidi100's) → TOP's logistics company code and name (taobao.logistics.companies.get;
# POST and ZJS are PLATFORMS.md's examples, the others [unverified])
TOP_CARRIERS = {
    "zhongtong": ("ZTO", "中通快递"), "yuantong": ("YTO", "圆通速递"), "shunfeng": ("SF", "顺丰速运"),
    "yunda": ("YUNDA", "韵达快递"), "shentong": ("STO", "申通快递"), "jd": ("JD", "京东快递"),
    "ems": ("EMS", "EMS"), "youzhengguonei": ("POST", "中国邮政"), "zhaijisong": ("ZJS", "宅急送"),
}
CARRIER_BY_NAME = {name: code for code, (_, name) in TOP_CARRIERS.items()}
RATING = {"good": Rating.POSITIVE, "neutral": Rating.NEUTRAL, "bad": Rating.NEGATIVE}

# What each read asks for (``fields``); taobao.refunds.receive.get accepts only these (§2.1), so a
# listed refund has no version: read it with ``get_refund`` before deciding on it
TRADE_FIELDS = ("tid,status,payment,post_fee,total_fee,created,pay_time,consign_time,end_time,modified,buyer_nick,"
                "buyer_open_uid,receiver_name,receiver_state,receiver_city,receiver_district,receiver_town,"
                "receiver_address,receiver_zip,receiver_mobile,receiver_phone,orders")
REFUND_LIST_FIELDS = ("refund_id,tid,oid,title,buyer_nick,total_fee,status,created,modified,refund_fee,good_status,"
                      "has_good_return,company_name,sid,payment,reason,desc,order_status,refund_phase,dispute_type")
REFUND_FIELDS = REFUND_LIST_FIELDS + ",refund_version,refund_remind_timeout,address,good_return_time,buyer_open_uid"
REASON_FIELDS = "reason_id,reason_text,reason_tips"

# The order feed (taobao.trades.sold.increment.get, PLATFORMS.md §5)
FEED_WINDOW = timedelta(days=1)  # TOP refuses start_modified and end_modified more than a day apart
FEED_PAGE_SIZE = 100  # TOP's largest page: the fewest calls per window
FEED_PASSES = 3  # a window that changed while it was paged is paged again, this many times at most
SECOND = timedelta(seconds=1)  # TOP's times have no fraction: windows are whole seconds, both ends included
# a trade that has shipped (§4); a closed one counts when it shipped before it closed (a full refund)
SHIPPED_TRADE_STATUSES = {"SELLER_CONSIGNED_PART", "WAIT_BUYER_CONFIRM_GOODS", "TRADE_BUYER_SIGNED", "TRADE_FINISHED"}
FEED_CURSOR = "tb-modified:"  # + the next window's start, in TOP's time
RATE_FIELDS = "tid,oid,role,nick,result,created,rated_nick,item_title,item_price,content,reply,num_iid,ouid"


class TopClient(GatewayClient):
    """The shop platform over TOP. Use as ``async with TopClient() as platform:``.

    Arguments override the settings (``AFTERSALES_TOP_URL``, ``_TOP_APP_KEY``, ``_TOP_APP_SECRET``,
    ``_TOP_SESSION_KEY``; timeouts and retries are the platform's: ``AFTERSALES_PLATFORM_TIMEOUT_SECONDS``,
    ``_RETRIES``); ``clock`` gives the envelope's timestamp (a test's skewed clock) and the order
    feed's "now"; ``feed_page_size`` is the feed's TOP page (at most 100, TOP's largest)."""

    # what TOP has no call for: the seller does it in Qianniu (``NotOffered`` below)
    by_hand: frozenset[str] = frozenset({"refund", "reship", "charge", "issue_coupon", "report_review"})

    def __init__(
        self,
        *,
        url: str | None = None,
        app_key: str | None = None,
        app_secret: str | SecretStr | None = None,
        session_key: str | SecretStr | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff_base: float = 0.2,
        backoff_cap: float = 5.0,
        settings: Settings | None = None,
        clock: Callable[[], datetime] | None = None,
        feed_page_size: int = FEED_PAGE_SIZE,
    ):
        settings = self._settings = settings or get_settings()
        self.url = url or settings.top_url
        self.app_key = settings.top_app_key if app_key is None else app_key
        self._secret = secret_value(settings.top_app_secret if app_secret is None else app_secret)
        self._session = secret_value(settings.top_session_key if session_key is None else session_key)
        self._clock = clock or (lambda: datetime.now(TOP_TZ))
        if not 1 <= feed_page_size <= FEED_PAGE_SIZE:
            raise ValueError(f"feed_page_size {feed_page_size}: TOP pages hold 1 to {FEED_PAGE_SIZE}")
        self.feed_page_size = feed_page_size
        super().__init__(settings=settings, timeout=timeout, retries=retries, transport=transport,
                         backoff_base=backoff_base, backoff_cap=backoff_cap)

    # --- orders (taobao.trade.fullinfo.get) ----------------------------------------------------

    async def get_order(self, order_id: str) -> Order:
        """The trade ``order_id`` (TOP tid) as our ``Order``. TOP gives no delivery time: ``delivered_at``
        stays empty (the carrier's signature says when)."""
        if not str(order_id).isdigit():  # not a Taobao trade: not on this platform
            raise OrderNotFound("taobao.trade.fullinfo.get", None, f"{order_id!r} is no Taobao trade id (a tid is digits)")
        body = await self._call("taobao.trade.fullinfo.get", {"fields": TRADE_FIELDS, "tid": order_id})
        return _order(body["trade"])

    async def get_return_address(self, order_id: str) -> ReturnAddress:
        """Where returned goods go: the shop's after-sales address (``AFTERSALES_TOP_RETURN_*``; TOP
        keeps the seller's addresses in Qianniu, the agreement sends it with the refund)."""
        settings = self._settings
        return ReturnAddress(name=settings.top_return_name, phone=settings.top_return_phone,
                             address=settings.top_return_address, postcode=settings.top_return_postcode)

    async def list_refunds(self, order_id: str) -> list[Refund]:
        """What the platform refunded on the trade: each sub-order's latest refund (its ``refund_id``
        on the trade), read in full; only those it paid (SUCCESS)."""
        body = await self._call("taobao.trade.fullinfo.get", {"fields": "tid,orders", "tid": order_id})
        refund_ids = sorted({str(line["refund_id"]) for line in _listed(body["trade"], "orders", "order") if line.get("refund_id")})
        refunds = []
        for refund_id in refund_ids:
            refund = await self.get_refund(refund_id)
            if refund.status == RefundStatus.SUCCESS:
                refunds.append(Refund(refund_id=refund.refund_id, order_id=order_id, amount=refund.amount, kind=RefundKind.GOODS,
                                      reason=refund.reason, case_id=f"TOP-{refund.refund_id}", status="paid",
                                      created_at=refund.modified_at or refund.created_at))
        return refunds

    # --- the order feed (taobao.trades.sold.increment.get) ------------------------------------------

    async def list_shipped_orders(self, shipped_since: datetime | None = None, after: str | None = None, limit: int = 500,
                                  *, modified_since: datetime | None = None) -> OrderPage:
        """One page of shipped orders by the time the platform last changed them, oldest change first
        (``PlatformClient.list_shipped_orders``'s contract; pass the page's ``next`` back as ``after``).

        Walks ``[modified_since (else shipped_since), now]`` forward in windows of at most a day
        (TOP's limit), to the second; keeps the trades that have shipped (at or after
        ``shipped_since`` if given). A window holding more trades than the page has room for is
        halved until it fits (a single second is read whole, however many), so a page holds at most
        ``limit`` orders and ends on a window's end: ``next`` is the following window's start, and
        nothing is read twice or skipped across pages. An order changed during the walk comes again,
        with its new ``modified_at``, in a later window or page, as on the gateway's feed. The list
        gives no receiver's address (PLATFORMS.md §5: partial data; ``get_order`` has it)."""
        if shipped_since is None and modified_since is None:
            raise ValueError("give shipped_since or modified_since")
        for moment in (shipped_since, modified_since):
            if moment is not None and moment.tzinfo is None:
                raise ValueError(f"naive datetime {moment!r}: pass a timezone-aware time")
        if limit < 1:
            raise ValueError(f"limit {limit}: at least 1")
        start = _feed_position(after) if after else _whole_second(modified_since or shipped_since)
        stop = _whole_second(self._clock())
        shipped_floor = _whole_second(shipped_since) if shipped_since is not None else None
        orders: dict[str, Order] = {}
        while start <= stop:
            end = min(start + FEED_WINDOW - SECOND, stop)
            room = limit - len(orders)
            probe = await self._feed_page(start, end, 1)
            total = int(probe.get("total_results") or 0)
            while total > room and end > start:
                if orders:  # the next window is the next page's
                    return OrderPage(orders=_oldest_change_first(orders), next=_feed_cursor(start))
                end = start + timedelta(seconds=int((end - start).total_seconds()) // 2)
                probe = await self._feed_page(start, end, 1)
                total = int(probe.get("total_results") or 0)
            for trade in await self._feed_window(start, end, probe, total):
                if not _shipped_trade(trade):
                    continue
                order = _order(trade, "taobao.trades.sold.increment.get")
                if shipped_floor is not None and (order.shipped_at is None or order.shipped_at < shipped_floor):
                    continue
                known = orders.get(order.order_id)
                if known is None or (order.modified_at or stop) >= (known.modified_at or stop):
                    orders[order.order_id] = order  # changed during the walk: its latest change
            start = end + SECOND
            if len(orders) >= limit:
                break
        return OrderPage(orders=_oldest_change_first(orders), next=_feed_cursor(start) if start <= stop else None)

    async def _feed_page(self, start: datetime, end: datetime, page_no: int) -> dict[str, Any]:
        params = {"fields": TRADE_FIELDS, "start_modified": start, "end_modified": end, "page_no": page_no,
                  "page_size": self.feed_page_size, "use_has_next": False}
        return await self._call("taobao.trades.sold.increment.get", params)

    async def _feed_window(self, start: datetime, end: datetime, probe: Mapping[str, Any], total: int) -> list[dict[str, Any]]:
        """Every trade changed in ``[start, end]``: ``probe`` (page 1) is all of them when one page holds them.

        Why backwards. TOP lists a window newest change first. A trade changed while the window is
        being paged takes a new ``modified``, later than the window's end when the window lies in
        the past: it leaves the window, and every trade older than it moves up one place. Paging
        forwards (page 1, 2, … with ``use_has_next``), the trade that moves up from the unread page
        onto the page just read is never seen (TOP's 漏单, PLATFORMS.md §5). Paging from the last
        page back to page 1 (``use_has_next=false``, for ``total_results``: the last page's number),
        the trades that move up move onto pages not yet read: one may be read twice (kept once, by
        tid), none is skipped. A change cannot put a trade into a window that has ended.

        The window that ends at this second can still gain a trade changed in it; one gained at
        the top pushes the bottom of an unread page onto a read one. So a window whose
        ``total_results`` moved, or where a tid came back with another ``modified``, while it was
        paged, is paged again (the union is kept) until a pass sees it still, ``FEED_PASSES`` times
        at most; what then escapes was changed within the last seconds, which the tracker reads
        again at its next sync (its overlap)."""
        if total <= self.feed_page_size:
            return _listed(probe, "trades", "trade")  # one call: one consistent answer
        trades: dict[str, dict[str, Any]] = {}
        for _ in range(FEED_PASSES):
            totals, moved, modified = {total}, False, {}
            for page_no in range(-(-total // self.feed_page_size), 0, -1):
                body = await self._feed_page(start, end, page_no)
                totals.add(total := int(body.get("total_results") or 0))
                for trade in _listed(body, "trades", "trade"):
                    tid, when = str(trade["tid"]), str(trade.get("modified") or "")
                    moved = moved or modified.setdefault(tid, when) != when
                    if tid not in trades or when >= str(trades[tid].get("modified") or ""):  # TOP's times sort as text
                        trades[tid] = trade
            if len(totals) == 1 and not moved:
                break
        return list(trades.values())

    # --- refunds ----------------------------------------------------------------------------------

    async def refunds_changed(self, modified_from: datetime, modified_to: datetime, *, page: int = 1, page_size: int = 40,
                              status: str | None = None) -> RefundPage:
        """One page of the refunds changed in ``[modified_from, modified_to]`` (taobao.refunds.receive.get,
        paged by ``has_next``); these carry no version (read each with ``get_refund`` before deciding)."""
        params = {"fields": REFUND_LIST_FIELDS, "start_modified": modified_from, "end_modified": modified_to,
                  "page_no": page, "page_size": page_size, "use_has_next": True, "status": status}
        body = await self._call("taobao.refunds.receive.get", params)
        refunds = [_refund(item) for item in _listed(body, "refunds", "refund")]
        return RefundPage(refunds=refunds, has_next=bool(body.get("has_next")), total=body.get("total_results"))

    async def get_refund(self, refund_id: str) -> RefundApplication:
        """The refund in full, with the ``version`` to echo and the platform's ``deadline`` (taobao.refund.get)."""
        body = await self._call("taobao.refund.get", {"fields": REFUND_FIELDS, "refund_id": refund_id})
        return _refund(body["refund"])

    async def agree_return(self, refund_id: str, address: ReturnAddress, *, version: int, phase: str | None,
                           remark: str = "同意退货", seller_address_id: int | None = None,
                           buyer_pays_postage: bool | None = None) -> None:
        """Agree that the buyer sends the goods back to ``address`` (taobao.rp.returngoods.agree)."""
        params = {"refund_id": refund_id, "refund_version": version, "refund_phase": phase, "remark": remark,
                  "name": address.name, "address": address.address, "post": address.postcode, "tel": address.phone,
                  "mobile": address.phone, "seller_address_id": seller_address_id,
                  "post_fee_bear_role": None if buyer_pays_postage is None else int(buyer_pays_postage)}
        body = await self._call("taobao.rp.returngoods.agree", params)
        _succeeded("taobao.rp.returngoods.agree", body, "is_success")

    async def agree_refund(self, refund_id: str, amount: Decimal, *, version: int, phase: str | None = None,
                           sms_code: str | None = None) -> RefundAgreement:
        """Agree to refund ``amount`` (the buyer's ``refund_fee``), which the platform then pays
        (taobao.rp.refunds.agree). ``VerificationCodeRequired``: repeat with the seller's ``sms_code``."""
        refund = RefundToAgree(refund_id=refund_id, amount=amount, version=version, phase=phase)
        agreement = await self.agree_refunds([refund], sms_code=sms_code)
        succeeded, message = agreement.results.get(refund_id, (False, agreement.message))
        if not succeeded:
            raise TopRejected("taobao.rp.refunds.agree", None, message or "the platform did not agree the refund",
                              agreement.msg_code)
        return agreement

    async def agree_refunds(self, refunds: Sequence[RefundToAgree], sms_code: str | None = None) -> RefundAgreement:
        """Agree several refunds in one call (at most 20); the answer says which went through."""
        if not 1 <= len(refunds) <= 20:
            raise ValueError(f"agree 1 to 20 refunds per call, not {len(refunds)}")
        params = {"refund_infos": ",".join(refund.info for refund in refunds), "code": sms_code}
        body = await self._call("taobao.rp.refunds.agree", params)
        results = {str(item["refund_id"]): (bool(item.get("succ")), str(item.get("message", "")))
                   for item in _listed(body, "results", "refund_mapping_result")}
        return RefundAgreement(msg_code=body.get("msg_code"), message=str(body.get("message", "")), results=results)

    async def refusal_reasons(self, refund_id: str, phase: str | None) -> list[RefusalReason]:
        """The reasons the platform lets the seller give for refusing this refund (taobao.refund.refusereason.get)."""
        params = {"refund_id": refund_id, "refund_phase": phase, "fields": REASON_FIELDS}
        body = await self._call("taobao.refund.refusereason.get", params)
        return [RefusalReason(reason_id=int(item["reason_id"]), text=item.get("reason_text", ""), tips=item.get("reason_tips"))
                for item in _listed(body, "reasons", "reason")]

    async def refuse_refund(self, refund_id: str, message: str, *, version: int, phase: str | None,
                            reason_id: int | None = None, proof: bytes | None = None, proof_name: str = "proof.jpg") -> None:
        """Refuse the buyer's refund with ``message`` (2–200 characters), a reason from ``refusal_reasons``
        and a picture as proof (Tmall requires it) (taobao.refund.refuse)."""
        params = {"refund_id": refund_id, "refuse_message": message, "refund_version": version, "refund_phase": phase,
                  "refuse_reason_id": reason_id}
        files = {"refuse_proof": (proof_name, proof)} if proof is not None else None
        body = await self._call("taobao.refund.refuse", params, files)
        _succeeded("taobao.refund.refuse", body, "is_success")

    async def refuse_return(self, refund_id: str, *, version: int, phase: str | None, proof: bytes,
                            proof_name: str = "proof.jpg", reason_id: int | None = None) -> None:
        """Refuse the returned goods (after they arrived), with a picture as proof (taobao.rp.returngoods.refuse)."""
        params = {"refund_id": refund_id, "refund_version": version, "refund_phase": phase, "refuse_reason_id": reason_id}
        body = await self._call("taobao.rp.returngoods.refuse", params, {"refuse_proof": (proof_name, proof)})
        _succeeded("taobao.rp.returngoods.refuse", body, "result")

    async def confirm_inspection(self, refund_id: str, *, version: int, phase: str | None, operator: str, message: str,
                                 passed: bool = True) -> None:
        """Record the warehouse's inspection of the returned goods: ``passed`` approves the refund for
        paying, false withholds it (taobao.rp.refund.review). The refund's status does not change."""
        params = {"refund_id": refund_id, "refund_version": version, "refund_phase": phase, "operator": operator,
                  "message": message, "result": passed}
        body = await self._call("taobao.rp.refund.review", params)
        _succeeded("taobao.rp.refund.review", body, "is_success")

    async def leave_refund_message(self, refund_id: str, content: str, image: bytes | None = None,
                                   image_name: str = "image.jpg") -> RefundMessage:
        """Leave a message (≤ 400 bytes) and optionally a picture on the refund (taobao.refund.message.add)."""
        files = {"image": (image_name, image)} if image is not None else None
        body = await self._call("taobao.refund.message.add", {"refund_id": refund_id, "content": content}, files)
        message = body.get("refund_message") or {}
        return RefundMessage(message_id=str(message.get("id", "")), created_at=parse_top_time(message.get("created")))

    # --- shipments and reviews -------------------------------------------------------------------

    async def change_waybill(self, order_id: str, carrier: str, waybill: str, sub_order_ids: Sequence[str] = ()) -> None:
        """Put the parcel's carrier (our Kuaidi100 code) and waybill on a shipped order
        (taobao.logistics.consign.resend): after re-shipping, the order shows the new parcel. TOP
        changes the waybill only; the goods themselves are shipped by the warehouse."""
        if carrier not in TOP_CARRIERS:
            raise ValueError(f"carrier {carrier!r} has no TOP company code here; known: {', '.join(sorted(TOP_CARRIERS))}")
        params = {"tid": order_id, "out_sid": waybill, "company_code": TOP_CARRIERS[carrier][0],
                  "sub_tid": ",".join(sub_order_ids), "is_split": 1 if sub_order_ids else None}
        body = await self._call("taobao.logistics.consign.resend", params)
        _succeeded("taobao.logistics.consign.resend", body.get("shipping") or {}, "is_success")

    async def review_page(self, *, since: datetime | None = None, until: datetime | None = None, page: int = 1,
                          page_size: int = 40, rating: Rating | None = None, order_id: str | None = None) -> ReviewPage:
        """One page of the buyers' reviews of the shop (taobao.traderates.get, rate_type=get, role=buyer).
        Each review's ``review_id`` is its sub-order (oid), which ``explain_review`` takes."""
        result = {value: key for key, value in RATING.items()}[Rating(rating)] if rating else None
        params = {"fields": RATE_FIELDS, "rate_type": "get", "role": "buyer", "start_date": since, "end_date": until,
                  "page_no": page, "page_size": page_size, "use_has_next": True, "result": result, "tid": order_id}
        body = await self._call("taobao.traderates.get", params)
        reviews = [_review(item) for item in _listed(body, "trade_rates", "trade_rate")]
        return ReviewPage(reviews=reviews, has_next=bool(body.get("has_next")), total=body.get("total_results"))

    async def list_reviews(self, since: datetime | None = None) -> list[Review]:
        """Every buyer's review created at or after ``since`` (default: TOP's 180 days), oldest first:
        the pages of ``review_page`` read to the end."""
        reviews: list[Review] = []
        page = 1
        while True:
            found = await self.review_page(since=since, page=page, page_size=100)
            reviews += found.reviews
            if not found.has_next or page >= 200:  # TOP serves no page past 200
                break
            page += 1
        return sorted({review.review_id: review for review in reviews}.values(), key=lambda review: review.created_at)

    async def explain_review(self, review_id: str, reply: str) -> None:
        """The shop's public explanation under a review (≤ 500 characters) (taobao.traderate.explain.add)."""
        body = await self._call("taobao.traderate.explain.add", {"oid": review_id, "reply": reply})
        _succeeded("taobao.traderate.explain.add", body, "is_success")

    # --- what the shop platform interface has and TOP does not ------------------------------------

    async def refund(self, order_id: str, amount: Decimal, reason: str, case_id: str, idempotency_key: str,
                     kind: RefundKind = RefundKind.GOODS) -> Refund:
        raise NotOffered("refund", "卖家不能主动发起退款：请在千牛以打款或小额补偿处理 a seller cannot start a refund on TOP: pay it "
                                   "in Qianniu (小额打款), or let the buyer apply for it")

    async def reship(self, order_id: str, items: Sequence[Any], reason: str, case_id: str, idempotency_key: str,
                     carrier: str | None = None) -> Reshipment:
        raise NotOffered("reship", "TOP 不发货：请由仓库补发，再以 taobao.logistics.consign.resend 改运单 TOP ships nothing: the "
                                   "warehouse re-ships, then change_waybill puts the new parcel on the order")

    async def put_parcel_on_order(self, order_id: str, carrier: str, waybill: str) -> None:
        """A parcel shipped by hand goes on the order: the order's waybill becomes it (consign.resend)."""
        await self.change_waybill(order_id, carrier, waybill)

    async def get_stock(self, sku: str) -> StockLevel:
        raise NotOffered("stock", "库存在仓库系统中 the stock is in the warehouse's system, not on TOP")

    async def charge(self, order_id: str, amount: Decimal, reason: str, case_id: str, idempotency_key: str) -> Charge:
        raise NotOffered("charge", "TOP 不能向买家收款：请在千牛发起补差价链接 TOP cannot charge a buyer: send a price-difference "
                                   "link in Qianniu")

    async def issue_coupon(self, order_id: str, amount: Decimal, reason: str, case_id: str, idempotency_key: str,
                           valid_days: int = 90) -> Coupon:
        raise NotOffered("coupon", "优惠券请在千牛营销中心发放 issue the coupon in Qianniu's marketing centre")

    async def report_review(self, review_id: str, reason: str, evidence: str, case_id: str, idempotency_key: str) -> ReviewReport:
        raise NotOffered("report review", "恶意评价请在千牛评价管理中投诉 report a malicious review in Qianniu (评价管理 → 投诉); "
                                          "explain_review replies to it in public")

    # --- plumbing ------------------------------------------------------------------------------

    def signed(self, method: str, params: Mapping[str, str]) -> dict[str, str]:
        """The call's form: the envelope, ``params`` and the signature over both."""
        form = {"method": method, "app_key": self.app_key, "session": self._session, "timestamp": top_time(self._clock()),
                "v": "2.0", "format": "json", "sign_method": "md5", **params}
        form = {name: value for name, value in form.items() if value != ""}
        return {**form, "sign": top_sign(form, self._secret)}

    async def _call(self, method: str, params: Mapping[str, Any],
                    files: Mapping[str, tuple[str, bytes]] | None = None) -> dict[str, Any]:
        """Send ``method`` with ``params`` (None left out) and ``files`` (multipart, not signed); the
        answer under ``<method>_response``, or the typed error."""
        wire = {name: _wire(value) for name, value in params.items() if value is not None}
        busy_answers: list[TopError] = []

        def send() -> Awaitable[httpx.Response]:
            form = self.signed(method, wire)  # signed afresh each try: the timestamp moves on
            return self._http.post(self.url, data=form, files=files) if files else self._http.post(self.url, data=form)

        def transient_answer(response: httpx.Response) -> str | None:
            error = _error_response(response)
            typed = top_error(method, error, wire) if error is not None else None
            if not isinstance(typed, TopUnavailable):
                return None
            busy_answers.append(typed)
            return typed.detail

        def give_up(status: int | None, detail: str) -> Exception:
            if status == 200 and busy_answers:
                last = busy_answers[-1]
                return TopUnavailable(method, last.code, last.msg, last.sub_code, last.sub_msg, last.request_id,
                                      hint=f"after {self.retries + 1} attempts")
            return PlatformUnavailable(method, status, detail)

        response = await with_retries(send, self.retries, self._backoff, give_up, transient_answer)
        if 400 <= response.status_code < 500:
            raise PlatformRejected(method, response.status_code, detail_of(response))
        if not response.is_success:
            raise PlatformError(method, response.status_code, detail_of(response))
        try:
            body = json_body(response)
        except ValueError:
            raise PlatformError(method, response.status_code, f"not JSON: {response.text[:200]}") from None
        error = body.get("error_response") if isinstance(body, dict) else None
        if isinstance(error, dict):
            raise top_error(method, error, wire)
        key = response_key(method)
        if not isinstance(body, dict) or not isinstance(body.get(key), dict):
            raise PlatformError(method, response.status_code, f"no {key} in the answer: {response.text[:200]}")
        return body[key]


def _wire(value: Any) -> str:
    """A parameter as TOP writes it: booleans as true/false, times in Beijing time, money in yuan."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return top_time(value)
    if isinstance(value, Decimal):
        return money_text(value)
    if isinstance(value, float):
        raise TypeError(f"{value!r}: money and numbers go to TOP as Decimal or int, never float")
    return str(value)


def _succeeded(method: str, body: Mapping[str, Any], flag: str) -> None:
    if body.get(flag) is not True:
        raise TopRejected(method, None, f"the platform answered {flag}={body.get(flag)!r}")


def _listed(body: Mapping[str, Any], wrapper: str, element: str) -> list[dict[str, Any]]:
    """A list as TOP wraps it (§1.4): ``{"refunds": {"refund": [...]}}``."""
    return list((body.get(wrapper) or {}).get(element) or [])


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _whole_second(moment: datetime) -> datetime:
    """A moment in TOP's time to the second (TOP's times have no fraction)."""
    return moment.astimezone(TOP_TZ).replace(microsecond=0)


def _feed_cursor(start: datetime) -> str:
    return FEED_CURSOR + top_time(start)


def _feed_position(after: str) -> datetime:
    try:
        if not after.startswith(FEED_CURSOR):
            raise ValueError(after)
        return parse_top_time(after.removeprefix(FEED_CURSOR))
    except ValueError:
        raise ValueError(f"after: not a cursor of this feed: {after!r}") from None


def _shipped_trade(trade: Mapping[str, Any]) -> bool:
    status = trade.get("status")
    if status in SHIPPED_TRADE_STATUSES:
        return True
    consigned = trade.get("consign_time") or any(line.get("consign_time") for line in _listed(trade, "orders", "order"))
    return status == "TRADE_CLOSED" and bool(consigned)


def _oldest_change_first(orders: Mapping[str, Order]) -> list[Order]:
    return sorted(orders.values(), key=lambda order: (order.modified_at is None, order.modified_at, order.order_id))


def _order(trade: Mapping[str, Any], method: str = "taobao.trade.fullinfo.get") -> Order:
    lines = _listed(trade, "orders", "order")
    status = TRADE_STATUS.get(trade.get("status", ""))
    if status is None:
        raise PlatformError(method, 200, f"trade {trade.get('tid')}: unknown status {trade.get('status')!r}")
    address = " ".join(str(trade[part]) for part in ("receiver_state", "receiver_city", "receiver_district", "receiver_town",
                                                     "receiver_address") if trade.get(part))
    customer = Customer(customer_id=str(trade.get("buyer_open_uid") or trade.get("buyer_nick") or ""),
                        name=trade.get("receiver_name") or trade.get("buyer_nick") or "",
                        phone=trade.get("receiver_mobile") or trade.get("receiver_phone") or "", address=address)
    items = [OrderItem(sku=str(line.get("outer_sku_id") or line.get("sku_id") or line.get("outer_iid") or line.get("num_iid")),
                       name=line.get("title", ""), category=str(line.get("cid") or ""), quantity=int(line.get("num", 1)),
                       unit_price=line["price"]) for line in lines]
    shipped = next((line for line in lines if line.get("invoice_no")), {})
    company = shipped.get("logistics_company")
    post_fee = Decimal(trade.get("post_fee") or "0")
    consigned = parse_top_time(trade.get("consign_time") or shipped.get("consign_time"))
    return Order(
        order_id=str(trade["tid"]), customer=customer, items=items, paid_amount=trade.get("payment") or "0.00",
        postage_paid=post_fee, free_shipping=post_fee == 0, status=status, shipped_at=consigned,
        transaction_success_at=parse_top_time(trade.get("end_time")) if trade.get("status") == "TRADE_FINISHED" else None,
        carrier=CARRIER_BY_NAME.get(company, company) if company else None, waybill=_text(shipped.get("invoice_no")),
        warehouse_left=consigned is not None, modified_at=parse_top_time(trade.get("modified")),
    )


def _refund(refund: Mapping[str, Any]) -> RefundApplication:
    timeout = refund.get("refund_remind_timeout") or {}
    return RefundApplication(
        refund_id=str(refund["refund_id"]), order_id=str(refund["tid"]), sub_order_id=_text(refund.get("oid")),
        status=refund["status"], goods_returned=bool(refund.get("has_good_return")), goods_status=refund.get("good_status"),
        phase=refund.get("refund_phase") or None,
        version=int(refund["refund_version"]) if refund.get("refund_version") is not None else None,
        amount=refund["refund_fee"], order_total=refund.get("total_fee"), reason=refund.get("reason") or "",
        description=refund.get("desc") or "", buyer=_text(refund.get("buyer_nick")), buyer_id=_text(refund.get("buyer_open_uid")),
        title=refund.get("title"), return_carrier=_text(refund.get("company_name")), return_waybill=_text(refund.get("sid")),
        return_address=_text(refund.get("address")), dispute_type=refund.get("dispute_type"),
        created_at=parse_top_time(refund.get("created")), modified_at=parse_top_time(refund.get("modified")),
        deadline=parse_top_time(timeout.get("timeout")) if timeout.get("exist_timeout") else None,
    )


def _review(rate: Mapping[str, Any]) -> Review:
    return Review(review_id=str(rate["oid"]), order_id=str(rate["tid"]),
                  customer_id=str(rate.get("ouid") or rate.get("nick") or ""), rating=RATING[rate["result"]],
                  text=rate.get("content") or "", created_at=parse_top_time(rate["created"]))
