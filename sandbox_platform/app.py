"""The sandbox shop platform: the HTTP API a real platform gateway offers, served from memory.

``make run`` and the tests talk to it exactly as production talks to the shop platform and to the
carrier aggregator, so going live changes URLs and keys, not code:

* ``/api/...``: orders, return addresses, refunds, re-shipments, reviews (``X-Api-Key``).
* ``/poll/query.do``: Kuaidi100's real-time query, authenticated by its MD5 signature.
* ``/poll``: Kuaidi100's push subscription; the pushes go to the subscriber's callback, signed with
  its salt, with knobs for duplicates, reordering, bad signatures, abort and comNew (``pushes.py``).
* ``/router/rest``: the same shop on Taobao/Tmall's TOP protocol, signed (``top.py``), with the
  buyers' refunds; its levers under ``/sandbox/top/...``.
* ``/sandbox/...``: the test bench's levers (``X-Api-Key``): make orders, reset, inject faults,
  move parcels, add reviews, and an inbox for Apprise ``json://`` messages to buyers and staff.

Money travels as decimal strings ("59.00"), times as ISO 8601 with offset (Kuaidi100's own fields
keep its "YYYY-MM-DD HH:MM:SS" China-time format).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Body, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from aftersales.domain.settings import get_settings
from aftersales.integrations.platform import (
    Customer,
    Money,
    Order,
    OrderItem,
    OrderStatus,
    Rating,
    Refund,
    RefundKind,
    Reshipment,
    ReshipmentItem,
    ReturnAddress,
    Review,
    StockLevel,
    Charge,
    Coupon,
    ReviewReport,
)
from sandbox_platform.bulk import synthetic_orders
from sandbox_platform.parcels import CARRIER_NAMES, SHANGHAI, Parcel, ParcelEvent
from sandbox_platform.pushes import Pusher, push_levers, push_routes
from sandbox_platform.top import TopDesk, TopState, top_levers, top_routes

Clock = Callable[[], datetime]


def shanghai_now() -> datetime:
    return datetime.now(SHANGHAI)


# --- parcels (Kuaidi100 vocabulary) ------------------------------

SIGNED_STATES = {3, 4}  # Kuaidi100 ``ischeck`` = 1: the parcel has been signed for
# Kuaidi100 answers errors with HTTP 200 and {"result": false, "returnCode", "message"}.
KD100_INCOMPLETE = ("400", "提交的数据不完整，或者贵司没有购买该接口")
KD100_PHONE = ("408", "快递公司参数异常：手机号码校验不通过")
KD100_NO_RECORD = ("500", "查询无结果，请隔段时间再查")
KD100_BAD_SIGN = ("503", "验证签名失败")


# --- seed: demo orders relative to now ---------------------------------------------------------

SHOP_RETURN_ADDRESS = ReturnAddress(
    name="售后仓 周师傅",
    phone="0571-88196620",
    address="浙江省杭州市余杭区仓前街道良睦路 1399 号 梦想小镇售后仓 3 号门",
    postcode="311121",
)
WAREHOUSE_AREA = "浙江,杭州市,余杭区"


@dataclass(frozen=True)
class _Buyer:
    customer: Customer
    area: str  # Kuaidi100 areaName of the delivery address
    city: str


def _buyer(cid: str, name: str, phone: str, address: str, area: str, language: str = "zh-CN") -> _Buyer:
    customer = Customer(
        customer_id=cid, name=name, phone=phone, email=f"{cid.lower()}@example.com",
        address=address, language=language,
    )
    return _Buyer(customer, area, area.split(",")[1])


BUYERS = {
    "zhang": _buyer("C1001", "张伟", "13812345601", "上海市浦东新区张江路 88 弄 6 号 1201 室",
                    "上海,上海市,浦东新区"),
    "wang": _buyer("C1002", "王芳", "15912345602", "北京市朝阳区阜通东大街 6 号院 3 号楼 1502",
                   "北京,北京市,朝阳区"),
    "li": _buyer("C1003", "李娜", "18612345603", "广东省深圳市南山区科技园南区 12 栋 808",
                 "广东,深圳市,南山区", language="en"),
    "liu": _buyer("C1004", "刘洋", "13712345604", "四川省成都市武侯区天府大道北段 1700 号 2 栋 1203",
                  "四川,成都市,武侯区"),
    "chen": _buyer("C1005", "陈静", "15012345605", "江苏省南京市鼓楼区中山北路 200 号 5 幢 301",
                   "江苏,南京市,鼓楼区"),
    "yang": _buyer("C1006", "杨帆", "18912345606", "湖北省武汉市洪山区珞喻路 1037 号 8 栋 402",
                   "湖北,武汉市,洪山区"),
    "zhao": _buyer("C1007", "赵磊", "13512345607", "浙江省宁波市鄞州区天童南路 588 号 16 楼",
                   "浙江,宁波市,鄞州区"),
}


@dataclass(frozen=True)
class _SeedOrder:
    """One demo order; ages in days before now. ``sign_code`` is Kuaidi100's detailed 3xx value."""

    order_id: str
    buyer: str
    items: tuple[tuple[str, str, str, int, str], ...]  # sku, name, category, quantity, unit price
    postage: str
    status: OrderStatus
    carrier: str | None = None
    waybill: str | None = None
    shipped_days: float | None = None
    delivered_days: float | None = None
    success_days: float | None = None
    sign_code: str = "301"
    free_shipping: bool = False
    paid: bool = True


SEED_ORDERS = (
    # delivered 2 days ago: inside the 7-day no-reason window; amounts hit every approval level
    _SeedOrder("O20261120-001", "zhang", (("TS-COT-WH-L", "纯棉圆领短袖T恤 白色 L", "服装", 1, "49.00"),),
               "10.00", OrderStatus.SHIPPED, "zhongtong", "73154829660123", 4, 2),
    _SeedOrder("O20261120-002", "wang", (("PL-MEM-60", "慢回弹记忆棉枕头 60cm", "家居", 2, "64.00"),),
               "0.00", OrderStatus.COMPLETED, "yuantong", "YT7489201365521", 4, 2, success_days=1,
               sign_code="304", free_shipping=True),
    _SeedOrder("O20261120-003", "li", (("EB-ANC-BK", "主动降噪蓝牙耳机 黑色", "数码", 1, "887.00"),),
               "12.00", OrderStatus.SHIPPED, "jd", "JDVA20456893172", 4, 2),
    _SeedOrder("O20261120-004", "liu", (("AP-HEPA-600", "家用空气净化器 HEPA 600", "家电", 1, "1279.00"),),
               "20.00", OrderStatus.SHIPPED, "shunfeng", "SF1402376589014", 4, 2, sign_code="303"),
    # delivered 12 days ago: past the 7-day no-reason window, inside the 15-day quality window
    _SeedOrder("O20261120-005", "chen", (("SH-RUN-42", "轻量缓震跑步鞋 42 码", "鞋靴", 1, "229.00"),
                                         ("SK-SPT-3P", "运动中筒袜 三双装", "服装", 1, "29.00")),
               "10.00", OrderStatus.COMPLETED, "yunda", "4312876549201", 14, 12, success_days=2),
    # shipped, still on the road
    _SeedOrder("O20261120-006", "yang", (("KT-PAN-28", "不粘炒锅 28cm", "厨具", 1, "158.00"),),
               "10.00", OrderStatus.SHIPPED, "zhongtong", "73154829660147", 1),
    _SeedOrder("O20261120-007", "zhao", (("BK-NOTE-A5", "A5 点阵笔记本 3 本装", "文具", 2, "34.50"),),
               "10.00", OrderStatus.AWAITING_SHIPMENT),
    _SeedOrder("O20261120-008", "zhang", (("MG-CER-350", "陶瓷马克杯 350ml", "家居", 1, "39.00"),),
               "6.00", OrderStatus.CANCELLED, paid=False),
)


def _seed_order(spec: _SeedOrder, now: datetime) -> Order:
    def days_ago(days: float | None) -> datetime | None:
        return None if days is None else now - timedelta(days=days)

    items = [OrderItem(sku=s, name=n, category=c, quantity=q, unit_price=Decimal(p))
             for s, n, c, q, p in spec.items]
    goods = sum((item.unit_price * item.quantity for item in items), Decimal("0.00"))
    postage = Decimal(spec.postage)
    return Order(
        order_id=spec.order_id,
        customer=BUYERS[spec.buyer].customer,
        items=items,
        paid_amount=goods + postage if spec.paid else Decimal("0.00"),
        postage_paid=postage if spec.paid else Decimal("0.00"),
        free_shipping=spec.free_shipping,
        status=spec.status,
        shipped_at=days_ago(spec.shipped_days),
        delivered_at=days_ago(spec.delivered_days),
        transaction_success_at=days_ago(spec.success_days),
        carrier=spec.carrier,
        waybill=spec.waybill,
        warehouse_left=spec.shipped_days is not None,
    )


def seed_orders(now: datetime | None = None) -> list[Order]:
    """The demo orders, dated relative to ``now`` (Asia/Shanghai). See ``SEED_ORDERS``."""
    moment = (now or shanghai_now()).astimezone(SHANGHAI).replace(microsecond=0)
    return [_seed_order(spec, moment) for spec in SEED_ORDERS]


SIGN_TEXTS = {
    "301": "快件已签收，签收人：本人签收。感谢使用{carrier}，期待再次为您服务",
    "303": "快件已签收，签收人：小区门卫代签。如有疑问请联系派件员",
    "304": "快件已投递至【{city}菜鸟驿站】，已由驿站代收，请凭取件码取件",
}


def _history(order: Order, buyer: _Buyer, sign_code: str) -> list[ParcelEvent]:
    """A plausible Kuaidi100 history from the warehouse in Hangzhou to the buyer's door."""
    carrier = CARRIER_NAMES.get(order.carrier or "", order.carrier or "")
    shipped = order.shipped_at
    events = [
        ParcelEvent(shipped, 1, "103", f"【杭州市余杭区仓前营业部】{carrier}已揽收", WAREHOUSE_AREA),
        ParcelEvent(shipped + timedelta(hours=4), 0, "1002", "快件已到达【杭州转运中心】", "浙江,杭州市"),
        ParcelEvent(shipped + timedelta(hours=6), 0, "1002",
                    f"快件已从【杭州转运中心】发出，下一站【{buyer.city}转运中心】", "浙江,杭州市"),
        ParcelEvent(shipped + timedelta(hours=20), 0, "1001",
                    f"快件已到达【{buyer.city}转运中心】", buyer.area.rsplit(",", 1)[0]),
    ]
    if order.delivered_at is not None:
        delivered = order.delivered_at
        events.append(ParcelEvent(delivered - timedelta(hours=3), 5, "5",
                                  f"【{buyer.area.split(',')[-1]}营业部】派件员 李师傅 正在为您派件", buyer.area))
        text = SIGN_TEXTS.get(sign_code, SIGN_TEXTS["301"]).format(carrier=carrier, city=buyer.city)
        events.append(ParcelEvent(delivered, 3, sign_code, text, buyer.area))
    return events


def _seed_parcels(orders: list[Order]) -> dict[str, Parcel]:
    specs = {spec.order_id: spec for spec in SEED_ORDERS}
    parcels = {}
    for order in orders:
        if order.waybill is None:
            continue
        spec = specs[order.order_id]
        events = _history(order, BUYERS[spec.buyer], spec.sign_code)
        parcels[order.waybill] = Parcel(order.waybill, order.carrier, order.customer.phone, events)
    return parcels


def _seed_reviews(orders: list[Order], now: datetime) -> list[Review]:
    """Reviews written after delivery: one negative (a quality complaint), one positive, one neutral."""
    by_id = {order.order_id: order for order in orders}
    lines = [  # order, rating, text, hours before now
        ("O20261120-005", Rating.NEGATIVE, "穿了一周鞋底就开胶了，质量太差，要求退货！", 72),
        ("O20261120-002", Rating.POSITIVE, "枕头很软，睡得很舒服，物流也快。", 24),
        ("O20261120-001", Rating.NEUTRAL, "衣服还行，就是有点薄。", 12),
    ]
    return [
        Review(review_id=f"RV{number:06d}", order_id=order_id,
               customer_id=by_id[order_id].customer.customer_id, rating=rating, text=text,
               created_at=now - timedelta(hours=hours))
        for number, (order_id, rating, text, hours) in enumerate(lines, start=1)
    ]


# --- request bodies ----------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RefundRequest(_Body):
    order_id: str
    amount: Money
    kind: RefundKind = RefundKind.GOODS
    reason: str = Field(min_length=1)
    case_id: str = Field(min_length=1)


class ReshipmentRequest(_Body):
    order_id: str
    items: list[ReshipmentItem] = Field(min_length=1)
    reason: str = Field(min_length=1)
    case_id: str = Field(min_length=1)
    carrier: str | None = Field(default=None, pattern=r"^[a-z0-9]{2,20}$")  # §1.4 switch carrier


class ReviewReportRequest(_Body):  # §1.6 a malicious review reported for verification
    reason: str = Field(min_length=1)
    evidence: str = ""
    case_id: str = Field(min_length=1)


class FaultsRequest(_Body):
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    latency_ms: int = Field(default=0, ge=0)
    fail_after_commit: int = Field(default=0, ge=0)
    # the effect is committed, then the answer takes this long (a slow gateway): a process killed
    # meanwhile has paid without knowing it
    answer_delay_ms: int = Field(default=0, ge=0)


class ResetRequest(_Body):
    seed: bool = True


class ParcelEventRequest(_Body):
    state: int
    status_code: str | None = None
    context: str
    time: AwareDatetime | None = None
    area: str | None = None
    com: str | None = None  # only for a waybill the sandbox has not seen yet


class BulkOrdersRequest(_Body):
    count: int = Field(ge=1, le=500_000)
    prefix: str = Field(default="B", pattern=r"^[A-Z0-9-]{1,12}$")
    problem_share: float = Field(default=0.02, ge=0, le=1)  # share of parcels with a problem


# --- stock, charges and coupons (§1.2 exchange, §1.3 compensation, §1.7 wrong shipment) ---------
# Catalogue SKUs with price and stock (``GET /api/stock/{sku}``, lever ``POST /sandbox/stock/{sku}``),
# charges to the buyer (``POST /api/charges``) and coupons (``POST /api/coupons``), both with
# idempotency keys like the refund's.

SEED_STOCK = (  # sku, name, unit price, available
    ("TS-COT-WH-L", "纯棉圆领短袖T恤 白色 L", "49.00", 50),
    ("TS-COT-WH-XL", "纯棉圆领短袖T恤 白色 XL", "49.00", 30),
    ("TS-COT-WH-M", "纯棉圆领短袖T恤 白色 M", "49.00", 0),
    ("TS-COT-BK-L", "纯棉圆领短袖T恤 黑色 L(加厚款)", "55.00", 20),
    ("PL-MEM-60", "慢回弹记忆棉枕头 60cm", "64.00", 40),
    ("PL-MEM-70", "慢回弹记忆棉枕头 70cm", "79.00", 10),
    ("EB-ANC-BK", "主动降噪蓝牙耳机 黑色", "887.00", 5),
    ("EB-ANC-WH", "主动降噪蓝牙耳机 白色", "887.00", 0),
    ("AP-HEPA-600", "家用空气净化器 HEPA 600", "1279.00", 3),
    ("SH-RUN-42", "轻量缓震跑步鞋 42 码", "229.00", 10),
    ("SH-RUN-43", "轻量缓震跑步鞋 43 码", "229.00", 8),
    ("SH-RUN-42-LITE", "轻量缓震跑步鞋 42 码 简约款", "199.00", 6),
    ("SK-SPT-3P", "运动中筒袜 三双装", "29.00", 100),
    ("KT-PAN-28", "不粘炒锅 28cm", "158.00", 12),
    ("BK-NOTE-A5", "A5 点阵笔记本 3 本装", "34.50", 60),
    ("MG-CER-350", "陶瓷马克杯 350ml", "39.00", 25),
    ("GIFT-MUG", "品牌定制马克杯(补偿赠品)", "25.00", 200),
)


def seed_stock() -> dict[str, StockLevel]:
    return {sku: StockLevel(sku=sku, name=name, unit_price=Decimal(price), available=available)
            for sku, name, price, available in SEED_STOCK}


class StockRequest(_Body):
    available: int = Field(ge=0)
    unit_price: Money | None = None  # needed for a SKU the catalogue does not know yet
    name: str | None = None


class ChargeRequest(_Body):
    order_id: str
    amount: Money
    reason: str = Field(min_length=1)
    case_id: str = Field(min_length=1)


class CouponRequest(_Body):
    order_id: str
    amount: Money
    reason: str = Field(min_length=1)
    case_id: str = Field(min_length=1)
    valid_days: int = Field(default=90, ge=1, le=3650)


def _stock_routes(shop: "SandboxShop") -> APIRouter:
    api = APIRouter(prefix="/api", tags=["platform: stock, charges, coupons"])

    @api.get("/stock/{sku}", response_model=StockLevel)
    async def get_stock(sku: str) -> StockLevel:
        with shop.lock:
            if sku not in shop.stock:
                raise HTTPException(404, f"sku {sku} not found in the catalogue")
            return shop.stock[sku]

    @api.post("/charges", status_code=201, response_model=Charge)
    async def create_charge(
        request: ChargeRequest, idempotency_key: str | None = Header(None, alias="Idempotency-Key")
    ) -> JSONResponse:
        key = _idempotency_key(idempotency_key, "/api/charges")
        charge, replayed = shop.once("charge", key, request, lambda: shop.take_charge(request))
        return await _side_effect_answer(shop, charge, replayed)

    @api.get("/charges", response_model=list[Charge])
    async def list_charges(order_id: str | None = None) -> list[Charge]:
        with shop.lock:
            return [c for c in shop.charges if order_id in (None, c.order_id)]

    @api.post("/coupons", status_code=201, response_model=Coupon)
    async def create_coupon(
        request: CouponRequest, idempotency_key: str | None = Header(None, alias="Idempotency-Key")
    ) -> JSONResponse:
        key = _idempotency_key(idempotency_key, "/api/coupons")
        coupon, replayed = shop.once("coupon", key, request, lambda: shop.issue_coupon(request))
        return await _side_effect_answer(shop, coupon, replayed)

    @api.get("/coupons", response_model=list[Coupon])
    async def list_coupons(order_id: str | None = None) -> list[Coupon]:
        with shop.lock:
            return [c for c in shop.coupons if order_id in (None, c.order_id)]

    return api


def _stock_levers(shop: "SandboxShop") -> APIRouter:
    admin = APIRouter(prefix="/sandbox", tags=["sandbox levers"])

    @admin.post("/stock/{sku}", response_model=StockLevel)
    async def set_stock(sku: str, request: StockRequest) -> StockLevel:
        return shop.set_stock(sku, request)

    return admin


# --- end of stock, charges and coupons ---------------------------------------------------------


class ReviewRequest(_Body):
    order_id: str
    rating: Rating
    text: str
    review_id: str | None = None
    customer_id: str | None = None
    created_at: AwareDatetime | None = None


# --- the shop's state --------------------------------------------------------------------------


@dataclass
class _Remembered:
    fingerprint: str
    record: BaseModel


def _not_found(order_id: str) -> HTTPException:
    return HTTPException(404, f"order {order_id} not found")


class SandboxShop:
    """Everything the sandbox knows, behind one lock (uvicorn's thread and the tests share it)."""

    def __init__(self, now: Clock, carrier_customer: str, carrier_key: str, seed: bool = True):
        self.now = now
        self.carrier_customer = carrier_customer
        self.carrier_key = carrier_key
        self.lock = threading.RLock()
        self.random = random.Random(20261120)  # reproducible fault injection
        self.pusher = Pusher(self)
        self.reset(seed)

    def reset(self, seed: bool = True) -> None:
        with self.lock:
            self.orders: dict[str, Order] = {}
            self.refunds: list[Refund] = []
            self.reshipments: list[Reshipment] = []
            self.reviews: list[Review] = []
            self.review_reports: list[ReviewReport] = []
            self.parcels: dict[str, Parcel] = {}
            self.messages: dict[str, list[dict[str, Any]]] = {}
            self.remembered: dict[tuple[str, str], _Remembered] = {}
            self.carrier_queries: dict[str, int] = {}
            self.faults = FaultsRequest()
            self.stock: dict[str, StockLevel] = {}  # §1.2/§1.3/§1.7 catalogue and stock
            self.charges: list[Charge] = []
            self.coupons: list[Coupon] = []
            self.top = TopState()  # the buyers' refunds and the calls on the TOP side (top.py)
            self.pusher.reset()
            if seed:
                self._seed()

    def _seed(self) -> None:
        now = self.now().astimezone(SHANGHAI).replace(microsecond=0)
        orders = seed_orders(now)
        self.orders = {order.order_id: self._modified(order) for order in orders}
        self.parcels = _seed_parcels(orders)
        self.reviews = _seed_reviews(orders, now)
        self.stock = seed_stock()

    # orders

    def order(self, order_id: str) -> Order:
        with self.lock:
            if order_id not in self.orders:
                raise _not_found(order_id)
            return self.orders[order_id]

    def _modified(self, order: Order) -> Order:
        """The order as stored: the platform stamps every creation and change (Taobao's ``modified``)."""
        return order.model_copy(update={"modified_at": self.now()})

    def put_order(self, order: Order) -> bool:
        """Create or replace; a new waybill gets an empty parcel (Kuaidi100: no record yet).
        The platform sets ``modified_at`` itself, whatever the body says."""
        with self.lock:
            created = order.order_id not in self.orders
            self.orders[order.order_id] = order = self._modified(order)
            if order.waybill and order.waybill not in self.parcels:
                self.parcels[order.waybill] = Parcel(order.waybill, order.carrier, order.customer.phone)
            return created

    # idempotent side effects

    def once(
        self, kind: str, key: str, body: BaseModel, effect: Callable[[], BaseModel]
    ) -> tuple[BaseModel, bool]:
        """Run ``effect`` once per idempotency key; a repeat returns the first result (replayed)."""
        fingerprint = json.dumps(body.model_dump(mode="json"), sort_keys=True)
        with self.lock:
            seen = self.remembered.get((kind, key))
            if seen is not None:
                if seen.fingerprint != fingerprint:
                    raise HTTPException(
                        409, f"Idempotency-Key {key!r} was already used for a different {kind} request"
                    )
                return seen.record, True
            record = effect()
            self.remembered[(kind, key)] = _Remembered(fingerprint, record)
            return record, False

    def pay_refund(self, request: RefundRequest) -> Refund:
        with self.lock:
            order = self.order(request.order_id)
            if request.amount <= 0:
                raise HTTPException(422, f"refund amount must be positive, got {request.amount}")
            # only the goods are capped at the price paid; postage the seller owes comes on top
            earlier = (r.amount for r in self.refunds if r.order_id == order.order_id and r.kind == RefundKind.GOODS)
            already = sum(earlier, Decimal("0.00"))
            if request.kind == RefundKind.GOODS and already + request.amount > order.paid_amount:
                raise HTTPException(422, (
                    f"refund {request.amount} for order {order.order_id} would bring refunds to "
                    f"{already + request.amount}, above the paid amount {order.paid_amount} "
                    f"(already refunded {already})"))
            refund = Refund(
                refund_id=f"RF{len(self.refunds) + 1:08d}", order_id=order.order_id,
                amount=request.amount, kind=request.kind, reason=request.reason, case_id=request.case_id,
                status="paid", created_at=self.now(),
            )
            self.refunds.append(refund)
            return refund

    def ship_again(self, request: ReshipmentRequest) -> Reshipment:
        with self.lock:
            order = self.order(request.order_id)
            # a catalogue SKU outside the order may be shipped too: an exchange's replacement, a gift
            ordered_skus = {item.sku for item in order.items}
            self._check_reshipment(order, [i for i in request.items if i.sku in ordered_skus or i.sku not in self.stock])
            self.take_stock(request.items)
            carrier = request.carrier or order.carrier or "zhongtong"
            waybill = f"78{len(self.reshipments) + 1:010d}"
            created_at = self.now()
            reshipment = Reshipment(
                reshipment_id=f"RS{len(self.reshipments) + 1:08d}", order_id=order.order_id,
                items=request.items, carrier=carrier, waybill=waybill, status="shipped",
                created_at=created_at,
            )
            self.reshipments.append(reshipment)
            carrier_name = CARRIER_NAMES.get(carrier, carrier)
            collected = ParcelEvent(created_at, 1, "103", f"【杭州市余杭区仓前营业部】{carrier_name}已揽收",
                                    WAREHOUSE_AREA)
            self.parcels[waybill] = Parcel(waybill, carrier, order.customer.phone, [collected])
            return reshipment

    @staticmethod
    def _check_reshipment(order: Order, items: list[ReshipmentItem]) -> None:
        if order.status in (OrderStatus.AWAITING_PAYMENT, OrderStatus.CANCELLED):
            raise HTTPException(422, f"order {order.order_id} is {order.status}: nothing to ship again")
        ordered = {item.sku: item.quantity for item in order.items}
        for item in items:
            if item.sku not in ordered:
                raise HTTPException(422, f"sku {item.sku} is not in order {order.order_id}")
            if item.quantity > ordered[item.sku]:
                raise HTTPException(422, (f"cannot ship {item.quantity} x {item.sku} again: "
                                          f"order {order.order_id} has {ordered[item.sku]}"))

    # stock, charges and coupons (§1.2, §1.3, §1.7)

    def take_stock(self, items: list[ReshipmentItem]) -> None:
        """Ship from stock: every tracked SKU must be there, then all are taken (all or nothing)."""
        with self.lock:
            for item in items:
                level = self.stock.get(item.sku)
                if level is not None and level.available < item.quantity:
                    raise HTTPException(422, f"out of stock: {item.sku} has {level.available}, {item.quantity} needed")
            for item in items:
                level = self.stock.get(item.sku)
                if level is not None:
                    self.stock[item.sku] = level.model_copy(update={"available": level.available - item.quantity})

    def set_stock(self, sku: str, request: StockRequest) -> StockLevel:
        with self.lock:
            known = self.stock.get(sku)
            if known is None and request.unit_price is None:
                raise HTTPException(422, f"sku {sku} is new to the catalogue: give its unit_price")
            level = StockLevel(sku=sku, name=request.name or (known.name if known else sku),
                               unit_price=request.unit_price if request.unit_price is not None else known.unit_price,
                               available=request.available)
            self.stock[sku] = level
            return level

    def take_charge(self, request: ChargeRequest) -> Charge:
        with self.lock:
            order = self.order(request.order_id)
            if request.amount <= 0:
                raise HTTPException(422, f"charge amount must be positive, got {request.amount}")
            if order.status in (OrderStatus.AWAITING_PAYMENT, OrderStatus.CANCELLED):
                raise HTTPException(422, f"order {order.order_id} is {order.status}: no payment method to charge")
            charge = Charge(charge_id=f"CH{len(self.charges) + 1:08d}", order_id=order.order_id, amount=request.amount,
                            reason=request.reason, case_id=request.case_id, status="paid", created_at=self.now())
            self.charges.append(charge)
            return charge

    def issue_coupon(self, request: CouponRequest) -> Coupon:
        with self.lock:
            order = self.order(request.order_id)
            if request.amount <= 0:
                raise HTTPException(422, f"coupon amount must be positive, got {request.amount}")
            number = len(self.coupons) + 1
            created = self.now()
            coupon = Coupon(coupon_id=f"CP{number:08d}", code=f"SHOP{number:04d}{hashlib.sha1(request.case_id.encode()).hexdigest()[:6].upper()}",
                            customer_id=order.customer.customer_id, order_id=order.order_id, amount=request.amount,
                            reason=request.reason, case_id=request.case_id, status="issued",
                            expires_at=created + timedelta(days=request.valid_days), created_at=created)
            self.coupons.append(coupon)
            return coupon

    # parcels

    def add_parcel_event(self, waybill: str, request: ParcelEventRequest) -> Parcel:
        with self.lock:
            parcel = self.parcels.setdefault(waybill, Parcel(waybill, request.com))
            event = ParcelEvent(request.time or self.now(), request.state,
                                request.status_code or str(request.state), request.context, request.area)
            parcel.events.append(event)
            if event.state == 3:
                self._mark_delivered(waybill, event.time)
            return parcel

    def _mark_delivered(self, waybill: str, signed_at: datetime) -> None:
        # the platform learns of the signature from the carrier, as a real one does
        for order in self.orders.values():
            if order.waybill == waybill and order.delivered_at is None:
                self.orders[order.order_id] = self._modified(order.model_copy(update={"delivered_at": signed_at}))

    def shipped_orders_page(self, since: datetime | None, after: str | None, limit: int,
                            modified_since: datetime | None = None) -> dict[str, Any]:
        """A page of the order feed; ``after`` is the cursor (the previous page's ``next``).

        With ``modified_since`` the feed is incremental, as a real platform's (Taobao's
        ``trades.sold.increment.get``): the shipped orders created or changed at or after that time,
        ordered by (modified_at, order_id), so an order that arrives late — whatever its shipping
        time — comes after everything already read. Without it, the orders shipped at or after
        ``since`` ordered by (shipped_at, order_id): a snapshot, not a feed to sync from."""
        by_modified = modified_since is not None

        def key(order: Order) -> tuple[datetime, str]:
            return (order.modified_at if by_modified else order.shipped_at, order.order_id)

        with self.lock:
            feed = sorted(key(o) for o in self.orders.values()
                          if o.shipped_at and (since is None or o.shipped_at >= since)
                          and (not by_modified or (o.modified_at is not None and o.modified_at >= modified_since)))
            start = 0
            if after:
                moment, _, order_id = after.partition("|")
                try:
                    cursor = (datetime.fromisoformat(moment), order_id)
                except ValueError:
                    raise HTTPException(422, f"after: not a cursor of this feed: {after!r}") from None
                if cursor[0].tzinfo is None:
                    raise HTTPException(422, f"after: not a cursor of this feed: {after!r}")
                start = next((i for i, item in enumerate(feed) if item > cursor), len(feed))
            page = feed[start:start + limit]
            orders = [self.orders[order_id].model_dump(mode="json") for _, order_id in page]
        more = start + limit < len(feed)
        return {"orders": orders, "next": f"{page[-1][0].isoformat()}|{page[-1][1]}" if page and more else None}

    def add_bulk_orders(self, orders: list[Order], parcels: list[Parcel]) -> None:
        with self.lock:
            self.orders.update({o.order_id: self._modified(o) for o in orders})
            self.parcels.update({p.waybill: p for p in parcels})

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "orders": len(self.orders),
                "refunds": {"count": len(self.refunds),
                            "total": str(sum((r.amount for r in self.refunds), Decimal("0.00")))},
                "reshipments": len(self.reshipments),
                "reviews": len(self.reviews),
                "parcels": len(self.parcels),
                "messages": {recipient: len(inbox) for recipient, inbox in self.messages.items()},
                "carrier_queries": dict(self.carrier_queries),
                "carrier_subscriptions": len(self.pusher.subscriptions),
                "faults": self.faults.model_dump(),
            }


# --- Kuaidi100 real-time query -----------------------------------------------------------------


def _kd100_error(code_and_message: tuple[str, str]) -> dict[str, Any]:
    code, message = code_and_message
    return {"result": False, "returnCode": code, "message": message}


def _form(body: bytes) -> dict[str, str]:
    # parsed by hand: Starlette's form parser needs python-multipart, which we do not install
    return {name: values[0] for name, values in parse_qs(body.decode("utf-8")).items()}


def carrier_answer(shop: SandboxShop, form: dict[str, str]) -> dict[str, Any]:
    customer, sign, param_text = form.get("customer"), form.get("sign"), form.get("param")
    if not (customer and sign and param_text):
        return _kd100_error(KD100_INCOMPLETE)
    expected = hashlib.md5((param_text + shop.carrier_key + customer).encode()).hexdigest().upper()
    if customer != shop.carrier_customer or not hmac.compare_digest(sign.upper(), expected):
        return _kd100_error(KD100_BAD_SIGN)
    try:
        param = json.loads(param_text)
        com, num = param["com"], param["num"]
    except (ValueError, KeyError, TypeError):
        return _kd100_error(KD100_INCOMPLETE)
    return _tracking(shop, com, num, param.get("phone"))


def _tracking(shop: SandboxShop, com: str, num: str, phone: str | None) -> dict[str, Any]:
    with shop.lock:
        shop.carrier_queries[num] = shop.carrier_queries.get(num, 0) + 1
        parcel = shop.parcels.get(num)
        if parcel is None or not parcel.events or parcel.com not in (None, com):
            return _kd100_error(KD100_NO_RECORD)
        if com == "shunfeng" and not _phone_matches(phone, parcel.phone):
            return _kd100_error(KD100_PHONE)
        events = parcel.newest_first()
    state = events[0].state
    return {
        "message": "ok", "nu": num, "ischeck": "1" if state in SIGNED_STATES else "0",
        "com": com, "status": "200", "state": str(state),
        "data": [event.as_kuaidi100() for event in events],
    }


def _phone_matches(given: str | None, recipient: str | None) -> bool:
    # SF accepts the full number or its last four digits
    if recipient is None:
        return True
    return bool(given) and (given == recipient or given == recipient[-4:])


# --- the app -----------------------------------------------------------------------------------


def create_app(
    api_key: str,
    seed: bool = True,
    now: Clock | None = None,
    *,
    carrier_customer: str | None = None,
    carrier_key: str | None = None,
    top_app_key: str | None = None,
    top_app_secret: str | None = None,
    top_session_key: str | None = None,
) -> FastAPI:
    """The sandbox platform. Carrier and TOP credentials default to the settings' ``carrier_*`` and ``top_*``."""
    settings = get_settings()
    shop = SandboxShop(
        now=now or shanghai_now,
        carrier_customer=carrier_customer or settings.carrier_customer,
        carrier_key=carrier_key or settings.carrier_key.get_secret_value(),
        seed=seed,
    )
    app = FastAPI(title="Sandbox shop platform", version="1",
                  description="In-memory shop platform and Kuaidi100 query for tests and demos.")
    app.state.shop = shop
    key_guard = Depends(_api_key_guard(api_key))
    fault_guard = Depends(_fault_guard(shop))
    app.include_router(_platform_routes(shop), dependencies=[key_guard, fault_guard])
    app.include_router(_stock_routes(shop), dependencies=[key_guard, fault_guard])
    app.include_router(_stock_levers(shop), dependencies=[key_guard])
    app.include_router(_carrier_routes(shop), dependencies=[fault_guard])
    app.include_router(push_routes(shop.pusher, _form), dependencies=[fault_guard])
    app.include_router(push_levers(shop.pusher), dependencies=[key_guard])
    desk = TopDesk(shop, app_key=top_app_key or settings.top_app_key,
                   app_secret=top_app_secret or settings.top_app_secret.get_secret_value(),
                   session_key=top_session_key or settings.top_session_key.get_secret_value(),
                   return_address=SHOP_RETURN_ADDRESS.text)
    app.include_router(top_routes(desk), dependencies=[fault_guard])  # TOP's own signature, no X-Api-Key
    app.include_router(top_levers(desk), dependencies=[key_guard])
    # the levers never fail on purpose, or a test could not turn the faults off again
    app.include_router(_sandbox_routes(shop), dependencies=[key_guard])
    return app


def _api_key_guard(api_key: str) -> Callable[[str | None], None]:
    header = APIKeyHeader(name="X-Api-Key", auto_error=False)

    def require_api_key(given: str | None = Depends(header)) -> None:
        if not given:
            raise HTTPException(401, "missing X-Api-Key header")
        if not hmac.compare_digest(given.encode(), api_key.encode()):
            raise HTTPException(401, "wrong X-Api-Key")

    return require_api_key


def _fault_guard(shop: SandboxShop) -> Callable[[], Any]:
    async def apply_faults() -> None:
        with shop.lock:
            faults = shop.faults
            unlucky = faults.error_rate > 0 and shop.random.random() < faults.error_rate
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if unlucky:
            raise HTTPException(503, "sandbox fault: platform unavailable (error_rate)")

    return apply_faults


def _idempotency_key(key: str | None, route: str) -> str:
    if not key:
        raise HTTPException(400, f"Idempotency-Key header is required for POST {route}")
    return key


async def _side_effect_answer(shop: SandboxShop, record: BaseModel, replayed: bool) -> JSONResponse:
    content = record.model_dump(mode="json")
    if shop.faults.answer_delay_ms:
        await asyncio.sleep(shop.faults.answer_delay_ms / 1000)
    if replayed:
        return JSONResponse(content, status_code=200, headers={"Idempotent-Replayed": "true"})
    with shop.lock:
        lose_answer = shop.faults.fail_after_commit > 0
        if lose_answer:
            shop.faults.fail_after_commit -= 1
    if lose_answer:
        # the effect is committed; only the answer is lost, as after a gateway crash
        return JSONResponse({"detail": "sandbox fault: committed, then failed (fail_after_commit)"}, 500)
    return JSONResponse(content, status_code=201)


def _platform_routes(shop: SandboxShop) -> APIRouter:
    api = APIRouter(prefix="/api", tags=["platform"])

    @api.get("/orders/{order_id}", response_model=Order)
    async def get_order(order_id: str) -> Order:
        return shop.order(order_id)

    @api.get("/orders/{order_id}/return-address", response_model=ReturnAddress)
    async def get_return_address(order_id: str) -> ReturnAddress:
        shop.order(order_id)
        return SHOP_RETURN_ADDRESS

    @api.post("/refunds", status_code=201, response_model=Refund)
    async def create_refund(
        request: RefundRequest, idempotency_key: str | None = Header(None, alias="Idempotency-Key")
    ) -> JSONResponse:
        key = _idempotency_key(idempotency_key, "/api/refunds")
        refund, replayed = shop.once("refund", key, request, lambda: shop.pay_refund(request))
        return await _side_effect_answer(shop, refund, replayed)

    @api.get("/refunds", response_model=list[Refund])
    async def list_refunds(order_id: str | None = None) -> list[Refund]:
        with shop.lock:
            if order_id is not None:
                shop.order(order_id)
            return [r for r in shop.refunds if order_id in (None, r.order_id)]

    @api.post("/reshipments", status_code=201, response_model=Reshipment)
    async def create_reshipment(
        request: ReshipmentRequest, idempotency_key: str | None = Header(None, alias="Idempotency-Key")
    ) -> JSONResponse:
        key = _idempotency_key(idempotency_key, "/api/reshipments")
        reshipment, replayed = shop.once("reshipment", key, request, lambda: shop.ship_again(request))
        return await _side_effect_answer(shop, reshipment, replayed)

    @api.get("/reshipments", response_model=list[Reshipment])
    async def list_reshipments(order_id: str | None = None) -> list[Reshipment]:
        with shop.lock:
            if order_id is not None:
                shop.order(order_id)
            return [r for r in shop.reshipments if order_id in (None, r.order_id)]

    # --- §1.9 order feed for the 15-day tracker --------------------------------------------------
    @api.get("/orders")
    async def list_shipped_orders(
        shipped_since: AwareDatetime | None = Query(None, description="shipped at or after (inclusive)"),
        modified_since: AwareDatetime | None = Query(None, description="created or changed at or after (inclusive): the incremental feed"),
        after: str | None = Query(None, description="the previous page's next"),
        limit: int = 500,
    ) -> dict[str, Any]:
        if shipped_since is None and modified_since is None:
            raise HTTPException(422, "give shipped_since or modified_since")
        return shop.shipped_orders_page(shipped_since, after, max(1, min(limit, 1000)), modified_since=modified_since)

    @api.get("/reviews", response_model=list[Review])
    async def list_reviews(
        since: AwareDatetime | None = Query(None, description="created at or after (inclusive)"),
    ) -> list[Review]:
        with shop.lock:
            reviews = [r for r in shop.reviews if since is None or r.created_at >= since]
        return sorted(reviews, key=lambda review: review.created_at)

    # --- §1.6 malicious reviews reported for verification (out-of-area/repair/review engineer) ---

    @api.post("/reviews/{review_id}/report", status_code=201, response_model=ReviewReport)
    async def report_review(
        review_id: str, request: ReviewReportRequest,
        idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
    ) -> JSONResponse:
        key = _idempotency_key(idempotency_key, f"/api/reviews/{review_id}/report")

        def file_report() -> ReviewReport:
            with shop.lock:
                if not any(r.review_id == review_id for r in shop.reviews):
                    raise HTTPException(404, f"review {review_id} not found")
                report = ReviewReport(
                    report_id=f"RR{len(shop.review_reports) + 1:08d}", review_id=review_id,
                    reason=request.reason, evidence=request.evidence, case_id=request.case_id,
                    status="submitted", created_at=shop.now(),
                )
                shop.review_reports.append(report)
                return report

        report, replayed = shop.once("review-report", key, request, file_report)
        return await _side_effect_answer(shop, report, replayed)

    @api.get("/reviews/{review_id}/reports", response_model=list[ReviewReport])
    async def list_review_reports(review_id: str) -> list[ReviewReport]:
        with shop.lock:
            return [r for r in shop.review_reports if r.review_id == review_id]

    return api


def _carrier_routes(shop: SandboxShop) -> APIRouter:
    carrier = APIRouter(tags=["carrier (Kuaidi100)"])

    @carrier.post("/poll/query.do")
    async def kuaidi100_query(request: Request) -> dict[str, Any]:
        """Kuaidi100 real-time query: form fields ``customer``, ``sign``, ``param``."""
        return carrier_answer(shop, _form(await request.body()))

    return carrier


def _sandbox_routes(shop: SandboxShop) -> APIRouter:
    admin = APIRouter(prefix="/sandbox", tags=["sandbox levers"])

    @admin.post("/orders", response_model=Order)
    async def put_order(order: Order) -> JSONResponse:
        created = shop.put_order(order)
        return JSONResponse(shop.order(order.order_id).model_dump(mode="json"), status_code=201 if created else 200)

    @admin.post("/reset")
    async def reset(request: ResetRequest | None = None) -> dict[str, Any]:
        shop.reset(seed=request.seed if request else True)
        return shop.summary()

    @admin.post("/faults")
    async def set_faults(faults: FaultsRequest) -> dict[str, Any]:
        """Replaces all faults at once: ``{}`` switches them off."""
        with shop.lock:
            shop.faults = faults
        return faults.model_dump()

    @admin.post("/parcels/{waybill}/events")
    async def add_parcel_event(waybill: str, event: ParcelEventRequest) -> dict[str, Any]:
        parcel = shop.add_parcel_event(waybill, event)
        shop.pusher.event_added(waybill)  # a subscribed waybill's new event is pushed, as the provider does
        return {"waybill": waybill, "events": [e.as_kuaidi100() for e in parcel.newest_first()]}

    @admin.post("/orders/bulk", status_code=201)
    async def add_bulk_orders(request: BulkOrdersRequest) -> dict[str, Any]:
        """Many synthetic shipped orders with tracking (for the tracker's tests and benchmark)."""
        orders, parcels = synthetic_orders(request.count, request.prefix, request.problem_share, shop.now())
        shop.add_bulk_orders(orders, parcels)
        return {"created": len(orders)}

    @admin.post("/reviews", status_code=201, response_model=Review)
    async def add_review(request: ReviewRequest) -> Review:
        with shop.lock:
            order = shop.order(request.order_id)
            review = Review(
                review_id=request.review_id or f"RV{len(shop.reviews) + 1:06d}",
                order_id=order.order_id,
                customer_id=request.customer_id or order.customer.customer_id,
                rating=request.rating, text=request.text,
                created_at=request.created_at or shop.now(),
            )
            shop.reviews.append(review)
            return review

    @admin.post("/messages/{recipient}")
    async def receive_message(recipient: str, payload: dict[str, Any] = Body(...)) -> dict[str, Any]:
        """Inbox for Apprise ``json://`` (payload: version, title, message, type, attachments)."""
        message = {
            "recipient": recipient, "title": payload.get("title", ""),
            "message": payload.get("message", ""), "type": payload.get("type"),
            "received_at": shop.now().isoformat(), "payload": payload,
        }
        with shop.lock:
            shop.messages.setdefault(recipient, []).append(message)
        return {"ok": True}

    @admin.get("/messages/{recipient}")
    async def list_messages(recipient: str) -> list[dict[str, Any]]:
        with shop.lock:
            return list(shop.messages.get(recipient, []))

    @admin.get("/state")
    async def state() -> dict[str, Any]:
        return shop.summary()

    return admin
