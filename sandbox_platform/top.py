"""The sandbox speaks TOP too: Taobao/Tmall's ``/router/rest`` (the open platform's protocol) over
the sandbox's own orders and reviews, with the buyers' refunds the platform keeps.

* ``POST /router/rest``: the parameters as a form (urlencoded, or multipart when a picture comes
  along) and/or in the query string, signed as §1.3 says (md5 or hmac) with the sandbox's app key
  and secret, and the seller's session key on every call (all of these are seller APIs). TOP's own
  codes (§6) answer what is wrong, in an ``error_response`` with HTTP 200: a missing or wrong app
  key (28/29), signature (24/25) or session (26/27), a timestamp missing, malformed or more than
  10 minutes off (30/31), a missing or invalid argument (40/41), format other than json (23).
* The refund state machine of §2.2, driven by the seller's calls and the buyer's levers; the
  ``refund_version`` (a millisecond timestamp) moves on with every change of state or of the
  buyer's return parcel, and a decision made on an older version is refused.
* ``/sandbox/top/…`` (``X-Api-Key``): the buyer applies for a refund (with or without the goods),
  changes the amount asked, fills in the return waybill, cancels; the platform's own timeout action; knobs (an SMS code above
  an amount, App Call Limited for the next calls); the state, with every call counted per method.

What PLATFORMS.md leaves open, the sandbox decides, here and nowhere else [unverified]:

* a business refusal is code 15 "Remote service error" with a sub code of its own:
  ``isv.refund-version-expired`` (stale ``refund_version``), ``isv.refund-status-not-allowed``,
  ``isv.refund-amount-invalid``, ``isv.refund-refuse-not-allowed`` (nothing shipped yet),
  ``isv.refund-sms-code-required`` / ``isv.refund-sms-code-invalid``, ``isv.refund-not-exist``,
  ``isv.trade-not-exist``, ``isv.traderate-not-exist``, ``isv.traderate-explain-expired``,
  ``isv.logistics-not-consigned``;
* every decision must echo ``refund_version`` and ``refund_phase`` (Tmall's rule, the strictest);
  the address (name, address, post, tel or mobile) is required to agree a return, a proof picture
  to refuse returned goods; ``refund.message.add``'s picture is optional;
* an agreement (``rp.refunds.agree``) is all or nothing; above the ``sms_code_above`` knob it is
  refused with ``isv.refund-sms-code-required`` and a 6-digit code goes to the seller's inbox
  (``GET /sandbox/messages/seller-sms``), good once for the same refunds;
* the platform acts after 5 days without the seller's answer, 7 without the buyer's parcel or
  after a refusal, and 10 without the seller's confirmation of the returned goods; the
  ``/timeout`` lever does it now;
* ``taobao.trades.sold.increment.get`` reads the orders by the time the platform last stamped them
  (the gateway feed's ``modified_at``), to the second, ``start_modified`` and ``end_modified`` both
  included; a window over one day is code 41; the list leaves out the receiver's address;
* a trade's tid is its order id's digits (``O20261120-001`` → 20261120001); a sub-order's oid is
  the tid for a single-item order, else tid × 100 + line number.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from email import policy
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from aftersales.integrations.platform import Money, Order, OrderStatus, Rating, Refund, RefundKind, RefundStatus, Review
from sandbox_platform.parcels import CARRIER_NAMES, SHANGHAI

if TYPE_CHECKING:
    from sandbox_platform.app import SandboxShop

TOP_TIME = "%Y-%m-%d %H:%M:%S"
MAX_SKEW = timedelta(minutes=10)
SELLER_NICK = "售后演示旗舰店"
FIRST_REFUND_ID = 160_000_000_000  # refund ids are numbers written as text

# TOP's platform-level codes (§6) and their msg
TOP_MESSAGES = {
    7: "App Call Limited", 15: "Remote service error", 21: "Missing Method", 22: "Invalid Method",
    23: "Invalid Format", 24: "Missing Signature", 25: "Invalid Signature", 26: "Missing Session",
    27: "Invalid Session", 28: "Missing App Key", 29: "Invalid App Key", 30: "Missing Timestamp",
    31: "Invalid Timestamp", 32: "Missing Version", 33: "Invalid Version", 34: "Unsupported Version",
    40: "Missing Required Arguments", 41: "Invalid Arguments",
}
# Kuaidi100 codes (the sandbox's orders) ↔ TOP logistics company codes
TOP_COMPANY_CODES = {"zhongtong": "ZTO", "yuantong": "YTO", "shunfeng": "SF", "yunda": "YUNDA", "shentong": "STO",
                     "jd": "JD", "ems": "EMS"}
CARRIER_BY_TOP_CODE = {code: carrier for carrier, code in TOP_COMPANY_CODES.items()}

OPEN = {RefundStatus.WAIT_SELLER_AGREE, RefundStatus.WAIT_BUYER_RETURN_GOODS, RefundStatus.WAIT_SELLER_CONFIRM_GOODS}
FINISHED = {RefundStatus.SUCCESS, RefundStatus.CLOSED}
LISTED_STATUSES = {*RefundStatus, "WAIT_BUYER_CONFIRM_EXCHANGE_SELLER_SEND_GOODS", "EXCHANGE_TRANSFORM_TO_REFUND",
                   "WAIT_SELLER_CONSIGN_GOODS"}
# the platform's deadlines: it acts by itself this many days after a refund enters the state
PLATFORM_DAYS = {RefundStatus.WAIT_SELLER_AGREE: 5, RefundStatus.WAIT_BUYER_RETURN_GOODS: 7,
                 RefundStatus.WAIT_SELLER_CONFIRM_GOODS: 10, RefundStatus.SELLER_REFUSE_BUYER: 7}
REMIND_TYPES = {RefundStatus.WAIT_SELLER_AGREE: 1, RefundStatus.WAIT_BUYER_RETURN_GOODS: 2,
                RefundStatus.WAIT_SELLER_CONFIRM_GOODS: 3, RefundStatus.SELLER_REFUSE_BUYER: 4}  # no doc lists them
# what taobao.refunds.receive.get gives (§2.1): no version, no deadline
LIST_FIELDS = {"refund_id", "tid", "title", "buyer_nick", "seller_nick", "total_fee", "status", "created", "refund_fee",
               "oid", "good_status", "company_name", "sid", "payment", "reason", "desc", "has_good_return", "modified",
               "order_status", "refund_phase", "dispute_type", "end_time"}
# a trade's status (§4): the one value taobao.trades.sold.increment.get's ``status`` filters on
TRADE_STATUSES = {"TRADE_NO_CREATE_PAY", "WAIT_BUYER_PAY", "SELLER_CONSIGNED_PART", "WAIT_SELLER_SEND_GOODS",
                  "WAIT_BUYER_CONFIRM_GOODS", "TRADE_BUYER_SIGNED", "TRADE_FINISHED", "TRADE_CLOSED", "TRADE_CLOSED_BY_TAOBAO",
                  "PAY_PENDING", "WAIT_PRE_AUTH_CONFIRM", "PAID_FORBID_CONSIGN"}
MAX_INCREMENT_WINDOW = timedelta(days=1)  # end_modified − start_modified (§5)
# taobao.trades.sold.increment.get "carries only partial data" (§5); which fields it leaves out no
# source says: the sandbox leaves out the receiver's address, given by taobao.trade.fullinfo.get [unverified]
TRADE_LIST_OMITS = {"receiver_address"}
# the reasons the seller may give, by kind of refund: (reason_id, text, tips)
REFUSE_REASONS = {
    False: [(101, "商品已发出，买家已签收或正在配送 / the goods were shipped and delivered or on their way",
             "请上传发货底单或物流截图 / attach the shipping receipt or tracking"),
            (102, "买家申请理由与事实不符 / the buyer's reason does not match the facts",
             "请上传聊天记录等凭证 / attach the chat record")],
    True: [(201, "退回的商品影响二次销售 / the returned goods cannot be sold again",
            "请上传商品照片 / attach photos of the goods"),
           (202, "买家未退货或退回的商品与订单不符 / nothing or something else came back",
            "请上传收到包裹的照片 / attach photos of the parcel received")],
}


def top_now(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime(TOP_TIME)


def milliseconds(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def tid_of(order_id: str) -> int | None:
    """A trade's tid on TOP: the digits of the sandbox's order id."""
    digits = "".join(char for char in order_id if char.isdigit())
    return int(digits) if digits else None


def oid_of(tid: int, line: int, lines: int) -> int:
    return tid if lines == 1 else tid * 100 + line + 1


class TopFault(Exception):
    """A TOP ``error_response``: raised anywhere in a call, answered by ``TopDesk.answer``."""

    def __init__(self, code: int, sub_code: str | None = None, sub_msg: str | None = None):
        self.code, self.sub_code, self.sub_msg = code, sub_code, sub_msg
        super().__init__(f"{code} {sub_code}: {sub_msg}")

    def answer(self, request_id: str) -> dict[str, Any]:
        error = {"code": self.code, "msg": TOP_MESSAGES[self.code], "sub_code": self.sub_code, "sub_msg": self.sub_msg,
                 "request_id": request_id}
        return {"error_response": {name: value for name, value in error.items() if value is not None}}


def refused(sub_code: str, sub_msg: str) -> TopFault:
    return TopFault(15, sub_code, sub_msg)


def invalid(name: str, why: str) -> TopFault:
    return TopFault(41, f"isv.invalid-parameter:{name}", why)


# --- the platform's refunds --------------------------------------------------------------------


@dataclass
class TopRefund:
    refund_id: str
    order_id: str  # the sandbox's order
    tid: int
    oid: int
    title: str
    price: Decimal
    num: int
    has_good_return: bool
    refund_fee: Decimal
    total_fee: Decimal
    reason: str
    desc: str
    phase: str  # onsale before the trade finished, aftersale after
    buyer_nick: str
    buyer_open_uid: str
    good_status: str
    created: datetime
    modified: datetime
    version: int
    status: str = RefundStatus.WAIT_SELLER_AGREE
    timeout: datetime | None = None
    company_name: str | None = None  # the buyer's return parcel
    sid: str | None = None
    good_return_time: datetime | None = None
    address: str | None = None  # where the seller (or the platform) told the buyer to send the goods
    refuse_message: str | None = None
    refuse_reason_id: int | None = None
    review: dict[str, Any] | None = None  # rp.refund.review: operator, message, result
    messages: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, str]] = field(default_factory=list)  # who moved it when (the sandbox's, not TOP's)

    def as_top(self, order_status: str) -> dict[str, Any]:
        """The refund as TOP writes it (§2.1): money in yuan text, times in Beijing time."""
        record = {
            "refund_id": self.refund_id, "tid": self.tid, "oid": self.oid, "status": str(self.status),
            "order_status": order_status, "good_status": self.good_status, "has_good_return": self.has_good_return,
            "refund_phase": self.phase, "refund_version": self.version, "refund_fee": str(self.refund_fee),
            "total_fee": str(self.total_fee), "payment": str(self.total_fee - self.refund_fee), "title": self.title,
            "num": self.num, "price": str(self.price), "reason": self.reason, "desc": self.desc,
            "created": top_now(self.created), "modified": top_now(self.modified),
            "good_return_time": top_now(self.good_return_time) if self.good_return_time else None,
            "company_name": self.company_name, "sid": self.sid, "address": self.address,
            "refund_remind_timeout": {"timeout": top_now(self.timeout) if self.timeout else None,
                                      "exist_timeout": self.timeout is not None,
                                      "remind_type": REMIND_TYPES.get(self.status, 0)},
            "dispute_type": "REFUND_AND_RETURN" if self.has_good_return else "REFUND",
            "buyer_nick": self.buyer_nick, "buyer_open_uid": self.buyer_open_uid, "seller_nick": SELLER_NICK,
        }
        return {name: value for name, value in record.items() if value is not None}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TopKnobs(_Body):
    # an agreement above this many yuan needs the seller's SMS code (None: never)
    sms_code_above: Money | None = None
    # the next this many calls are answered App Call Limited (code 7)
    call_limited: int = Field(default=0, ge=0)


class BuyerRefund(_Body):
    """The buyer applies for a refund of a (sub-)order, with or without sending the goods back."""

    tid: int
    oid: int | None = None  # default: the order's only (or first) line
    refund_fee: Money
    has_good_return: bool
    reason: str = Field(min_length=1)
    desc: str = ""


class RefundAmendment(_Body):
    """The buyer changes the amount asked before the seller decides (修改退款申请)."""

    refund_fee: Money


class ReturnWaybill(_Body):
    company_name: str = Field(min_length=1)
    sid: str = Field(min_length=1)


@dataclass
class TopState:
    """What the platform keeps beside the sandbox's orders; made anew by the sandbox's reset."""

    refunds: dict[str, TopRefund] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)  # per method, every call however it ended
    sms_codes: dict[str, str] = field(default_factory=dict)  # refund ids of an agreement → the code sent
    replies: dict[int, str] = field(default_factory=dict)  # oid → the shop's explanation under the review
    knobs: TopKnobs = field(default_factory=TopKnobs)
    serial: int = 0


# --- the gateway -------------------------------------------------------------------------------


class TopDesk:
    """The TOP gateway over a ``SandboxShop`` (its lock, orders, reviews, refunds and ``top`` state)."""

    def __init__(self, shop: "SandboxShop", *, app_key: str, app_secret: str, session_key: str, return_address: str):
        self.shop = shop
        self.app_key, self.app_secret, self.session_key = app_key, app_secret, session_key
        self.return_address = return_address  # the one the platform gives when it agrees by itself
        self.calls: dict[str, Callable[[dict[str, str], dict[str, bytes]], dict[str, Any]]] = {
            "taobao.trade.fullinfo.get": self.trade_fullinfo_get,
            "taobao.trades.sold.increment.get": self.trades_sold_increment_get,
            "taobao.refunds.receive.get": self.refunds_receive_get,
            "taobao.refund.get": self.refund_get,
            "taobao.rp.returngoods.agree": self.returngoods_agree,
            "taobao.rp.refunds.agree": self.refunds_agree,
            "taobao.refund.refusereason.get": self.refusereason_get,
            "taobao.refund.refuse": self.refund_refuse,
            "taobao.rp.returngoods.refuse": self.returngoods_refuse,
            "taobao.rp.refund.review": self.refund_review,
            "taobao.refund.message.add": self.message_add,
            "taobao.logistics.consign.resend": self.consign_resend,
            "taobao.traderates.get": self.traderates_get,
            "taobao.traderate.explain.add": self.explain_add,
        }

    @property
    def state(self) -> TopState:
        return self.shop.top

    def answer(self, params: dict[str, str], files: dict[str, bytes]) -> dict[str, Any]:
        """One call: the envelope checked, then the method; its answer or TOP's error."""
        method = params.get("method", "")
        request_id = secrets.token_hex(6)
        with self.shop.lock:
            self.state.calls[method] += 1
            try:
                self._check_envelope(params)
                if self.state.knobs.call_limited:
                    self.state.knobs.call_limited -= 1
                    raise TopFault(7, "accesscontrol.limited-by-app-access-count", "This ban will last for 1 more seconds")
                body = self.calls[method](params, files)
            except TopFault as fault:
                return fault.answer(request_id)
        return {method.removeprefix("taobao.").replace(".", "_") + "_response": {**body, "request_id": request_id}}

    def _check_envelope(self, params: dict[str, str]) -> None:
        if not params.get("method"):
            raise TopFault(21)
        if not params.get("app_key"):
            raise TopFault(28)
        if not hmac.compare_digest(params["app_key"].encode(), self.app_key.encode()):
            raise TopFault(29, "isv.appkey-not-exists", f"app_key {params['app_key']} 不存在 / unknown app key")
        self._check_timestamp(params.get("timestamp"))
        if not params.get("v"):
            raise TopFault(32)
        if params["v"] != "2.0":
            raise TopFault(33 if not re.fullmatch(r"\d+\.\d+", params["v"]) else 34, None, "v 应为 2.0 / v must be 2.0")
        if not params.get("sign"):
            raise TopFault(24)
        sign_method = params.get("sign_method", "md5")
        if sign_method not in ("md5", "hmac"):
            raise invalid("sign_method", "沙箱支持 md5 和 hmac / the sandbox checks md5 and hmac signatures")
        if not hmac.compare_digest(params["sign"].upper(), self._sign(params, sign_method)):
            raise TopFault(25, "isv.invalid-signature", "签名无效 / the signature does not match")
        if params.get("format", "xml") != "json":
            raise TopFault(23, None, "沙箱只返回 JSON，请传 format=json / the sandbox answers JSON only: send format=json")
        if params["method"] not in self.calls:
            raise TopFault(22, "isv.method-not-exist", f"沙箱没有接口 {params['method']} / no such API in the sandbox")
        if not params.get("session"):
            raise TopFault(26)
        if not hmac.compare_digest(params["session"].encode(), self.session_key.encode()):
            raise TopFault(27, "isv.session-invalid", "session 无效或已过期 / the session key is invalid or expired")

    def _check_timestamp(self, stamp: str | None) -> None:
        if not stamp:
            raise TopFault(30)
        try:  # PLATFORMS.md's format; epoch milliseconds as the Python SDK sends them
            sent = (datetime.fromtimestamp(int(stamp) / 1000, SHANGHAI) if stamp.isdigit()
                    else datetime.strptime(stamp, TOP_TIME).replace(tzinfo=SHANGHAI))
        except ValueError:
            raise TopFault(31, "isv.invalid-parameter:timestamp",
                           "时间格式应为 yyyy-MM-dd HH:mm:ss / expected yyyy-MM-dd HH:mm:ss") from None
        now = self.shop.now()
        if abs(now - sent) > MAX_SKEW:
            raise TopFault(31, "isv.timestamp-limit-error",
                           f"时间戳与平台时间 {top_now(now)} 相差超过 10 分钟 / more than 10 minutes off the platform's time {top_now(now)}")

    def _sign(self, params: dict[str, str], sign_method: str) -> str:
        text = "".join(f"{name}{value}" for name, value in sorted(params.items()) if name != "sign" and value != "")
        if sign_method == "hmac":
            return hmac.new(self.app_secret.encode(), text.encode(), hashlib.md5).hexdigest().upper()
        return hashlib.md5(f"{self.app_secret}{text}{self.app_secret}".encode()).hexdigest().upper()

    # --- reading parameters ----------------------------------------------------------------------

    @staticmethod
    def need(params: dict[str, str], name: str) -> str:
        if not params.get(name):
            raise TopFault(40, f"isv.missing-parameter:{name}", f"缺少必选参数 {name} / {name} is required")
        return params[name]

    @staticmethod
    def number(params: dict[str, str], name: str, default: int | None = None, low: int = 1,
               high: int | None = None) -> int | None:
        text = params.get(name)
        if not text:
            return default
        if not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
            raise invalid(name, f"{name} 应为 {low}–{high or '…'} 的整数 / {name} must be a whole number from {low}"
                                + (f" to {high}" if high else ""))
        return int(text)

    @staticmethod
    def moment(params: dict[str, str], name: str) -> datetime | None:
        if not params.get(name):
            return None
        try:
            return datetime.strptime(params[name], TOP_TIME).replace(tzinfo=SHANGHAI)
        except ValueError:
            raise invalid(name, f"{name} 格式应为 yyyy-MM-dd HH:mm:ss / expected yyyy-MM-dd HH:mm:ss") from None

    @staticmethod
    def boolean(params: dict[str, str], name: str, default: bool = False) -> bool:
        text = params.get(name)
        if not text:
            return default
        if text not in ("true", "false"):
            raise invalid(name, f"{name} 应为 true 或 false / {name} must be true or false")
        return text == "true"

    @staticmethod
    def pick(record: dict[str, Any], fields: str, allowed: set[str] | None = None) -> dict[str, Any]:
        wanted = {name.strip() for name in fields.split(",")}
        return {name: value for name, value in record.items() if name in wanted and (allowed is None or name in allowed)}

    # --- orders and the refunds on them ------------------------------------------------------------

    def order_of(self, tid: int | str) -> Order:
        if isinstance(tid, str) and not tid.isdigit():
            raise invalid("tid", "tid 应为数字 / tid is a number")
        order = next((o for o in self.shop.orders.values() if tid_of(o.order_id) == int(tid)), None)
        if order is None:
            raise refused("isv.trade-not-exist", f"交易 {tid} 不存在 / no trade {tid}")
        return order

    def refund_of(self, params: dict[str, str]) -> TopRefund:
        refund_id = self.need(params, "refund_id")
        if not refund_id.isdigit():
            raise invalid("refund_id", "refund_id 应为数字 / refund_id is a number")
        if refund_id not in self.state.refunds:
            raise refused("isv.refund-not-exist", f"退款单 {refund_id} 不存在 / no refund {refund_id}")
        return self.state.refunds[refund_id]

    def refund_json(self, refund: TopRefund) -> dict[str, Any]:
        return refund.as_top(trade_status(self.shop.orders[refund.order_id]))

    def check_version(self, refund: TopRefund, params: dict[str, str]) -> None:
        """The decision must be made on the refund as it is now: its version and phase echoed."""
        version, phase = self.need(params, "refund_version"), self.need(params, "refund_phase")
        if not version.isdigit():
            raise invalid("refund_version", "refund_version 应为数字 / refund_version is a number")
        if phase != refund.phase:
            raise invalid("refund_phase", f"该退款的 refund_phase 为 {refund.phase} / this refund's phase is {refund.phase}")
        if int(version) != refund.version:
            raise refused("isv.refund-version-expired",
                          f"退款版本号 {version} 已过期（当前 {refund.version}），请重新获取退款信息 / refund_version {version} "
                          f"is stale (now {refund.version}): read the refund again")

    @staticmethod
    def expect(refund: TopRefund, statuses: set[str], action: str) -> None:
        if refund.status not in statuses:
            raise refused("isv.refund-status-not-allowed",
                          f"退款单 {refund.refund_id} 状态为 {refund.status}，不能{action}")

    def move(self, refund: TopRefund, status: RefundStatus, by: str) -> None:
        """A change of state: modified, version (ms, always forward) and the platform's deadline with it."""
        now = self.shop.now()
        refund.status, refund.modified = status, now
        refund.version = max(milliseconds(now), refund.version + 1)
        days = PLATFORM_DAYS.get(status)
        refund.timeout = now + timedelta(days=days) if days else None
        refund.history.append({"at": now.isoformat(), "status": str(status), "by": by})
        if status == RefundStatus.SUCCESS:  # the platform pays the buyer: it shows among the sandbox's refunds
            self.shop.refunds.append(Refund(
                refund_id=f"RF{len(self.shop.refunds) + 1:08d}", order_id=refund.order_id, amount=refund.refund_fee,
                kind=RefundKind.GOODS, reason=refund.reason, case_id=f"TOP-{refund.refund_id}", status="paid",
                created_at=now))

    def refundable(self, order: Order) -> Decimal:
        """What the goods may still be refunded: paid, less every goods refund paid so far."""
        paid = sum((r.amount for r in self.shop.refunds if r.order_id == order.order_id and r.kind == RefundKind.GOODS),
                   Decimal("0.00"))
        return order.paid_amount - paid

    # --- the seller's calls (§3, §4) -------------------------------------------------------------

    def trade_fullinfo_get(self, params: dict[str, str], _files: dict[str, bytes]) -> dict[str, Any]:
        fields = self.need(params, "fields")
        order = self.order_of(self.need(params, "tid"))
        return {"trade": self.pick(self.trade_json(order), fields)}

    def trade_json(self, order: Order) -> dict[str, Any]:
        tid = tid_of(order.order_id)
        shipped = top_now(order.shipped_at) if order.shipped_at else None
        lines = []
        for number, item in enumerate(order.items):
            oid = oid_of(tid, number, len(order.items))
            refunds = [r for r in self.state.refunds.values() if r.oid == oid]
            latest = max(refunds, key=lambda r: r.created) if refunds else None
            lines.append({
                "oid": oid, "num_iid": zlib.crc32(item.sku.encode()), "outer_iid": item.sku, "outer_sku_id": item.sku,
                "title": item.name, "price": str(item.unit_price), "num": item.quantity,
                "total_fee": str(item.unit_price * item.quantity), "status": trade_status(order), "consign_time": shipped,
                "logistics_company": CARRIER_NAMES.get(order.carrier, order.carrier) if order.carrier else None,
                "invoice_no": order.waybill, "refund_status": str(latest.status) if latest else "NO_REFUND",
                "refund_id": latest.refund_id if latest else None,
            })
        customer = order.customer
        trade = {
            "tid": tid, "status": trade_status(order), "payment": str(order.paid_amount),
            "post_fee": str(order.postage_paid), "total_fee": str(sum(i.unit_price * i.quantity for i in order.items)),
            "consign_time": shipped, "modified": top_now(order.modified_at) if order.modified_at else None,
            "end_time": top_now(order.transaction_success_at) if order.transaction_success_at else None,
            "buyer_nick": customer.name, "buyer_open_uid": customer.customer_id, "seller_nick": SELLER_NICK,
            "receiver_name": customer.name, "receiver_mobile": customer.phone, "receiver_address": customer.address,
            "orders": {"order": [{k: v for k, v in line.items() if v is not None} for line in lines]},
        }
        return {name: value for name, value in trade.items() if value is not None}

    def trades_sold_increment_get(self, params: dict[str, str], _files: dict[str, bytes]) -> dict[str, Any]:
        """The trades created or changed in ``[start_modified, end_modified]`` (both to the second, both
        included, at most one day apart), newest change first, as the gateway's feed (``modified_at``,
        stamped by the platform on every creation and change of an order)."""
        fields = self.need(params, "fields")
        self.need(params, "start_modified")
        self.need(params, "end_modified")
        start, end = self.moment(params, "start_modified"), self.moment(params, "end_modified")
        if end < start:
            raise invalid("end_modified", "end_modified 不能早于 start_modified / end_modified is before start_modified")
        if end - start > MAX_INCREMENT_WINDOW:
            raise invalid("end_modified", "修改时间跨度不能大于一天 / start_modified and end_modified are at most one day apart")
        status = params.get("status")
        if status and status not in TRADE_STATUSES:
            raise invalid("status", f"未知的交易状态 {status} / unknown trade status {status}")
        page, size = self.number(params, "page_no", 1), self.number(params, "page_size", 40, high=100)
        found = [order for order in self.shop.orders.values()
                 if order.modified_at is not None and tid_of(order.order_id) is not None
                 and start <= order.modified_at.replace(microsecond=0) <= end
                 and (not status or trade_status(order) == status)]
        found.sort(key=lambda order: (order.modified_at, tid_of(order.order_id)), reverse=True)  # newest change first
        chosen = found[(page - 1) * size:page * size]
        trades = [{name: value for name, value in self.pick(self.trade_json(order), fields).items()
                   if name not in TRADE_LIST_OMITS} for order in chosen]
        body: dict[str, Any] = {"trades": {"trade": trades}}
        if self.boolean(params, "use_has_next"):
            body["has_next"] = page * size < len(found)
        else:
            body["total_results"] = len(found)
        return body

    def refunds_receive_get(self, params: dict[str, str], _files: dict[str, bytes]) -> dict[str, Any]:
        fields = self.need(params, "fields")
        status = params.get("status")
        if status and status not in LISTED_STATUSES:
            raise invalid("status", f"未知的退款状态 {status} / unknown refund status {status}")
        start, end = self.moment(params, "start_modified"), self.moment(params, "end_modified")
        page, size = self.number(params, "page_no", 1), self.number(params, "page_size", 40, high=100)
        found = [r for r in self.state.refunds.values() if (not status or r.status == status)
                 and (start is None or r.modified.replace(microsecond=0) >= start)
                 and (end is None or r.modified.replace(microsecond=0) <= end)]
        found.sort(key=lambda r: (r.modified, r.refund_id), reverse=True)  # newest first, as the trades
        chosen = found[(page - 1) * size:page * size]
        body: dict[str, Any] = {"refunds": {"refund": [self.pick(self.refund_json(r), fields, LIST_FIELDS) for r in chosen]}}
        if self.boolean(params, "use_has_next"):
            body["has_next"] = page * size < len(found)
        else:
            body["total_results"] = len(found)
        return body

    def refund_get(self, params: dict[str, str], _files: dict[str, bytes]) -> dict[str, Any]:
        fields = self.need(params, "fields")
        return {"refund": self.pick(self.refund_json(self.refund_of(params)), fields)}

    def returngoods_agree(self, params: dict[str, str], _files: dict[str, bytes]) -> dict[str, Any]:
        refund = self.refund_of(params)
        self.check_version(refund, params)
        self.expect(refund, {RefundStatus.WAIT_SELLER_AGREE}, "同意退货 / cannot agree a return now")
        if not refund.has_good_return:
            raise refused("isv.refund-status-not-allowed",
                          "仅退款的退款单无需退货，请用 taobao.rp.refunds.agree / a refund without return: agree the refund instead")
        name, address, post = (self.need(params, part) for part in ("name", "address", "post"))
        phone = params.get("tel") or params.get("mobile") or self.need(params, "mobile")
        refund.address = f"{name} {phone} {address} {post}"
        self.move(refund, RefundStatus.WAIT_BUYER_RETURN_GOODS, "seller")
        return {"is_success": True}

    def refunds_agree(self, params: dict[str, str], _files: dict[str, bytes]) -> dict[str, Any]:
        entries = [part.split("|") for part in self.need(params, "refund_infos").split(",")]
        if any(len(bits) not in (3, 4) or not all(bit.isdigit() for bit in bits[:3]) for bits in entries):
            raise invalid("refund_infos", "格式应为 refund_id|amount|version|phase，金额以分为单位 / expected "
                                          "refund_id|amount|version|phase with the amount in fen")
        if len(entries) > 20:
            raise invalid("refund_infos", "一次最多同意 20 笔退款 / at most 20 refunds per call")
        refunds = []
        for refund_id, fen, version, *phase in entries:
            refund = self.refund_of({"refund_id": refund_id})
            self.check_version(refund, {"refund_version": version, "refund_phase": phase[0] if phase else refund.phase})
            if not (refund.status == RefundStatus.WAIT_SELLER_CONFIRM_GOODS
                    or (refund.status == RefundStatus.WAIT_SELLER_AGREE and not refund.has_good_return)):
                raise refused("isv.refund-status-not-allowed", f"退款单 {refund_id} 状态为 {refund.status}"
                              f"{'（需退货）' if refund.has_good_return else ''}，不能同意退款 / cannot agree this refund now")
            asked = int(refund.refund_fee * 100)
            if int(fen) != asked:
                raise refused("isv.refund-amount-invalid", f"退款金额 {fen} 分与买家申请的 {refund.refund_fee} 元不符 / "
                                                           f"the amount must be the buyer's refund_fee, {asked} fen")
            if refund.refund_fee > self.refundable(self.shop.orders[refund.order_id]):
                raise refused("isv.refund-amount-invalid", f"超过订单可退金额 / more than order {refund.tid} can still refund")
            refunds.append(refund)
        self.check_sms_code(refunds, params.get("code"))
        for refund in refunds:
            self.move(refund, RefundStatus.SUCCESS, "seller")
        results = [{"refund_id": r.refund_id, "succ": True, "message": "退款成功 / refunded"} for r in refunds]
        return {"succ": True, "msg_code": "OP_SUCC", "message": "同意退款成功 / agreed",
                "results": {"refund_mapping_result": results}}

    def check_sms_code(self, refunds: list[TopRefund], code: str | None) -> None:
        threshold = self.state.knobs.sms_code_above
        total = sum((r.refund_fee for r in refunds), Decimal("0.00"))
        if threshold is None or total <= threshold:
            return
        key = ",".join(sorted(r.refund_id for r in refunds))
        if not code:
            sent = self.state.sms_codes[key] = f"{self.shop.random.randrange(10**6):06d}"
            self.shop.messages.setdefault("seller-sms", []).append({
                "recipient": "seller-sms", "title": "淘宝退款验证码", "type": "info", "received_at": self.shop.now().isoformat(),
                "message": f"验证码 {sent}：您正在同意退款 {key}，共 {total} 元。/ code {sent} to agree refunds {key}, {total} yuan.",
                "payload": {"code": sent, "refund_ids": key}})
            raise refused("isv.refund-sms-code-required",
                          f"退款金额 {total} 元较大，已向卖家手机发送短信验证码，请带上 code 重新提交 / a large refund: an SMS "
                          "code went to the seller's phone, call again with code")
        if not hmac.compare_digest(code.encode(), self.state.sms_codes.get(key, "").encode()):
            raise refused("isv.refund-sms-code-invalid", "短信验证码错误或已使用 / the SMS code is wrong or used")
        del self.state.sms_codes[key]

    def refusereason_get(self, params: dict[str, str], _files: dict[str, bytes]) -> dict[str, Any]:
        refund = self.refund_of(params)
        fields = self.need(params, "fields")
        self.need(params, "refund_phase")  # required by TOP, not used by the sandbox's reasons
        reasons = [self.pick({"reason_id": rid, "reason_text": text, "reason_tips": tips}, fields)
                   for rid, text, tips in REFUSE_REASONS[refund.has_good_return]]
        return {"reasons": {"reason": reasons}, "total_results": len(reasons), "has_next": False}

    def check_reason(self, refund: TopRefund, params: dict[str, str]) -> int | None:
        reason_id = self.number(params, "refuse_reason_id")
        if reason_id is not None and reason_id not in {rid for rid, _, _ in REFUSE_REASONS[refund.has_good_return]}:
            raise invalid("refuse_reason_id", "拒绝原因不在 taobao.refund.refusereason.get 的列表中 / not one of this refund's reasons")
        return reason_id

    def refund_refuse(self, params: dict[str, str], _files: dict[str, bytes]) -> dict[str, Any]:
        refund = self.refund_of(params)
        message = self.need(params, "refuse_message")
        if not 2 <= len(message) <= 200:
            raise invalid("refuse_message", "拒绝说明应为 2–200 字 / the refusal message is 2 to 200 characters")
        self.check_version(refund, params)
        self.expect(refund, {RefundStatus.WAIT_SELLER_AGREE}, "拒绝退款 / cannot refuse it now")
        if self.shop.orders[refund.order_id].shipped_at is None:
            raise refused("isv.refund-refuse-not-allowed", "卖家未发货，不能拒绝退款 / nothing was shipped: the refund cannot be refused")
        refund.refuse_reason_id, refund.refuse_message = self.check_reason(refund, params), message
        self.move(refund, RefundStatus.SELLER_REFUSE_BUYER, "seller")
        return {"is_success": True, "refund": {"refund_id": refund.refund_id, "status": str(refund.status),
                                               "modified": top_now(refund.modified)}}

    def returngoods_refuse(self, params: dict[str, str], files: dict[str, bytes]) -> dict[str, Any]:
        refund = self.refund_of(params)
        self.check_version(refund, params)
        if not files.get("refuse_proof"):
            raise TopFault(40, "isv.missing-parameter:refuse_proof", "缺少拒绝凭证图片 / refuse_proof (a picture) is required")
        self.expect(refund, {RefundStatus.WAIT_SELLER_CONFIRM_GOODS}, "拒绝退货 / cannot refuse the goods now")
        refund.refuse_reason_id = self.check_reason(refund, params)
        self.move(refund, RefundStatus.SELLER_REFUSE_BUYER, "seller")
        return {"result": True}

    def refund_review(self, params: dict[str, str], _files: dict[str, bytes]) -> dict[str, Any]:
        refund = self.refund_of(params)
        operator, message, _ = (self.need(params, name) for name in ("operator", "message", "result"))
        result = self.boolean(params, "result")
        self.check_version(refund, params)
        if refund.status in FINISHED:
            raise refused("isv.refund-status-not-allowed", "退款单已完结，无需审核 / the refund is finished: nothing to review")
        refund.review = {"operator": operator, "message": message, "result": result}  # the state stays as it is
        return {"is_success": True}

    def message_add(self, params: dict[str, str], files: dict[str, bytes]) -> dict[str, Any]:
        refund = self.refund_of(params)
        content = self.need(params, "content")
        if len(content.encode("utf-8")) > 400:
            raise invalid("content", "留言最多 400 字节 / the message is at most 400 bytes")
        self.state.serial += 1
        created = self.shop.now()
        refund.messages.append({"id": self.state.serial, "content": content, "image": len(files.get("image", b"")),
                                "created": top_now(created)})
        return {"refund_message": {"id": self.state.serial, "created": top_now(created)}}

    def consign_resend(self, params: dict[str, str], _files: dict[str, bytes]) -> dict[str, Any]:
        order = self.order_of(self.need(params, "tid"))
        waybill, code = self.need(params, "out_sid"), self.need(params, "company_code")
        if code not in CARRIER_BY_TOP_CODE:
            raise invalid("company_code", f"未知的物流公司 {code} / unknown company code {code}")
        if order.shipped_at is None:
            raise refused("isv.logistics-not-consigned", "订单未发货，不能修改运单号 / the order has not shipped: no waybill to change")
        self.shop.put_order(order.model_copy(update={"carrier": CARRIER_BY_TOP_CODE[code], "waybill": waybill}))
        return {"shipping": {"is_success": True}}

    def trade_rates(self) -> list[tuple[Review, dict[str, Any]]]:
        rates = []
        for review in self.shop.reviews:
            order = self.shop.orders.get(review.order_id)
            tid = tid_of(review.order_id)
            if order is None or tid is None:
                continue
            oid = oid_of(tid, 0, len(order.items))
            rates.append((review, {
                "tid": tid, "oid": oid, "role": "buyer", "nick": order.customer.name, "ouid": order.customer.customer_id,
                "result": {Rating.POSITIVE: "good", Rating.NEUTRAL: "neutral", Rating.NEGATIVE: "bad"}[review.rating],
                "created": top_now(review.created_at), "rated_nick": SELLER_NICK, "item_title": order.items[0].name,
                "item_price": str(order.items[0].unit_price), "num_iid": zlib.crc32(order.items[0].sku.encode()),
                "content": review.text, "reply": self.state.replies.get(oid),
            }))
        return rates

    def traderates_get(self, params: dict[str, str], _files: dict[str, bytes]) -> dict[str, Any]:
        fields, rate_type, role = (self.need(params, name) for name in ("fields", "rate_type", "role"))
        if rate_type not in ("get", "give"):
            raise invalid("rate_type", "rate_type 应为 get 或 give / rate_type is get or give")
        if role not in ("buyer", "seller"):
            raise invalid("role", "role 应为 buyer 或 seller / role is buyer or seller")
        result = params.get("result")
        if result and result not in ("good", "neutral", "bad"):
            raise invalid("result", "result 应为 good、neutral 或 bad / result is good, neutral or bad")
        start, end, tid = self.moment(params, "start_date"), self.moment(params, "end_date"), self.number(params, "tid")
        page, size = self.number(params, "page_no", 1, high=200), self.number(params, "page_size", 40, high=150)
        # the shop's reviews are the buyers': what the seller got (get) from buyers
        rates = [rate for review, rate in self.trade_rates() if (rate_type, role) == ("get", "buyer")
                 and (not result or rate["result"] == result) and (tid is None or tid in (rate["tid"], rate["oid"]))
                 and (start is None or review.created_at >= start) and (end is None or review.created_at <= end)]
        rates.sort(key=lambda rate: rate["created"], reverse=True)
        chosen = [self.pick({k: v for k, v in rate.items() if v is not None}, fields)
                  for rate in rates[(page - 1) * size:page * size]]
        body: dict[str, Any] = {"trade_rates": {"trade_rate": chosen}}
        if self.boolean(params, "use_has_next"):
            body["has_next"] = page * size < len(rates)
        else:
            body["total_results"] = len(rates)
        return body

    def explain_add(self, params: dict[str, str], _files: dict[str, bytes]) -> dict[str, Any]:
        self.need(params, "oid")
        oid, reply = self.number(params, "oid"), self.need(params, "reply")
        if len(reply) > 500:
            raise invalid("reply", "解释最多 500 字 / the explanation is at most 500 characters")
        found = next((review for review, rate in self.trade_rates() if rate["oid"] == oid), None)
        if found is None:
            raise refused("isv.traderate-not-exist", f"子订单 {oid} 没有评价 / no review on sub-order {oid}")
        if self.shop.now() - found.created_at > timedelta(days=30):
            raise refused("isv.traderate-explain-expired", "评价超过 30 天，不能解释 / the review is older than 30 days")
        self.state.replies[oid] = reply
        return {"is_success": True}

    # --- the buyer's side and the platform's own actions (the levers) ------------------------------

    def apply(self, request: BuyerRefund) -> TopRefund:
        with self.shop.lock:
            order = self._lever(lambda: self.order_of(request.tid), 404)
            if order.status in (OrderStatus.AWAITING_PAYMENT, OrderStatus.CANCELLED) or order.paid_amount <= 0:
                raise HTTPException(422, f"order {order.order_id} is {order.status}: nothing was paid to refund")
            oids = [oid_of(request.tid, n, len(order.items)) for n in range(len(order.items))]
            oid = oids[0] if request.oid is None else request.oid
            if oid not in oids:
                raise HTTPException(422, f"trade {request.tid} has no sub-order {oid}; its oids: {oids}")
            if request.has_good_return and order.shipped_at is None:
                raise HTTPException(422, f"order {order.order_id} has not shipped: there are no goods to return")
            if any(r.oid == oid and r.status not in FINISHED for r in self.state.refunds.values()):
                raise HTTPException(409, f"sub-order {oid} already has a refund under way: cancel it first")
            if not 0 < request.refund_fee <= self.refundable(order):
                raise HTTPException(422, f"refund_fee {request.refund_fee} must be above 0 and at most "
                                         f"{self.refundable(order)} (order {order.order_id})")
            item = order.items[oids.index(oid)]
            now = self.shop.now()
            self.state.serial += 1
            refund = TopRefund(
                refund_id=str(FIRST_REFUND_ID + self.state.serial), order_id=order.order_id, tid=request.tid, oid=oid,
                title=item.name, price=item.unit_price, num=item.quantity, has_good_return=request.has_good_return,
                refund_fee=request.refund_fee, total_fee=order.paid_amount, reason=request.reason, desc=request.desc,
                phase="aftersale" if order.status == OrderStatus.COMPLETED else "onsale",
                buyer_nick=order.customer.name, buyer_open_uid=order.customer.customer_id,
                good_status="BUYER_RECEIVED" if order.delivered_at else "BUYER_NOT_RECEIVED",
                created=now, modified=now, version=milliseconds(now),
                timeout=now + timedelta(days=PLATFORM_DAYS[RefundStatus.WAIT_SELLER_AGREE]),
                history=[{"at": now.isoformat(), "status": RefundStatus.WAIT_SELLER_AGREE.value, "by": "buyer"}],
            )
            self.state.refunds[refund.refund_id] = refund
            return refund

    def fill_waybill(self, refund_id: str, waybill: ReturnWaybill) -> TopRefund:
        with self.shop.lock:
            refund = self._refund_lever(refund_id, {RefundStatus.WAIT_BUYER_RETURN_GOODS})
            refund.company_name, refund.sid = waybill.company_name, waybill.sid
            refund.good_status, refund.good_return_time = "BUYER_RETURNED_GOODS", self.shop.now()
            self.move(refund, RefundStatus.WAIT_SELLER_CONFIRM_GOODS, "buyer")
            return refund

    def amend(self, refund_id: str, amendment: RefundAmendment) -> TopRefund:
        """The buyer changes the refund: its version moves on, so a decision on the old one is refused."""
        with self.shop.lock:
            refund = self._refund_lever(refund_id, {RefundStatus.WAIT_SELLER_AGREE})
            order = self.shop.orders[refund.order_id]
            if not 0 < amendment.refund_fee <= self.refundable(order):
                raise HTTPException(422, f"refund_fee {amendment.refund_fee} must be above 0 and at most {self.refundable(order)}")
            now = self.shop.now()
            refund.refund_fee, refund.modified = amendment.refund_fee, now
            refund.version = max(milliseconds(now), refund.version + 1)
            refund.history.append({"at": now.isoformat(), "status": str(refund.status), "by": "buyer",
                                   "amended": str(amendment.refund_fee)})
            return refund

    def cancel(self, refund_id: str) -> TopRefund:
        with self.shop.lock:
            refund = self._refund_lever(refund_id, OPEN | {RefundStatus.SELLER_REFUSE_BUYER})
            self.move(refund, RefundStatus.CLOSED, "buyer")
            return refund

    def time_out(self, refund_id: str) -> TopRefund:
        """The platform's own action when the deadline passes: it agrees the return, refunds, or closes."""
        with self.shop.lock:
            refund = self._refund_lever(refund_id, OPEN | {RefundStatus.SELLER_REFUSE_BUYER})
            if refund.status == RefundStatus.WAIT_SELLER_AGREE and refund.has_good_return:
                refund.address = refund.address or self.return_address
                self.move(refund, RefundStatus.WAIT_BUYER_RETURN_GOODS, "platform")
            elif refund.status in (RefundStatus.WAIT_SELLER_AGREE, RefundStatus.WAIT_SELLER_CONFIRM_GOODS):
                self.move(refund, RefundStatus.SUCCESS, "platform")
            else:  # the buyer did not ship, or let the refusal stand
                self.move(refund, RefundStatus.CLOSED, "platform")
            return refund

    def _refund_lever(self, refund_id: str, statuses: set[str]) -> TopRefund:
        refund = self._lever(lambda: self.refund_of({"refund_id": refund_id}), 404)
        if refund.status not in statuses:
            raise HTTPException(409, f"refund {refund_id} is {refund.status}: not possible now")
        return refund

    @staticmethod
    def _lever(find: Callable[[], Any], status: int) -> Any:
        try:
            return find()
        except TopFault as fault:
            raise HTTPException(status, fault.sub_msg) from None

    def lever_answer(self, refund: TopRefund) -> dict[str, Any]:
        with self.shop.lock:
            return {**self.refund_json(refund), "history": list(refund.history), "messages": list(refund.messages),
                    "review": refund.review}


def trade_status(order: Order) -> str:
    """The sandbox's order status in TOP's words (§4)."""
    if order.status == OrderStatus.CANCELLED:
        return "TRADE_CLOSED_BY_TAOBAO" if order.paid_amount == 0 else "TRADE_CLOSED"
    if order.status == OrderStatus.SHIPPED:
        return "TRADE_BUYER_SIGNED" if order.delivered_at else "WAIT_BUYER_CONFIRM_GOODS"
    return {OrderStatus.AWAITING_PAYMENT: "WAIT_BUYER_PAY", OrderStatus.AWAITING_SHIPMENT: "WAIT_SELLER_SEND_GOODS",
            OrderStatus.COMPLETED: "TRADE_FINISHED"}[order.status]


# --- HTTP ----------------------------------------------------------------------------------------


async def request_params(request: Request) -> tuple[dict[str, str], dict[str, bytes]]:
    """The call's parameters from the query string and the form (urlencoded or multipart), and its files."""
    params = dict(request.query_params)
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        fields, files = _multipart(body, content_type)
    else:  # parsed by hand: Starlette's form parser needs python-multipart, which we do not install
        fields, files = {name: values[0] for name, values in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}, {}
    return {**params, **fields}, files


def _multipart(body: bytes, content_type: str) -> tuple[dict[str, str], dict[str, bytes]]:
    message = BytesParser(policy=policy.HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields, files = {}, {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if part.get_filename() is not None:
            files[name] = payload
        else:
            fields[name] = payload.decode("utf-8")
    return fields, files


def top_routes(desk: TopDesk) -> APIRouter:
    router = APIRouter(tags=["TOP (Taobao Open Platform)"])

    @router.post("/router/rest")
    async def router_rest(request: Request) -> JSONResponse:
        """TOP's one endpoint: ``method`` says which API; errors are an ``error_response`` with HTTP 200."""
        params, files = await request_params(request)
        return JSONResponse(desk.answer(params, files))

    return router


def top_levers(desk: TopDesk) -> APIRouter:
    admin = APIRouter(prefix="/sandbox/top", tags=["sandbox levers: TOP"])

    @admin.post("/refunds", status_code=201)
    async def apply(request: BuyerRefund) -> dict[str, Any]:
        """The buyer applies for a refund: ``has_good_return`` true sends the goods back (退货退款)."""
        return desk.lever_answer(desk.apply(request))

    @admin.post("/refunds/{refund_id}/waybill")
    async def fill_waybill(refund_id: str, waybill: ReturnWaybill) -> dict[str, Any]:
        """The buyer shipped the goods back: carrier name and waybill (→ WAIT_SELLER_CONFIRM_GOODS)."""
        return desk.lever_answer(desk.fill_waybill(refund_id, waybill))

    @admin.post("/refunds/{refund_id}/amend")
    async def amend(refund_id: str, amendment: RefundAmendment) -> dict[str, Any]:
        """The buyer changes the amount asked (only while the seller has not decided)."""
        return desk.lever_answer(desk.amend(refund_id, amendment))

    @admin.post("/refunds/{refund_id}/cancel")
    async def cancel(refund_id: str) -> dict[str, Any]:
        """The buyer withdraws the refund (→ CLOSED)."""
        return desk.lever_answer(desk.cancel(refund_id))

    @admin.post("/refunds/{refund_id}/timeout")
    async def time_out(refund_id: str) -> dict[str, Any]:
        """The deadline passes now: the platform agrees the return, refunds, or closes, by itself."""
        return desk.lever_answer(desk.time_out(refund_id))

    @admin.post("/knobs")
    async def set_knobs(knobs: TopKnobs) -> dict[str, Any]:
        """Replaces all TOP knobs at once: ``{}`` switches them off."""
        with desk.shop.lock:
            desk.state.knobs = knobs
        return knobs.model_dump(mode="json")

    @admin.get("/state")
    async def state() -> dict[str, Any]:
        with desk.shop.lock:
            return {"calls": dict(desk.state.calls), "knobs": desk.state.knobs.model_dump(mode="json"),
                    "refunds": [desk.lever_answer(refund) for refund in desk.state.refunds.values()],
                    "replies": {str(oid): reply for oid, reply in desk.state.replies.items()}}

    return admin
