"""The platform and carrier clients against the sandbox, over real loopback HTTP."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import apprise
import httpx
import pytest

from aftersales.integrations.platform import (
    CarrierClient,
    CarrierError,
    NoTrackingRecord,
    OrderNotFound,
    PlatformClient,
    PlatformRejected,
    PlatformUnavailable,
    ReshipmentItem,
    kuaidi100_sign,
)
from sandbox_platform.app import seed_orders
from tests.support.sandbox import start_sandbox

API_KEY = "test-platform-key"
CARRIER_CUSTOMER = "TESTCUSTOMER"
CARRIER_KEY = "test-carrier-key"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def run(coroutine):
    return asyncio.run(coroutine)


@pytest.fixture(scope="module")
def server():
    url, app, stop = start_sandbox(API_KEY, carrier_customer=CARRIER_CUSTOMER, carrier_key=CARRIER_KEY)
    yield SimpleNamespace(url=url, app=app)
    stop()


@pytest.fixture
def sandbox(server):
    """A freshly seeded sandbox for each test, plus a plain HTTP client for its levers."""
    with httpx.Client(base_url=server.url, headers={"X-Api-Key": API_KEY}) as admin:
        admin.post("/sandbox/reset", json={"seed": True}).raise_for_status()
        yield SimpleNamespace(url=server.url, app=server.app, admin=admin)


def platform(sandbox, **options) -> PlatformClient:
    options = {"api_key": API_KEY, "retries": 2, "backoff_base": 0.01, "backoff_cap": 0.05, **options}
    return PlatformClient(base_url=sandbox.url, **options)


def carrier(sandbox, **options) -> CarrierClient:
    options = {"customer": CARRIER_CUSTOMER, "key": CARRIER_KEY, "retries": 1, "backoff_base": 0.01,
               **options}
    return CarrierClient(url=f"{sandbox.url}/poll/query.do", **options)


class CountingTransport(httpx.AsyncHTTPTransport):
    """A real transport that counts the requests it sends, to see the client's retries."""

    def __init__(self):
        super().__init__()
        self.sent = 0

    async def handle_async_request(self, request):
        self.sent += 1
        return await super().handle_async_request(request)


# --- orders ------------------------------------------------------------------------------------


def test_get_order_reads_money_as_decimal_and_times_as_aware(sandbox):
    async def scenario():
        async with platform(sandbox) as shop:
            return await shop.get_order("O20261120-001")

    order = run(scenario())
    assert order.paid_amount == Decimal("59.00") and isinstance(order.paid_amount, Decimal)
    assert order.items[0].unit_price == Decimal("49.00")
    assert order.delivered_at.tzinfo is not None
    age = datetime.now(SHANGHAI) - order.delivered_at
    assert abs(age - timedelta(days=2)) < timedelta(minutes=1)
    assert (order.carrier, order.customer.name, order.customer.language) == ("zhongtong", "张伟", "zh-CN")
    raw = sandbox.admin.get("/api/orders/O20261120-001").json()
    assert raw["paid_amount"] == "59.00"  # a decimal string on the wire, never a JSON number
    assert raw["delivered_at"].endswith("+08:00")


def test_unknown_order_is_order_not_found(sandbox):
    async def scenario():
        async with platform(sandbox) as shop:
            await shop.get_order("O-NOPE")

    with pytest.raises(OrderNotFound) as caught:
        run(scenario())
    assert caught.value.status_code == 404
    assert caught.value.detail == "order O-NOPE not found"
    assert "get order" in str(caught.value)


def test_missing_or_wrong_api_key_is_refused_with_401(sandbox):
    async def scenario():
        async with platform(sandbox, api_key="not-the-key") as shop:
            await shop.get_order("O20261120-001")

    with pytest.raises(PlatformRejected) as caught:
        run(scenario())
    assert (caught.value.status_code, caught.value.detail) == (401, "wrong X-Api-Key")
    bare = httpx.get(f"{sandbox.url}/api/orders/O20261120-001")
    assert (bare.status_code, bare.json()) == (401, {"detail": "missing X-Api-Key header"})


def test_return_address(sandbox):
    async def scenario():
        async with platform(sandbox) as shop:
            return await shop.get_return_address("O20261120-003")

    address = run(scenario())
    assert address.postcode == "311121" and "杭州" in address.address


def test_sandbox_orders_lever_creates_any_order_and_refuses_float_money(sandbox):
    order = seed_orders()[0].model_dump(mode="json")
    order.update(order_id="T-1", paid_amount="10.50", waybill=None)
    assert sandbox.admin.post("/sandbox/orders", json=order).status_code == 201

    async def scenario():
        async with platform(sandbox) as shop:
            return await shop.get_order("T-1")

    assert run(scenario()).paid_amount == Decimal("10.50")
    floating = sandbox.admin.post("/sandbox/orders", json={**order, "paid_amount": 10.5})
    assert floating.status_code == 422


# --- refunds -----------------------------------------------------------------------------------


def test_refund_twice_with_one_key_pays_once(sandbox):
    async def scenario():
        async with platform(sandbox) as shop:
            first = await shop.refund("O20261120-001", Decimal("15.00"), "质量问题补偿", "C-1", "refund-C-1")
            again = await shop.refund("O20261120-001", Decimal("15.00"), "质量问题补偿", "C-1", "refund-C-1")
            return first, again, await shop.list_refunds("O20261120-001")

    first, again, listed = run(scenario())
    assert first == again
    assert listed == [first]
    assert first.amount == Decimal("15.00") and first.status == "paid"


def test_refund_replay_answers_200_with_header_and_a_changed_body_409(sandbox):
    body = {"order_id": "O20261120-002", "amount": "10.00", "reason": "补偿", "case_id": "C-2"}
    headers = {"Idempotency-Key": "refund-C-2"}
    assert sandbox.admin.post("/api/refunds", json=body, headers=headers).status_code == 201
    replay = sandbox.admin.post("/api/refunds", json=body, headers=headers)
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    changed = sandbox.admin.post("/api/refunds", json={**body, "amount": "11.00"}, headers=headers)
    assert changed.status_code == 409
    missing = sandbox.admin.post("/api/refunds", json=body)
    assert missing.status_code == 400 and "Idempotency-Key" in missing.json()["detail"]


def test_answer_lost_after_commit_is_retried_and_pays_once(sandbox):
    sandbox.admin.post("/sandbox/faults", json={"fail_after_commit": 1}).raise_for_status()
    transport = CountingTransport()

    async def scenario():
        async with platform(sandbox, transport=transport) as shop:
            refund = await shop.refund("O20261120-003", Decimal("300.00"), "降价补差", "C-3", "refund-C-3")
            return refund, await shop.list_refunds("O20261120-003")

    refund, listed = run(scenario())
    assert listed == [refund]
    assert transport.sent == 3  # refund (committed, 500), refund again (replayed), list
    assert sandbox.admin.get("/sandbox/state").json()["refunds"] == {"count": 1, "total": "300.00"}


def test_platform_down_gives_up_after_the_configured_retries(sandbox):
    sandbox.admin.post("/sandbox/faults", json={"error_rate": 1}).raise_for_status()
    transport = CountingTransport()

    async def scenario():
        async with platform(sandbox, retries=2, transport=transport) as shop:
            await shop.refund("O20261120-001", Decimal("5.00"), "补偿", "C-4", "refund-C-4")

    with pytest.raises(PlatformUnavailable) as caught:
        run(scenario())
    assert caught.value.status_code == 503 and caught.value.operation == "refund"
    assert transport.sent == 3  # the first try and 2 retries
    sandbox.admin.post("/sandbox/faults", json={}).raise_for_status()
    assert sandbox.admin.get("/sandbox/state").json()["refunds"]["count"] == 0


def test_slow_platform_times_out_and_is_unavailable(sandbox):
    sandbox.admin.post("/sandbox/faults", json={"latency_ms": 400}).raise_for_status()

    async def scenario():
        async with platform(sandbox, timeout=0.1, retries=1) as shop:
            await shop.get_order("O20261120-001")

    with pytest.raises(PlatformUnavailable) as caught:
        run(scenario())
    assert caught.value.status_code is None and "Timeout" in caught.value.detail


def test_refund_above_paid_amount_is_rejected_naming_the_amounts(sandbox):
    async def scenario():
        async with platform(sandbox) as shop:
            await shop.refund("O20261120-001", Decimal("20.00"), "补偿", "C-5", "refund-C-5-a")
            await shop.refund("O20261120-001", Decimal("40.00"), "退货退款", "C-5", "refund-C-5-b")

    with pytest.raises(PlatformRejected) as caught:
        run(scenario())
    assert caught.value.status_code == 422
    for amount in ("40.00", "60.00", "59.00", "already refunded 20.00"):
        assert amount in caught.value.detail


def test_refund_amount_must_be_a_positive_decimal(sandbox):
    async def scenario(amount):
        async with platform(sandbox) as shop:
            await shop.refund("O20261120-001", amount, "补偿", "C-6", f"refund-C-6-{amount}")

    with pytest.raises(TypeError):
        run(scenario(5.0))
    with pytest.raises(PlatformRejected) as caught:
        run(scenario(Decimal("0.00")))
    assert caught.value.status_code == 422 and "positive" in caught.value.detail


# --- re-shipments ------------------------------------------------------------------------------


def test_reshipment_twice_with_one_key_ships_once(sandbox):
    items = [ReshipmentItem(sku="PL-MEM-60", quantity=1)]

    async def scenario():
        async with platform(sandbox) as shop:
            first = await shop.reship("O20261120-002", items, "少发补发", "C-7", "reship-C-7")
            again = await shop.reship("O20261120-002", [{"sku": "PL-MEM-60", "quantity": 1}], "少发补发",
                                      "C-7", "reship-C-7")
            return first, again, await shop.list_reshipments("O20261120-002")

    first, again, listed = run(scenario())
    assert first == again and listed == [first]
    assert (first.carrier, first.status) == ("yuantong", "shipped") and first.waybill

    async def track():
        async with carrier(sandbox) as tracking:
            return await tracking.query(first.carrier, first.waybill)

    assert run(track()).state == 1  # the new parcel has been collected


def test_reshipment_of_more_than_was_ordered_is_rejected(sandbox):
    async def scenario():
        async with platform(sandbox) as shop:
            too_many = [{"sku": "PL-MEM-60", "quantity": 3}]
            await shop.reship("O20261120-002", too_many, "补发", "C-8", "reship-C-8")

    with pytest.raises(PlatformRejected) as caught:
        run(scenario())
    assert caught.value.status_code == 422 and "PL-MEM-60" in caught.value.detail


# --- carrier tracking (Kuaidi100 protocol) -----------------------------------------------------


def test_carrier_query_returns_the_signed_history_newest_first(sandbox):
    async def scenario():
        async with carrier(sandbox) as tracking:
            return await tracking.query("zhongtong", "73154829660123")

    result = run(scenario())
    assert (result.state, result.signed, result.waybill) == (3, True, "73154829660123")
    assert result.latest.status_code == "301" and result.latest.status == "签收"
    assert result.latest.area == "上海,上海市,浦东新区"
    times = [event.time for event in result.events]
    assert times == sorted(times, reverse=True) and times[0].tzinfo is not None
    assert [e.status_code for e in reversed(result.events)][:2] == ["103", "1002"]


def test_carrier_query_with_a_bad_signature_is_refused(sandbox):
    async def scenario():
        async with carrier(sandbox, key="wrong-key") as tracking:
            await tracking.query("zhongtong", "73154829660123")

    with pytest.raises(CarrierError) as caught:
        run(scenario())
    assert caught.value.return_code == "503" and caught.value.message == "验证签名失败"


def test_carrier_wire_shape_and_signature_match_the_kuaidi100_doc(sandbox):
    param = '{"com":"yunda","num":"4312876549201","resultv2":"4"}'
    sign = kuaidi100_sign(param, CARRIER_KEY, CARRIER_CUSTOMER)
    form = {"customer": CARRIER_CUSTOMER, "param": param, "sign": sign}
    body = httpx.post(f"{sandbox.url}/poll/query.do", data=form).json()
    assert {key: body[key] for key in ("message", "status", "state", "ischeck", "nu")} == {
        "message": "ok", "status": "200", "state": "3", "ischeck": "1", "nu": "4312876549201"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", body["data"][0]["ftime"])
    bad = httpx.post(f"{sandbox.url}/poll/query.do", data={**form, "customer": "SOMEONE"}).json()
    assert bad == {"result": False, "returnCode": "503", "message": "验证签名失败"}


def test_unknown_waybill_has_no_record_and_sf_needs_the_phone(sandbox):
    async def scenario(com, num, phone=None):
        async with carrier(sandbox) as tracking:
            return await tracking.query(com, num, phone)

    with pytest.raises(NoTrackingRecord) as caught:
        run(scenario("zhongtong", "000000000000"))
    assert caught.value.return_code == "500"
    with pytest.raises(CarrierError) as caught:
        run(scenario("shunfeng", "SF1402376589014"))
    assert caught.value.return_code == "408"
    signed_by_someone_else = run(scenario("shunfeng", "SF1402376589014", "5604")).latest
    assert signed_by_someone_else.status_code == "303"


def test_parcel_event_lever_moves_the_parcel_and_marks_the_order_delivered(sandbox):
    event = {"state": 3, "status_code": "301", "context": "快件已签收，签收人：本人", "area": "湖北,武汉市,洪山区"}
    sandbox.admin.post("/sandbox/parcels/73154829660147/events", json=event).raise_for_status()

    async def scenario():
        async with carrier(sandbox) as tracking, platform(sandbox) as shop:
            parcel = await tracking.query("zhongtong", "73154829660147")
            return parcel, await shop.get_order("O20261120-006")

    tracking, order = run(scenario())
    assert tracking.state == 3 and tracking.latest.context.startswith("快件已签收")
    assert order.delivered_at is not None


# --- reviews and messages ----------------------------------------------------------------------


def test_reviews_since_are_listed_oldest_first(sandbox):
    added = sandbox.admin.post("/sandbox/reviews", json={
        "order_id": "O20261120-004", "rating": "negative", "text": "净化器噪音很大"})
    assert added.status_code == 201

    async def scenario():
        async with platform(sandbox) as shop:
            return await shop.list_reviews(since=datetime.now(SHANGHAI) - timedelta(hours=30))

    reviews = run(scenario())
    assert [r.order_id for r in reviews] == ["O20261120-002", "O20261120-001", "O20261120-004"]
    assert reviews[-1].customer_id == "C1004" and reviews[-1].rating == "negative"


def test_apprise_json_delivers_into_the_sandbox_inbox_with_the_key_header(sandbox):
    host = sandbox.url.removeprefix("http://")
    notify = apprise.Apprise()
    notify.add(f"json://{host}/sandbox/messages/C1001?+X-Api-Key={API_KEY}")
    assert notify.notify(title="退款已到账", body="您的订单 O20261120-001 已退款 15.00 元")

    without_key = apprise.Apprise()
    without_key.add(f"json://{host}/sandbox/messages/C1001")
    assert not without_key.notify(title="no key", body="refused with 401")

    inbox = sandbox.admin.get("/sandbox/messages/C1001").json()
    assert [(m["title"], m["type"]) for m in inbox] == [("退款已到账", "info")]
    assert "15.00" in inbox[0]["message"] and inbox[0]["payload"]["version"]


# --- seed --------------------------------------------------------------------------------------


def test_seed_covers_the_windows_and_approval_levels():
    now = datetime(2026, 11, 22, 10, 0, tzinfo=SHANGHAI)
    orders = {order.order_id: order for order in seed_orders(now)}
    delivered_days = {oid: (now - o.delivered_at).days for oid, o in orders.items() if o.delivered_at}
    assert delivered_days == {"O20261120-001": 2, "O20261120-002": 2, "O20261120-003": 2,
                              "O20261120-004": 2, "O20261120-005": 12}
    paid = sorted(order.paid_amount for order in orders.values() if order.delivered_at)
    assert paid[0] <= 500 and any(20 < amount <= 500 for amount in paid) and paid[-1] > 500
    statuses = {order.status for order in orders.values()}
    assert statuses >= {"shipped", "completed", "awaiting_shipment", "cancelled"}
    assert any(order.free_shipping for order in orders.values())
    for order in orders.values():
        assert re.fullmatch(r"1[358]\d{9}", order.customer.phone)
        goods = sum(item.unit_price * item.quantity for item in order.items)
        assert order.paid_amount in (goods + order.postage_paid, Decimal("0.00"))


def test_a_detailed_state_folds_back_to_the_main_state():
    # in case the aggregator puts a resultv2 detailed value into ``state`` itself
    from aftersales.integrations.platform import main_state

    assert [main_state(code) for code in ("3", "301", "304", "103", "1002", "501", "12", "14")] == [
        3, 3, 3, 1, 0, 5, 8, 14]
