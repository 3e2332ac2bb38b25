"""The TOP client (Taobao/Tmall ``/router/rest``) against the sandbox's TOP side, over real loopback
HTTP: the signature as PLATFORMS.md works it, every call, a refund walked through its states by the
seller's calls and the buyer's levers, and TOP's error codes as our typed errors."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import ValidationError

from aftersales.domain.settings import DEFAULT_SECRETS, Settings
from aftersales.integrations.platform import (
    NotOffered,
    OrderNotFound,
    OrderStatus,
    PlatformClient,
    PlatformRejected,
    PlatformUnavailable,
    Rating,
    RefundStatus,
    RefundToAgree,
    RefundVersionConflict,
    ReturnAddress,
    TopAuthError,
    TopClient,
    TopNotFound,
    TopRejected,
    TopUnavailable,
    VerificationCodeRequired,
    fen_to_yuan,
    shop_platform,
    top_sign,
    top_time,
    yuan_to_fen,
)
from tests.support.sandbox import start_sandbox

API_KEY = "test-platform-key"
APP_KEY, APP_SECRET, SESSION_KEY = "12345678", "test-top-secret", "test-seller-session"
SHANGHAI = ZoneInfo("Asia/Shanghai")
ADDRESS = ReturnAddress(name="售后仓 周师傅", phone="0571-88196620", address="浙江省杭州市余杭区良睦路 1399 号", postcode="311121")
# the seed orders on TOP: a tid is the order id's digits
T_SHIRT, PILLOW, HEADPHONES, SHOES, PAN, NOTEBOOK = 20261120001, 20261120002, 20261120003, 20261120005, 20261120006, 20261120007


def run(coroutine):
    return asyncio.run(coroutine)


@pytest.fixture(scope="module")
def server():
    url, app, stop = start_sandbox(API_KEY, top_app_key=APP_KEY, top_app_secret=APP_SECRET, top_session_key=SESSION_KEY)
    yield SimpleNamespace(url=url, app=app)
    stop()


@pytest.fixture
def sandbox(server):
    """A freshly seeded sandbox for each test, and a plain HTTP client for its levers (the buyer's side)."""
    with httpx.Client(base_url=server.url, headers={"X-Api-Key": API_KEY}) as admin:
        admin.post("/sandbox/reset", json={"seed": True}).raise_for_status()
        yield SimpleNamespace(url=server.url, admin=admin)


def top(sandbox, **options) -> TopClient:
    options = {"app_key": APP_KEY, "app_secret": APP_SECRET, "session_key": SESSION_KEY, "retries": 2,
               "backoff_base": 0.01, "backoff_cap": 0.05, **options}
    return TopClient(url=f"{sandbox.url}/router/rest", **options)


def call(sandbox, method, *args, **kwargs):
    """One client call in a client of its own: ``call(sandbox, "get_refund", refund_id)``."""
    async def scenario():
        async with top(sandbox) as client:
            return await getattr(client, method)(*args, **kwargs)

    return run(scenario())


def buyer_applies(sandbox, tid: int, fee: str, goods: bool, reason: str = "尺码不合适") -> str:
    answer = sandbox.admin.post("/sandbox/top/refunds", json={"tid": tid, "refund_fee": fee, "has_good_return": goods,
                                                             "reason": reason})
    assert answer.status_code == 201, answer.text
    return answer.json()["refund_id"]


def calls(sandbox) -> dict[str, int]:
    return sandbox.admin.get("/sandbox/top/state").json()["calls"]


# --- the signature and the envelope (PLATFORMS.md §1) ----------------------------------------------


def test_the_signature_is_the_docs_worked_examples():
    pair = {"refund_id": "1234567890", "fields": "refund_id,status"}
    assert top_sign(pair, "test") == "05DD41A2A50DC668C1142DE6D216F08D"
    assert top_sign(pair, "test", "hmac") == "6A3846230F7BD28D56C49A29B79E8906"
    # an empty value and the sign itself are left out
    assert top_sign({**pair, "status": "", "sign": "ignored"}, "test") == "05DD41A2A50DC668C1142DE6D216F08D"
    published = {"app_key": "test", "fields": "nick", "format": "xml", "method": "taobao.user.seller.get", "session": "test",
                 "sign_method": "md5", "timestamp": "2013-05-06 13:52:03", "v": "2.0"}
    assert top_sign(published, "test") == "72CB4D809B375A54502C09360D879C64"


def test_the_envelope_on_the_wire_and_both_placements_accepted(sandbox):
    form = top(sandbox).signed("taobao.trade.fullinfo.get", {"fields": "tid,payment", "tid": str(T_SHIRT)})
    assert {k: form[k] for k in ("method", "app_key", "session", "v", "format", "sign_method")} == {
        "method": "taobao.trade.fullinfo.get", "app_key": APP_KEY, "session": SESSION_KEY, "v": "2.0", "format": "json",
        "sign_method": "md5"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", form["timestamp"])
    sent = datetime.strptime(form["timestamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
    assert abs(datetime.now(SHANGHAI) - sent) < timedelta(seconds=5)  # Beijing time
    assert form["sign"] == top_sign({k: v for k, v in form.items() if k != "sign"}, APP_SECRET)

    in_body = httpx.post(f"{sandbox.url}/router/rest", data=form)
    assert in_body.status_code == 200
    assert in_body.json()["trade_fullinfo_get_response"]["trade"] == {"tid": T_SHIRT, "payment": "59.00"}
    system = {k: v for k, v in form.items() if k not in ("fields", "tid")}  # as the Python SDK: system params in the query
    in_query = httpx.post(f"{sandbox.url}/router/rest", params=system, data={"fields": "tid,payment", "tid": str(T_SHIRT)})
    assert in_query.json()["trade_fullinfo_get_response"]["trade"] == {"tid": T_SHIRT, "payment": "59.00"}
    hmac_form = {**{k: v for k, v in form.items() if k != "sign"}, "sign_method": "hmac"}
    hmac_form["sign"] = top_sign(hmac_form, APP_SECRET, "hmac")
    assert "trade_fullinfo_get_response" in httpx.post(f"{sandbox.url}/router/rest", data=hmac_form).json()


def test_protocol_errors_are_error_responses_with_http_200(sandbox):
    form = top(sandbox).signed("taobao.trade.fullinfo.get", {"fields": "tid", "tid": str(T_SHIRT)})
    unsigned = httpx.post(f"{sandbox.url}/router/rest", data={k: v for k, v in form.items() if k != "sign"})
    assert unsigned.status_code == 200 and unsigned.json()["error_response"]["code"] == 24
    no_method = httpx.post(f"{sandbox.url}/router/rest", data={"app_key": APP_KEY}).json()["error_response"]
    assert (no_method["code"], no_method["msg"]) == (21, "Missing Method")
    as_xml = top(sandbox).signed("taobao.trade.fullinfo.get", {"fields": "tid", "tid": str(T_SHIRT), "format": "xml"})
    assert httpx.post(f"{sandbox.url}/router/rest", data=as_xml).json()["error_response"]["code"] == 23
    unknown = top(sandbox).signed("taobao.nothing.here", {})
    assert httpx.post(f"{sandbox.url}/router/rest", data=unknown).json()["error_response"]["code"] == 22


# --- money: fen on the wire, Decimal yuan here -------------------------------------------------------


def test_fen_and_yuan_convert_exactly_and_refuse_floats():
    assert yuan_to_fen(Decimal("200.07")) == 20007 and yuan_to_fen(Decimal("0.10")) == 10
    assert fen_to_yuan(20007) == Decimal("200.07") and fen_to_yuan("1") == Decimal("0.01")
    with pytest.raises(TypeError):
        yuan_to_fen(200.07)
    with pytest.raises(ValueError):
        yuan_to_fen(Decimal("1.005"))
    with pytest.raises(ValueError):
        fen_to_yuan(12.5)
    documented = RefundToAgree.from_info("43234234|20000|1409294148714")  # PLATFORMS.md's refund_infos example
    assert (documented.amount, documented.version, documented.phase) == (Decimal("200.00"), 1409294148714, None)
    assert RefundToAgree(refund_id="1", amount=Decimal("49.90"), version=7, phase="aftersale").info == "1|4990|7|aftersale"
    with pytest.raises(ValidationError):
        RefundToAgree(refund_id="1", amount=49.9, version=7)


# --- orders, shipments, reviews ----------------------------------------------------------------------


def test_an_order_reads_as_our_order(sandbox):
    order = call(sandbox, "get_order", str(SHOES))
    assert (order.order_id, order.status, order.carrier, order.waybill) == (
        str(SHOES), OrderStatus.COMPLETED, "yunda", "4312876549201")
    assert [(i.sku, i.quantity, i.unit_price) for i in order.items] == [
        ("SH-RUN-42", 1, Decimal("229.00")), ("SK-SPT-3P", 1, Decimal("29.00"))]
    assert (order.paid_amount, order.postage_paid, order.free_shipping) == (Decimal("268.00"), Decimal("10.00"), False)
    assert order.customer.customer_id == "C1005" and order.customer.name == "陈静"
    assert order.shipped_at.tzinfo is not None and order.transaction_success_at is not None
    assert call(sandbox, "get_order", str(PILLOW)).free_shipping

    with pytest.raises(TopNotFound) as caught:
        call(sandbox, "get_order", "99999")
    assert isinstance(caught.value, OrderNotFound) and caught.value.sub_code == "isv.trade-not-exist"


def test_change_waybill_puts_the_new_parcel_on_a_shipped_order_only(sandbox):
    call(sandbox, "change_waybill", str(PAN), "yuantong", "YT7000000001")
    order = call(sandbox, "get_order", str(PAN))
    assert (order.carrier, order.waybill) == ("yuantong", "YT7000000001")
    assert sandbox.admin.get("/api/orders/O20261120-006").json()["waybill"] == "YT7000000001"  # today's API sees it too
    with pytest.raises(TopRejected) as caught:
        call(sandbox, "change_waybill", str(NOTEBOOK), "yuantong", "YT7000000002")
    assert caught.value.sub_code == "isv.logistics-not-consigned"
    with pytest.raises(ValueError, match="no TOP company code"):
        call(sandbox, "change_waybill", str(PAN), "nowhere", "X1")


def test_reviews_read_and_one_explained(sandbox):
    page = call(sandbox, "review_page")
    assert {r.order_id for r in page.reviews} == {str(T_SHIRT), str(PILLOW), str(SHOES)} and page.has_next is False
    [bad] = call(sandbox, "review_page", rating=Rating.NEGATIVE).reviews
    assert (bad.review_id, bad.customer_id, bad.rating) == (f"{SHOES}01", "C1005", Rating.NEGATIVE)  # the oid of line 1
    assert bad.created_at.tzinfo is not None
    reply = "非常抱歉，已安排退货退款 / sorry: a return is arranged"
    call(sandbox, "explain_review", bad.review_id, reply)
    assert sandbox.admin.get("/sandbox/top/state").json()["replies"] == {f"{SHOES}01": reply}
    with pytest.raises(TopNotFound):
        call(sandbox, "explain_review", "123", "?")


# --- refunds through their states ----------------------------------------------------------------------


def test_a_return_walks_from_application_to_success(sandbox):
    before = datetime.now(SHANGHAI) - timedelta(seconds=2)
    refund_id = buyer_applies(sandbox, T_SHIRT, "49.00", goods=True)

    async def seller():
        async with top(sandbox) as client:
            listed = await client.refunds_changed(before, datetime.now(SHANGHAI) + timedelta(seconds=2))
            fresh = await client.get_refund(refund_id)
            reasons = await client.refusal_reasons(refund_id, fresh.phase)
            await client.agree_return(refund_id, ADDRESS, version=fresh.version, phase=fresh.phase)
            return listed, fresh, reasons, await client.get_refund(refund_id)

    listed, fresh, reasons, agreed = run(seller())
    assert [(r.refund_id, r.version) for r in listed.refunds] == [(refund_id, None)]  # the list carries no version
    assert (fresh.status, fresh.goods_returned, fresh.amount, fresh.order_id, fresh.buyer_id) == (
        RefundStatus.WAIT_SELLER_AGREE, True, Decimal("49.00"), str(T_SHIRT), "C1001")
    assert timedelta(days=5) - timedelta(minutes=1) < fresh.deadline - fresh.created_at <= timedelta(days=5)
    assert [r.reason_id for r in reasons] == [201, 202] and reasons[0].tips
    assert agreed.status == RefundStatus.WAIT_BUYER_RETURN_GOODS and agreed.version > fresh.version
    assert agreed.return_address == ADDRESS.text

    parcel = {"company_name": "中通快递", "sid": "ZT9100000001"}
    shipped = sandbox.admin.post(f"/sandbox/top/refunds/{refund_id}/waybill", json=parcel)
    assert shipped.json()["status"] == "WAIT_SELLER_CONFIRM_GOODS"

    async def warehouse():
        async with top(sandbox) as client:
            arrived = await client.get_refund(refund_id)
            await client.confirm_inspection(refund_id, version=arrived.version, phase=arrived.phase, operator="S004 刘洋",
                                            message="验货通过 / inspection passed")
            message = await client.leave_refund_message(refund_id, "已收到退货，正在退款", image=b"\x89PNG\r\n\x1a\n-photo")
            still = await client.get_refund(refund_id)
            agreement = await client.agree_refund(refund_id, still.amount, version=still.version, phase=still.phase)
            return arrived, still, message, agreement, await client.get_refund(refund_id)

    arrived, still, message, agreement, done = run(warehouse())
    assert (arrived.status, arrived.return_carrier, arrived.return_waybill) == ("WAIT_SELLER_CONFIRM_GOODS", *parcel.values())
    assert arrived.goods_status == "BUYER_RETURNED_GOODS"
    assert (still.status, still.version) == (arrived.status, arrived.version)  # review and message change no state
    assert message.message_id and message.created_at is not None
    assert agreement.msg_code == "OP_SUCC" and agreement.results[refund_id][0] is True
    assert done.status == RefundStatus.SUCCESS and done.deadline is None

    state = sandbox.admin.get("/sandbox/top/state").json()["refunds"][0]
    assert [(step["status"], step["by"]) for step in state["history"]] == [
        ("WAIT_SELLER_AGREE", "buyer"), ("WAIT_BUYER_RETURN_GOODS", "seller"), ("WAIT_SELLER_CONFIRM_GOODS", "buyer"),
        ("SUCCESS", "seller")]
    assert state["review"]["result"] is True and state["messages"][0]["image"] == len(b"\x89PNG\r\n\x1a\n-photo")
    # the platform paid the buyer: today's API lists the payment
    paid = sandbox.admin.get("/api/refunds", params={"order_id": "O20261120-001"}).json()
    assert [(r["amount"], r["case_id"], r["status"]) for r in paid] == [("49.00", f"TOP-{refund_id}", "paid")]


def test_a_refusal_with_a_platform_reason_then_the_buyer_cancels(sandbox):
    refund_id = buyer_applies(sandbox, HEADPHONES, "100.00", goods=False, reason="降价补差")
    fresh = call(sandbox, "get_refund", refund_id)
    [reason, _] = call(sandbox, "refusal_reasons", refund_id, fresh.phase)
    call(sandbox, "refuse_refund", refund_id, "商品未降价，不符合补差条件", version=fresh.version, phase=fresh.phase,
         reason_id=reason.reason_id, proof=b"GIF89a-screenshot")
    assert call(sandbox, "get_refund", refund_id).status == RefundStatus.SELLER_REFUSE_BUYER
    sandbox.admin.post(f"/sandbox/top/refunds/{refund_id}/cancel").raise_for_status()
    closed = call(sandbox, "get_refund", refund_id)
    assert closed.status == RefundStatus.CLOSED and closed.deadline is None


def test_returned_goods_refused_with_a_proof_picture(sandbox):
    refund_id = buyer_applies(sandbox, T_SHIRT, "49.00", goods=True)
    fresh = call(sandbox, "get_refund", refund_id)
    call(sandbox, "agree_return", refund_id, ADDRESS, version=fresh.version, phase=fresh.phase)
    parcel = {"company_name": "圆通速递", "sid": "YT1"}
    sandbox.admin.post(f"/sandbox/top/refunds/{refund_id}/waybill", json=parcel).raise_for_status()
    arrived = call(sandbox, "get_refund", refund_id)
    call(sandbox, "refuse_return", refund_id, version=arrived.version, phase=arrived.phase, proof=b"\xff\xd8\xff-jpeg",
         reason_id=201)
    assert call(sandbox, "get_refund", refund_id).status == RefundStatus.SELLER_REFUSE_BUYER


def test_a_stale_version_is_a_conflict_and_the_reread_shows_the_platforms_action(sandbox):
    """The seller decides on what it read; meanwhile the platform's deadline passed and it agreed by itself."""
    refund_id = buyer_applies(sandbox, T_SHIRT, "49.00", goods=True)
    read = call(sandbox, "get_refund", refund_id)
    sandbox.admin.post(f"/sandbox/top/refunds/{refund_id}/timeout").raise_for_status()

    with pytest.raises(RefundVersionConflict) as caught:
        call(sandbox, "agree_return", refund_id, ADDRESS, version=read.version, phase=read.phase)
    assert isinstance(caught.value, PlatformRejected) and caught.value.sub_code == "isv.refund-version-expired"
    assert "read it again" in str(caught.value)
    again = call(sandbox, "get_refund", refund_id)
    assert again.status == RefundStatus.WAIT_BUYER_RETURN_GOODS and again.version > read.version
    assert again.return_address  # the platform gave the shop's address
    history = sandbox.admin.get("/sandbox/top/state").json()["refunds"][0]["history"]
    assert history[-1]["by"] == "platform"


def test_an_agreement_repeated_after_it_went_through_is_a_conflict_not_a_second_payment(sandbox):
    refund_id = buyer_applies(sandbox, PILLOW, "64.00", goods=False)
    read = call(sandbox, "get_refund", refund_id)
    call(sandbox, "agree_refund", refund_id, Decimal("64.00"), version=read.version, phase=read.phase)
    with pytest.raises(RefundVersionConflict):  # as a retry after a lost answer would send it
        call(sandbox, "agree_refund", refund_id, Decimal("64.00"), version=read.version, phase=read.phase)
    assert sandbox.admin.get("/sandbox/state").json()["refunds"] == {"count": 1, "total": "64.00"}


def test_the_platforms_timeout_refunds_a_refund_only_by_itself(sandbox):
    refund_id = buyer_applies(sandbox, PILLOW, "30.00", goods=False)
    answered = sandbox.admin.post(f"/sandbox/top/refunds/{refund_id}/timeout").json()
    assert answered["status"] == "SUCCESS" and answered["history"][-1]["by"] == "platform"
    assert call(sandbox, "get_refund", refund_id).status == RefundStatus.SUCCESS
    assert sandbox.admin.get("/sandbox/state").json()["refunds"] == {"count": 1, "total": "30.00"}


def test_a_large_refund_waits_for_the_sellers_sms_code(sandbox):
    sandbox.admin.post("/sandbox/top/knobs", json={"sms_code_above": "500.00"}).raise_for_status()
    refund_id = buyer_applies(sandbox, HEADPHONES, "887.00", goods=False, reason="质量问题")
    read = call(sandbox, "get_refund", refund_id)

    with pytest.raises(VerificationCodeRequired) as caught:
        call(sandbox, "agree_refund", refund_id, Decimal("887.00"), version=read.version, phase=read.phase)
    [pending] = caught.value.refunds  # what the repeat needs
    assert (pending.refund_id, pending.amount, pending.version) == (refund_id, Decimal("887.00"), read.version)
    [sms] = sandbox.admin.get("/sandbox/messages/seller-sms").json()
    code = sms["payload"]["code"]
    with pytest.raises(VerificationCodeRequired) as wrong:
        call(sandbox, "agree_refunds", caught.value.refunds, sms_code="000000" if code != "000000" else "111111")
    assert wrong.value.sub_code == "isv.refund-sms-code-invalid"
    assert call(sandbox, "get_refund", refund_id).status == RefundStatus.WAIT_SELLER_AGREE

    agreement = call(sandbox, "agree_refunds", caught.value.refunds, sms_code=code)
    assert agreement.results == {refund_id: (True, agreement.results[refund_id][1])}
    assert call(sandbox, "get_refund", refund_id).status == RefundStatus.SUCCESS
    assert calls(sandbox)["taobao.rp.refunds.agree"] == 3  # none of the refusals was retried


def test_a_business_refusal_is_final_and_not_retried(sandbox):
    refund_id = buyer_applies(sandbox, PILLOW, "64.00", goods=False)
    read = call(sandbox, "get_refund", refund_id)
    with pytest.raises(TopRejected) as caught:
        call(sandbox, "agree_refund", refund_id, Decimal("63.99"), version=read.version, phase=read.phase)
    assert isinstance(caught.value, PlatformRejected) and not isinstance(caught.value, PlatformUnavailable)
    assert (caught.value.code, caught.value.sub_code) == (15, "isv.refund-amount-invalid") and "6400" in str(caught.value)

    unshipped = buyer_applies(sandbox, NOTEBOOK, "20.00", goods=False)
    fresh = call(sandbox, "get_refund", unshipped)
    with pytest.raises(TopRejected) as caught:
        call(sandbox, "refuse_refund", unshipped, "不同意退款", version=fresh.version, phase=fresh.phase)
    assert caught.value.sub_code == "isv.refund-refuse-not-allowed"
    with pytest.raises(TopRejected) as caught:
        call(sandbox, "agree_return", unshipped, ADDRESS, version=fresh.version, phase=fresh.phase)
    assert caught.value.sub_code == "isv.refund-status-not-allowed"
    counted = calls(sandbox)
    decisions = ("taobao.rp.refunds.agree", "taobao.refund.refuse", "taobao.rp.returngoods.agree")
    assert [counted[method] for method in decisions] == [1, 1, 1]


# --- who we are: TOP's codes, and the setting to check ----------------------------------------------


@pytest.mark.parametrize(("options", "code", "setting"), [
    ({"app_secret": "not-the-secret"}, 25, "AFTERSALES_TOP_APP_SECRET"),
    ({"app_key": "87654321"}, 29, "AFTERSALES_TOP_APP_KEY"),
    ({"session_key": ""}, 26, "AFTERSALES_TOP_SESSION_KEY"),
    ({"session_key": "revoked-session"}, 27, "AFTERSALES_TOP_SESSION_KEY"),
    ({"clock": lambda: datetime.now(SHANGHAI) - timedelta(minutes=11)}, 31, None),
])
def test_who_we_are_errors_name_what_to_check_and_are_not_retried(sandbox, options, code, setting):
    async def scenario():
        async with top(sandbox, **options) as client:
            await client.get_refund("160000000001")

    with pytest.raises(TopAuthError) as caught:
        run(scenario())
    assert caught.value.code == code and caught.value.setting == setting
    assert isinstance(caught.value, PlatformRejected)
    if setting:
        assert f"check {setting}" in str(caught.value)
    else:  # the timestamp: this machine's clock
        assert caught.value.sub_code == "isv.timestamp-limit-error" and "clock" in str(caught.value)
    assert calls(sandbox) == {"taobao.refund.get": 1}


def test_app_call_limited_is_retried_then_unavailable(sandbox):
    sandbox.admin.post("/sandbox/top/knobs", json={"call_limited": 2}).raise_for_status()
    assert call(sandbox, "get_order", str(T_SHIRT)).order_id == str(T_SHIRT)  # 2 limited, the third through
    assert calls(sandbox) == {"taobao.trade.fullinfo.get": 3}

    sandbox.admin.post("/sandbox/top/knobs", json={"call_limited": 5}).raise_for_status()
    with pytest.raises(TopUnavailable) as caught:
        call(sandbox, "get_order", str(T_SHIRT))
    assert isinstance(caught.value, PlatformUnavailable) and caught.value.code == 7
    assert "after 3 attempts" in str(caught.value)
    assert calls(sandbox) == {"taobao.trade.fullinfo.get": 6}


def test_a_platform_down_is_unavailable_after_the_retries(sandbox):
    sandbox.admin.post("/sandbox/faults", json={"error_rate": 1}).raise_for_status()
    with pytest.raises(PlatformUnavailable) as caught:
        call(sandbox, "get_order", str(T_SHIRT))
    assert caught.value.status_code == 503 and caught.value.operation == "taobao.trade.fullinfo.get"
    sandbox.admin.post("/sandbox/faults", json={}).raise_for_status()


# --- the order feed: taobao.trades.sold.increment.get (PLATFORMS.md §5) ----------------------------------


class StoppedClock:
    """The sandbox's and the client's "now", moved on by the test: the platform stamps an order's
    ``modified`` with it, so the test places orders in the windows it wants."""

    def __init__(self):
        self.moment = datetime.now(SHANGHAI).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture(scope="module")
def feed_server():
    clock = StoppedClock()
    url, app, stop = start_sandbox(API_KEY, seed=False, now=clock, top_app_key=APP_KEY, top_app_secret=APP_SECRET,
                                   top_session_key=SESSION_KEY)
    yield SimpleNamespace(url=url, app=app, clock=clock)
    stop()


@pytest.fixture
def feed(feed_server):
    """An empty sandbox on a clock of the test's (started at the real now)."""
    feed_server.clock.moment = datetime.now(SHANGHAI).replace(microsecond=0)
    with httpx.Client(base_url=feed_server.url, headers={"X-Api-Key": API_KEY}) as admin:
        admin.post("/sandbox/reset", json={"seed": False}).raise_for_status()
        yield SimpleNamespace(url=feed_server.url, admin=admin, clock=feed_server.clock)


def feed_client(feed, **options) -> TopClient:
    return top(feed, clock=feed.clock, **options)


def put_order(feed, number: int, at: datetime, *, status: str = "shipped", carrier: str = "zhongtong") -> str:
    """Order ``F…number`` (tid = its digits) created or changed at the platform at ``at``; the tid as text."""
    from sandbox_platform.app import seed_orders

    feed.clock.moment = at
    order = seed_orders(at)[0].model_dump(mode="json")
    shipped = status not in ("awaiting_shipment", "cancelled")  # cancelled: before it shipped
    order.update(order_id=f"F{number:06d}", status=status, carrier=carrier if shipped else None,
                 waybill=f"ZT{number:010d}" if shipped else None, shipped_at=(at - timedelta(hours=6)).isoformat() if shipped else None,
                 delivered_at=None, transaction_success_at=None)
    feed.admin.post("/sandbox/orders", json=order).raise_for_status()
    return str(number)


def read_feed(feed, since: datetime, limit: int, **options) -> list:
    """Every page of the feed from ``since``, each page read by a client of its own (the cursor is all it carries)."""
    async def scenario():
        pages, after = [], None
        while True:
            async with feed_client(feed, **options) as client:
                page = await client.list_shipped_orders(after=after, limit=limit, modified_since=since)
            pages.append(page)
            if page.next is None:
                return pages
            after = page.next

    return run(scenario())


class ChangeDuringFeed(httpx.AsyncBaseTransport):
    """Loopback HTTP as usual; right after the feed call number ``after_calls`` is answered, ``change()``
    runs (a lever on the sandbox): the platform changes an order while the client is paging."""

    def __init__(self, after_calls: int, change):
        self.inner, self.after_calls, self.change, self.feed_calls = httpx.AsyncHTTPTransport(), after_calls, change, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()
        if b"taobao.trades.sold.increment.get" in request.content:
            self.feed_calls += 1
            if self.feed_calls == self.after_calls:
                self.change()
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_a_feed_window_over_a_day_is_refused_with_tops_parameter_error(feed):
    client = feed_client(feed)
    day = {"fields": "tid,modified", "start_modified": "2026-11-20 00:00:00", "end_modified": "2026-11-21 00:00:01"}
    answer = httpx.post(f"{feed.url}/router/rest", data=client.signed("taobao.trades.sold.increment.get", day)).json()
    assert (answer["error_response"]["code"], answer["error_response"]["sub_code"]) == (41, "isv.invalid-parameter:end_modified")
    exactly_a_day = {**day, "end_modified": "2026-11-21 00:00:00"}
    answer = httpx.post(f"{feed.url}/router/rest", data=client.signed("taobao.trades.sold.increment.get", exactly_a_day)).json()
    assert answer["trades_sold_increment_get_response"]["trades"] == {"trade": []}
    assert answer["trades_sold_increment_get_response"]["total_results"] == 0

    async def ask(params):
        async with feed_client(feed) as top_client:
            return await top_client._call("taobao.trades.sold.increment.get", params)

    with pytest.raises(TopRejected) as caught:
        run(ask({**day, "start_modified": datetime(2026, 11, 20, tzinfo=SHANGHAI),
                 "end_modified": datetime(2026, 11, 21, 0, 0, 1, tzinfo=SHANGHAI)}))
    assert caught.value.code == 41 and caught.value.sub_code == "isv.invalid-parameter:end_modified"
    with pytest.raises(TopRejected) as caught:
        run(ask({"fields": "tid", "end_modified": "2026-11-21 00:00:00"}))
    assert caught.value.code == 40  # start_modified is required
    with pytest.raises(TopRejected) as caught:
        run(ask({**exactly_a_day, "page_size": 101}))
    assert caught.value.sub_code == "isv.invalid-parameter:page_size"
    assert calls(feed) == {"taobao.trades.sold.increment.get": 5}


def test_the_feed_lists_newest_change_first_with_has_next_or_total(feed):
    now = feed.clock()
    for number in range(1, 4):
        put_order(feed, number, now - timedelta(minutes=10 - number))
    feed.clock.moment = now
    client = feed_client(feed)
    window = {"fields": "tid,modified,status,orders", "start_modified": top_time(now - timedelta(hours=1)),
              "end_modified": top_time(now), "page_size": "2"}
    first = httpx.post(f"{feed.url}/router/rest", data=client.signed("taobao.trades.sold.increment.get",
                                                                     {**window, "use_has_next": "true"})).json()
    body = first["trades_sold_increment_get_response"]
    assert [t["tid"] for t in body["trades"]["trade"]] == [3, 2] and body["has_next"] is True and "total_results" not in body
    last = httpx.post(f"{feed.url}/router/rest", data=client.signed("taobao.trades.sold.increment.get",
                                                                    {**window, "page_no": "2"})).json()
    body = last["trades_sold_increment_get_response"]
    assert [t["tid"] for t in body["trades"]["trade"]] == [1] and body["total_results"] == 3 and "has_next" not in body
    (trade,) = body["trades"]["trade"]
    assert trade["status"] == "WAIT_BUYER_CONFIRM_GOODS" and trade["orders"]["order"][0]["logistics_company"] == "中通快递"


def test_the_feed_gives_every_shipped_order_once_across_windows_and_pages(feed):
    now = feed.clock()
    start = now - timedelta(days=3)
    expected = []
    # day 1 (more than a page holds), day 2, the last hour; with orders that have not shipped among them
    for n in range(5):
        expected.append(put_order(feed, 100 + n, start + timedelta(hours=2, minutes=n)))
    put_order(feed, 199, start + timedelta(hours=3), status="awaiting_shipment")
    for n in range(4):
        expected.append(put_order(feed, 200 + n, start + timedelta(days=1, hours=20, seconds=n)))
    for n in range(3):
        expected.append(put_order(feed, 300 + n, now - timedelta(minutes=30 - n), status="completed" if n else "shipped"))
    put_order(feed, 399, now - timedelta(minutes=5), status="cancelled")
    feed.clock.moment = now

    pages = read_feed(feed, start, limit=4, feed_page_size=2)
    orders = [order for page in pages for order in page.orders]
    assert [o.order_id for o in orders] == expected  # each once, oldest change first, the unshipped left out
    assert len(pages) >= 3 and all(len(page.orders) <= 4 for page in pages)
    assert [o.modified_at for o in orders] == sorted(o.modified_at for o in orders)
    first = orders[0]
    assert first.modified_at == start + timedelta(hours=2) and first.modified_at.tzinfo is not None
    assert first.shipped_at == start - timedelta(hours=4)
    assert (first.carrier, first.waybill, first.status) == ("zhongtong", "ZT0000000100", OrderStatus.SHIPPED)
    assert first.customer.phone == "13812345601" and first.paid_amount == Decimal("59.00")
    assert orders[-1].status == OrderStatus.COMPLETED
    # TOP's rule held on every call: no window over a day (else the sandbox refused it above)
    assert calls(feed)["taobao.trades.sold.increment.get"] >= 4

    # shipped_since alone walks from it too, and keeps the orders shipped at or after it
    async def shipped_since():
        async with feed_client(feed) as client:
            return await client.list_shipped_orders(now - timedelta(hours=12), limit=100)

    page = run(shipped_since())
    assert [o.order_id for o in page.orders] == expected[-3:] and page.next is None


def test_an_order_changed_while_the_window_is_paged_is_not_lost_nor_any_other(feed):
    """Seven orders in a window that has ended, two to a TOP page. After the second call the newest
    one changes at the platform: it leaves the window and the older ones move up a place. Paging
    forwards, the one that moved onto page 1 would be skipped; backwards, none is."""
    now = feed.clock()
    ids = [put_order(feed, 400 + n, now - timedelta(hours=2) + timedelta(minutes=n)) for n in range(7)]
    feed.clock.moment = now
    changed = ids[-1]

    def change():
        feed.clock.moment = now + timedelta(seconds=5)
        order = feed.admin.get(f"/api/orders/F{int(changed):06d}").json()
        feed.admin.post("/sandbox/orders", json={**order, "waybill": "ZT9999999999"}).raise_for_status()

    async def walk(since, transport=None):
        async with feed_client(feed, **({"transport": transport} if transport else {}), feed_page_size=2) as client:
            return await client.list_shipped_orders(after=None, limit=100, modified_since=since)

    first = run(walk(now - timedelta(hours=3), ChangeDuringFeed(2, change)))
    assert sorted(o.order_id for o in first.orders) == sorted(ids[:-1])  # the six unchanged, none skipped
    assert first.next is None
    # the change itself comes with the next read, from the newest change read (as the tracker's checkpoint)
    second = run(walk(max(o.modified_at for o in first.orders)))
    assert changed in [o.order_id for o in second.orders]
    again = next(o for o in second.orders if o.order_id == changed)
    assert again.waybill == "ZT9999999999" and again.modified_at == now + timedelta(seconds=5)


def test_an_order_changed_within_the_windows_last_second_pushes_none_out(feed):
    """The window that ends now can gain an order at its top: changed at this very second, the oldest
    order jumps to the top and pushes the bottom of an unread page onto a page already read. The
    client sees the tid come back with another ``modified`` and pages the window again."""
    now = feed.clock()
    ids = [put_order(feed, 500 + n, now - timedelta(hours=2) + timedelta(minutes=n)) for n in range(7)]
    feed.clock.moment = now
    oldest = ids[0]

    def change():  # at the walk's last second: the order stays in its window, at the top
        order = feed.admin.get(f"/api/orders/F{int(oldest):06d}").json()
        feed.admin.post("/sandbox/orders", json={**order, "waybill": "ZT8888888888"}).raise_for_status()

    async def walk():
        async with feed_client(feed, transport=ChangeDuringFeed(2, change), feed_page_size=2) as client:
            return await client.list_shipped_orders(limit=100, modified_since=now - timedelta(hours=3))

    page = run(walk())
    assert sorted(o.order_id for o in page.orders) == sorted(ids)
    assert [o.order_id for o in page.orders][-1] == oldest  # once, with its latest change
    assert next(o for o in page.orders if o.order_id == oldest).waybill == "ZT8888888888"


def test_a_foreign_or_naive_feed_request_is_refused_before_any_call(feed):
    async def ask(**kwargs):
        async with feed_client(feed) as client:
            return await client.list_shipped_orders(**kwargs)

    for kwargs in ({}, {"modified_since": datetime(2026, 11, 20)}, {"modified_since": feed.clock(), "after": "2026-11-20|X"}):
        with pytest.raises(ValueError):
            run(ask(**kwargs))
    assert calls(feed) == {}


# --- settings -----------------------------------------------------------------------------------------------


def test_settings_default_to_the_sandbox_and_production_refuses_the_built_in_top_secrets(monkeypatch):
    for name in ("AFTERSALES_PLATFORM", "AFTERSALES_TOP_APP_SECRET", "AFTERSALES_TOP_SESSION_KEY", "AFTERSALES_TOP_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert (settings.platform, settings.top_url) == ("gateway", "http://127.0.0.1:8765/router/rest")
    assert settings.top_app_secret.get_secret_value() == DEFAULT_SECRETS["top_app_secret"]

    shop_keys = {"AFTERSALES_ENVIRONMENT": "production", "AFTERSALES_API_KEY": "k3y-of-the-shop",
                 "AFTERSALES_PLATFORM_API_KEY": "gateway-key-of-the-shop", "AFTERSALES_EVENT_SECRET": "event-secret-of-the-shop",
                 "AFTERSALES_CARRIER_KEY": "kd100-key-of-the-shop", "AFTERSALES_CARRIER_PUSH_SALT": "salt-of-the-shop"}
    for name, value in shop_keys.items():
        monkeypatch.setenv(name, value)
    assert Settings(_env_file=None).platform == "gateway"  # a gateway shop sets no TOP secret
    monkeypatch.setenv("AFTERSALES_PLATFORM", "taobao")
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None)
    assert "AFTERSALES_TOP_APP_SECRET" in str(refused.value) and "AFTERSALES_TOP_SESSION_KEY" in str(refused.value)
    monkeypatch.setenv("AFTERSALES_TOP_APP_SECRET", "app-secret-of-the-shop")
    monkeypatch.setenv("AFTERSALES_TOP_SESSION_KEY", "session-of-the-seller")
    assert Settings(_env_file=None).platform == "taobao"


# --- the shop platform interface, TOP backend -------------------------------------------------------


def test_the_shop_platform_on_taobao_is_the_top_client_reading_what_the_processes_read(sandbox):
    settings = Settings(_env_file=None, platform="taobao", top_url=f"{sandbox.url}/router/rest", top_app_key=APP_KEY,
                        top_app_secret=APP_SECRET, top_session_key=SESSION_KEY, platform_retries=0)
    gateway = Settings(_env_file=None, platform_url=sandbox.url, platform_api_key=API_KEY)
    refund_id = buyer_applies(sandbox, PILLOW, "128.00", goods=False)  # refund only: agreed, it is paid
    buyer_applies(sandbox, T_SHIRT, "49.00", goods=True)

    async def scenario():
        async with shop_platform(settings=settings) as platform:
            fresh = await platform.get_refund(refund_id)
            await platform.agree_refund(refund_id, fresh.amount, version=fresh.version, phase=fresh.phase)
            return (await platform.get_order(str(PILLOW)), await platform.get_return_address(str(PILLOW)),
                    await platform.list_refunds(str(PILLOW)), await platform.list_refunds(str(T_SHIRT)),
                    await platform.list_reviews(), type(platform))

    order, address, refunds, none_paid, reviews, backend = run(scenario())
    assert backend is TopClient
    assert (order.order_id, order.paid_amount) == (str(PILLOW), Decimal("128.00"))
    assert address.text == ReturnAddress(name=settings.top_return_name, phone=settings.top_return_phone,
                                         address=settings.top_return_address, postcode=settings.top_return_postcode).text
    assert [(r.refund_id, r.amount, r.kind, r.status) for r in refunds] == [(refund_id, Decimal("128.00"), "goods", "paid")]
    assert none_paid == []  # the T-shirt's refund is applied for, not paid
    assert [r.created_at for r in reviews] == sorted(r.created_at for r in reviews)  # oldest first
    assert {r.order_id for r in reviews} == {str(T_SHIRT), str(PILLOW), str(SHOES)}
    assert isinstance(shop_platform(settings=gateway), PlatformClient)


def test_what_taobao_does_not_offer_is_refused_naming_where_to_do_it_and_calls_nothing(sandbox):
    settings = Settings(_env_file=None, platform="taobao", top_url=f"{sandbox.url}/router/rest", top_app_key=APP_KEY,
                        top_app_secret=APP_SECRET, top_session_key=SESSION_KEY)
    calls_before = sandbox.admin.get("/sandbox/top/state").json()["calls"]
    attempts = {
        "refund": lambda p: p.refund(str(PILLOW), Decimal("10.00"), "补偿", "c-1", "k-1"),
        "reship": lambda p: p.reship(str(PILLOW), [{"sku": "PILLOW-01", "quantity": 1}], "补发", "c-1", "k-2"),
        "charge": lambda p: p.charge(str(PILLOW), Decimal("5.00"), "差价", "c-1", "k-3"),
        "coupon": lambda p: p.issue_coupon(str(PILLOW), Decimal("5.00"), "补偿", "c-1", "k-4"),
        "report review": lambda p: p.report_review(f"{SHOES}01", "恶意", "截图", "c-1", "k-5"),
        "stock": lambda p: p.get_stock("PILLOW-01"),
    }

    async def attempt(operation):
        async with shop_platform(settings=settings) as platform:
            await attempts[operation](platform)

    for operation in attempts:
        with pytest.raises(NotOffered) as refused:
            run(attempt(operation))
        assert isinstance(refused.value, PlatformRejected) and refused.value.operation == operation  # final: not retried
        assert "not offered" in str(refused.value)
    assert "Qianniu" in str(pytest.raises(NotOffered, run, attempt("refund")).value)
    assert sandbox.admin.get("/sandbox/top/state").json()["calls"] == calls_before
