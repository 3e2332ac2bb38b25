"""Returns that start and move at Taobao/Tmall (TOP) on the real stack: the buyer applies at the
platform, ``platform-sync`` opens the case and feeds it the buyer's waybill, the seller's decisions
go back to the platform on the refund's version, a large refund waits for the seller's SMS code and
is paid once, the platform's own deadline is recorded as ``platform``, a cancelled refund closes
its case, and a decision made on a stale version is read again and taken again."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlmodel import delete, select

from aftersales.domain.details import ReturnDetails, details_of
from aftersales.domain.models import Case, Checkpoint, TrackedOrder
from aftersales.integrations.db import session_scope
from aftersales.integrations.platform import PlatformRejected, RefundStatus, TopClient
from tests.support.records import events, ledger


@pytest.fixture(scope="module")
def taobao(stack):
    """This process runs platform-sync as a Taobao shop's would (AFTERSALES_PLATFORM=taobao); the
    served case runs decide a refund applied for at the platform there, whatever the setting."""
    from aftersales.domain.settings import get_settings

    patch = pytest.MonkeyPatch()
    patch.setenv("AFTERSALES_PLATFORM", "taobao")
    get_settings.cache_clear()
    yield
    patch.undo()
    get_settings.cache_clear()


def sync(stack) -> dict:
    from aftersales.flows.platform_sync import platform_sync

    return stack.run(platform_sync())


def top_order(stack, paid: str, **options) -> tuple[dict, int]:
    """An order whose TOP tid is unique: the digits of its id (``options`` go to ``make_order``)."""
    digits = f"{uuid.uuid4().int % 10**9:09d}"
    order = stack.make_order(paid=paid, order_id=f"T{datetime.now(timezone.utc):%Y%m%d}-{digits}", **options)
    return order, int(f"{datetime.now(timezone.utc):%Y%m%d}{digits}")


def apply(stack, tid: int, amount: str, goods_back: bool) -> dict:
    return stack.sandbox("POST", "/sandbox/top/refunds", json={"tid": tid, "refund_fee": amount, "has_good_return": goods_back,
                                                               "reason": "七天无理由退货", "desc": "尺码不合适 wrong size"})


def at_platform(stack, refund_id: str) -> dict:
    return next(r for r in stack.sandbox("GET", "/sandbox/top/state")["refunds"] if r["refund_id"] == refund_id)


def case_of(tid: int, refund_id: str) -> str:
    return f"return-{tid}-tb{refund_id}"


def test_a_return_applied_for_at_taobao_is_decided_there_and_paid_once_after_the_sms_code(stack, sandbox_clean, team, taobao):
    stack.sandbox("POST", "/sandbox/top/knobs", json={"sms_code_above": "100.00"})
    agreed_before = stack.sandbox("GET", "/sandbox/top/state")["calls"].get("taobao.rp.refunds.agree", 0)
    order, tid = top_order(stack, "128.00")
    refund = apply(stack, tid, "128.00", goods_back=True)
    case_id = case_of(tid, refund["refund_id"])

    assert sync(stack)["opened"] == 1
    review = stack.waiting(case_id, "seller-review")
    platform_deadline = datetime.fromisoformat(at_platform(stack, refund["refund_id"])["refund_remind_timeout"]["timeout"].replace(" ", "T") + "+08:00")
    assert review.deadline == platform_deadline  # the platform's 5 days ran from the application: earlier than ours
    assert "the platform's deadline" in review.default_action
    assert sync(stack).get("opened", 0) == 0  # read again through the overlap: no second case

    stack.approve(case_id, "seller-review", team["S002"], decision="agree")
    stack.waiting(case_id, "buyer-shipment")
    assert at_platform(stack, refund["refund_id"])["status"] == RefundStatus.WAIT_BUYER_RETURN_GOODS
    assert "华志路" in at_platform(stack, refund["refund_id"])["address"]  # agreed with the warehouse's address

    stack.sandbox("POST", f"/sandbox/top/refunds/{refund['refund_id']}/waybill", json={"company_name": "中通快递", "sid": "ZT20261206001"})
    assert sync(stack)["buyer-shipped"] == 1
    stack.waiting(case_id, "receipt")
    shipped = [e for e in events(case_id) if e.action == "parcel.shipped"]
    assert [(e.actor, e.details["carrier"], e.details["tracking_number"]) for e in shipped] == [("buyer", "zhongtong", "ZT20261206001")]

    stack.approve(case_id, "receipt", team["S004"], note="包裹完好")
    partial = stack.approve(case_id, "inspection", team["S004"], result="partial", refund_amount="100.00", note="吊牌缺失")
    assert partial.status == "rejected" and "as the buyer asked or refused" in partial.reason  # TOP agrees the whole refund or none
    stack.approve(case_id, "inspection", team["S004"], result="pass", refund_amount="128.00", note="验货通过")
    # 128.00 is above the shop's SMS threshold: the platform sent the code to the seller's phone
    sms = stack.waiting(case_id, "sms-code-1")
    assert sms.addressed_to == "supervisor"
    [message] = stack.sandbox("GET", "/sandbox/messages/seller-sms")[-1:]
    stack.approve(case_id, "sms-code-1", team["S005"], sms_code=message["payload"]["code"])

    assert stack.finished(case_id).outcome == "refunded"
    assert at_platform(stack, refund["refund_id"])["status"] == RefundStatus.SUCCESS
    assert at_platform(stack, refund["refund_id"])["review"] == {"operator": team["S004"], "message": "验货通过", "result": True}
    calls = stack.sandbox("GET", "/sandbox/top/state")["calls"]
    assert calls["taobao.rp.refunds.agree"] - agreed_before == 2  # asked without the code, then once with it
    paid = [r for r in stack.refunds(order["order_id"]) if r["case_id"] == f"TOP-{refund['refund_id']}"]
    assert [Decimal(r["amount"]) for r in paid] == [Decimal("128.00")]  # the platform paid once
    lines = [line for line in ledger(case_id) if line.platform_paid]
    assert [(line.platform_ref, line.amount) for line in lines] == [(refund["refund_id"], Decimal("128.00"))]
    # the buyer is told on the refund (TOP encrypts their phone): the address to send to, the refund paid
    told = [message["content"] for message in at_platform(stack, refund["refund_id"])["messages"]]
    assert any("华志路" in text for text in told) and any("128.00" in text for text in told), told
    assert all(len(text.encode()) <= 400 for text in told)
    assert stack.customer_messages(order) == []  # nothing to a channel made of the buyer's (encrypted) contact


def test_an_sms_code_nobody_entered_is_asked_for_again_until_the_platform_pays_by_itself(stack, sandbox_clean, team, taobao):
    stack.sandbox("POST", "/sandbox/top/knobs", json={"sms_code_above": "100.00"})
    order, tid = top_order(stack, "150.00")
    refund = apply(stack, tid, "150.00", goods_back=False)  # refund only: agreeing it pays it
    refund_id, case_id = refund["refund_id"], case_of(tid, refund["refund_id"])
    sync(stack)
    stack.approve(case_id, "seller-review", team["S002"], decision="agree")

    def codes_sent() -> list[str]:
        return [m["payload"]["code"] for m in stack.sandbox("GET", "/sandbox/messages/seller-sms") if m["payload"]["refund_ids"] == refund_id]

    first = stack.waiting(case_id, "sms-code-1")
    timeout = at_platform(stack, refund_id)["refund_remind_timeout"]["timeout"]
    assert first.deadline == datetime.fromisoformat(timeout.replace(" ", "T") + "+08:00")  # until the platform pays by itself
    assert len(codes_sent()) == 1

    # nobody typed the code in time, and the platform has not paid: no made-up code is sent, a new one is asked for
    stack.sweep(case_id, days=6)
    stack.waiting(case_id, "sms-code-2")
    assert len(codes_sent()) == 2
    assert at_platform(stack, refund_id)["status"] == RefundStatus.WAIT_SELLER_AGREE
    assert "isv.refund-sms-code-invalid" not in str([e.details for e in events(case_id)])
    assert not [r for r in stack.refunds(order["order_id"]) if r["case_id"] == f"TOP-{refund_id}"]
    agreed = stack.sandbox("GET", "/sandbox/top/state")["calls"]["taobao.rp.refunds.agree"]

    # then the platform refunds by itself at its deadline: recorded as the platform's payment, once
    stack.sandbox("POST", f"/sandbox/top/refunds/{refund_id}/timeout")
    assert sync(stack)["platform-acted"] == 1
    assert stack.finished(case_id).outcome == "refunded"
    [paid] = [e for e in events(case_id) if e.action == "refund.paid"]
    assert paid.actor == "platform" and Decimal(paid.details["amount"]) == Decimal("150.00")
    assert [(line.platform_ref, line.amount) for line in ledger(case_id) if line.platform_paid] == [(refund_id, Decimal("150.00"))]
    assert [Decimal(r["amount"]) for r in stack.refunds(order["order_id"]) if r["case_id"] == f"TOP-{refund_id}"] == [Decimal("150.00")]
    assert stack.sandbox("GET", "/sandbox/top/state")["calls"]["taobao.rp.refunds.agree"] == agreed  # read, not agreed again
    assert len(codes_sent()) == 2


def test_the_platforms_own_deadline_is_recorded_as_the_platform_and_a_cancelled_refund_closes_its_case(stack, sandbox_clean, team, taobao):
    order, tid = top_order(stack, "36.00")
    refund_only = apply(stack, tid, "36.00", goods_back=False)
    case_id = case_of(tid, refund_only["refund_id"])
    sync(stack)
    stack.waiting(case_id, "seller-review")
    with session_scope() as session:
        assert details_of(session.get(Case, case_id), ReturnDetails).goods_back is False

    # nobody answered in time: the platform refunded by itself
    agreed_before = stack.sandbox("GET", "/sandbox/top/state")["calls"].get("taobao.rp.refunds.agree", 0)
    stack.sandbox("POST", f"/sandbox/top/refunds/{refund_only['refund_id']}/timeout")
    assert sync(stack)["platform-acted"] == 1
    assert stack.finished(case_id).outcome == "refunded"
    acted = [e for e in events(case_id) if e.action == "platform.acted"]
    assert [e.actor for e in acted] == ["platform"]
    assert [(line.platform_ref, line.amount) for line in ledger(case_id) if line.platform_paid] == [(refund_only["refund_id"], Decimal("36.00"))]
    assert stack.sandbox("GET", "/sandbox/top/state")["calls"].get("taobao.rp.refunds.agree", 0) == agreed_before  # not paid again

    # a refusal goes to the platform with our note and one of the platform's own reasons
    refused_order, refused_tid = top_order(stack, "45.00")
    refused = apply(stack, refused_tid, "45.00", goods_back=True)
    refused_case = case_of(refused_tid, refused["refund_id"])
    sync(stack)
    stack.approve(refused_case, "seller-review", team["S002"], decision="refuse", note="商品已使用，不支持七天无理由")
    assert stack.finished(refused_case).outcome == "refused"
    at = at_platform(stack, refused["refund_id"])
    assert at["status"] == RefundStatus.SELLER_REFUSE_BUYER
    [told] = [e for e in events(refused_case) if e.action == "platform.refused"]
    assert told.actor == team["S002"] and told.details["message"] == "商品已使用，不支持七天无理由" and told.details["reason"]["id"]

    # the buyer cancels a return application before the seller decides
    other, other_tid = top_order(stack, "59.00")
    cancelled = apply(stack, other_tid, "59.00", goods_back=True)
    other_case = case_of(other_tid, cancelled["refund_id"])
    sync(stack)
    stack.waiting(other_case, "seller-review")
    stack.sandbox("POST", f"/sandbox/top/refunds/{cancelled['refund_id']}/cancel")
    assert sync(stack)["withdrawn"] == 1
    with session_scope() as session:
        closed = session.get(Case, other_case)
        assert (closed.status, closed.outcome) == ("closed", "withdrawn")
    assert stack.run_state(closed.flow_run_id) == "CANCELLED"
    assert [e.actor for e in events(other_case) if e.action == "case.closed"] == ["buyer"]


def test_a_decision_on_a_stale_version_is_read_again_and_taken_again(stack, sandbox_clean, taobao):
    """The buyer changes the refund between our read and our call: the platform refuses the stale
    version, we read it again and decide on what it says now; a refund now asking more than was
    decided is not agreed."""
    from aftersales.tasks.platform_refunds import decide

    _order, tid = top_order(stack, "80.00")
    refund = apply(stack, tid, "80.00", goods_back=True)
    refund_id = refund["refund_id"]
    tries: list[int] = []

    async def go():
        async with TopClient() as top:
            async def agree_after_the_buyer_moved(current):
                tries.append(current.version)
                if len(tries) == 1:  # the buyer acts first: the refund's version moves on
                    stack.sandbox("POST", f"/sandbox/top/refunds/{refund_id}/amend", json={"refund_fee": "70.00"})
                await top.agree_return(refund_id, await top.get_return_address(str(tid)), version=current.version, phase=current.phase)
            return await decide(top, refund_id, {RefundStatus.WAIT_SELLER_AGREE}, agree_after_the_buyer_moved)

    after, ours = stack.run(go())
    assert ours and after.status == RefundStatus.WAIT_BUYER_RETURN_GOODS
    assert len(tries) == 2 and tries[1] > tries[0]
    assert after.amount == Decimal("70.00")

    with pytest.raises(PlatformRejected, match="decide again"):
        _other, other_tid = top_order(stack, "30.00")
        only = apply(stack, other_tid, "30.00", goods_back=False)
        stack.run(_agree(only["refund_id"], other_tid, Decimal("20.00")))  # decided 20.00; the buyer asks 30.00


async def _agree(refund_id: str, tid: int, decided: Decimal):
    from aftersales.tasks.platform_refunds import agree_refund_at_platform

    case = Case(id=f"return-{tid}-tb{refund_id}", process="return", order_id=str(tid), customer_id="C", requested_by="buyer",
                amount=decided, details={"platform_refund_id": refund_id})
    return await agree_refund_at_platform(case, decided, None)


def test_on_taobao_the_review_monitor_reads_the_reviews_at_top_and_follows_up_a_negative_one(stack, sandbox_clean, team, taobao):
    from aftersales.flows.review_monitor import review_monitor

    order, tid = top_order(stack, "88.00")
    stack.sandbox("POST", "/sandbox/reviews", json={"order_id": order["order_id"], "rating": "negative", "text": "做工粗糙，线头很多"})
    read = stack.run(review_monitor())
    # TOP's review id is the sub-order (a single-item trade's oid is its tid); the order is the trade
    case_id = f"review-{tid}"
    assert case_id in read["follow_ups"]
    stack.waiting(case_id, "review-cause")
    with session_scope() as session:
        case = session.get(Case, case_id)
        assert (case.order_id, case.reason) == (str(tid), "做工粗糙，线头很多")
    assert case_id in stack.run(review_monitor())["already_followed_up"]  # read again through "since": opened once

    # found malicious: TOP has no call to report it — the review team files the complaint in Qianniu
    stack.approve(case_id, "review-cause", team["S008"], cause="买家未收货即差评，同行恶意", verdict="suspected_malicious")
    stack.approve(case_id, "review-verify", team["S009"], result="malicious", evidence="同一 IP 批量差评 same IP, many reviews")
    assert stack.waiting(case_id, "in-qianniu-report").addressed_to == "review"
    stack.approve(case_id, "in-qianniu-report", team["S009"], reference="TS20261206001")
    assert stack.finished(case_id).outcome == "reported_malicious"
    [reported] = [e for e in events(case_id) if e.action == "review.reported"]
    assert (reported.details["report_id"], reported.details["done_by_hand"]) == ("TS20261206001", team["S009"])


def test_the_trackers_feed_watches_a_taobao_shops_shipped_orders_read_from_top(stack, sandbox_clean, taobao):
    """On AFTERSALES_PLATFORM=taobao the 15-day tracker's feed is TOP's trades.sold.increment.get: a
    shipped order goes on the watch list under its tid with its parcel; one not shipped does not."""
    from aftersales.tasks.tracking import FEED, sync_order_feed

    with session_scope() as session:
        watched_before = set(session.exec(select(TrackedOrder.order_id)))
        saved = session.get(Checkpoint, FEED)
        saved = saved.value if saved else None
    feed_calls = stack.sandbox("GET", "/sandbox/top/state")["calls"].get("taobao.trades.sold.increment.get", 0)
    in_transit, tid = top_order(stack, "128.00", status="shipped", delivered_days_ago=None)
    _, unshipped_tid = top_order(stack, "59.00", status="awaiting_shipment", delivered_days_ago=None)
    try:
        assert stack.run(sync_order_feed()) >= 1
        with session_scope() as session:
            ids = [str(tid), str(unshipped_tid), in_transit["order_id"]]
            watched = {row.order_id: row for row in session.exec(select(TrackedOrder).where(TrackedOrder.order_id.in_(ids)))}
            checkpoint = datetime.fromisoformat(session.get(Checkpoint, FEED).value)
        assert set(watched) == {str(tid)}  # under its TOP tid: read from TOP, not from the gateway
        row = watched[str(tid)]
        assert (row.carrier, row.waybill, row.phone_tail, row.signed_at) == ("zhongtong", in_transit["waybill"], "5678", None)
        shipped = datetime.fromisoformat(in_transit["shipped_at"])
        assert abs(row.shipped_at - shipped).total_seconds() < 1  # TOP's times are to the second
        assert stack.sandbox("GET", "/sandbox/top/state")["calls"]["taobao.trades.sold.increment.get"] > feed_calls
        assert checkpoint.tzinfo is not None and checkpoint >= shipped
    finally:  # the watch list and the feed's checkpoint as they were, for the gateway's tracker tests
        with session_scope() as session:
            added = set(session.exec(select(TrackedOrder.order_id))) - watched_before
            if added:
                session.exec(delete(TrackedOrder).where(TrackedOrder.order_id.in_(added)))
            row = session.get(Checkpoint, FEED)
            if saved is None and row is not None:
                session.delete(row)
            elif saved is not None:
                row.value = saved
                session.add(row)


def in_qianniu(stack, case_id: str):
    """The case's open by-hand step (its number comes from the movement's key), once its run waits there."""
    from aftersales.integrations import case_store
    from tests.support.stack import wait_until

    def found():
        with session_scope() as session:
            wait = case_store.find_wait(session, case_id)
        return wait if wait is not None and wait.step.startswith("in-qianniu") else None

    return stack.waiting(case_id, wait_until(found, 90, f"{case_id} to wait for Qianniu").step)


def test_on_taobao_a_payment_top_has_no_call_for_waits_for_finance_in_qianniu_and_is_booked_once(stack, sandbox_clean, team, taobao):
    from aftersales.intake.compensation import open_compensation

    order, tid = top_order(stack, "128.00")
    calls_before = stack.sandbox("GET", "/sandbox/top/state")["calls"]
    # ¥15 cash is within the agent's limit (§1.3): no approval, straight to paying — which TOP cannot do
    case_id = stack.run(open_compensation(str(tid), "cash", "15.00", "物流延误 parcel late", team["S001"], bearer="carrier")).case_id
    with session_scope() as session:
        assert session.get(Case, case_id).platform == "taobao"  # its steps talk to TOP for its whole life
    wait = in_qianniu(stack, case_id)
    assert wait.addressed_to == "finance"
    assert any(case_id in str(m.json) for m in stack.messages("/staff/finance"))

    too_much = stack.approve(case_id, wait.step, team["S005"], reference="QN20261206001", amount="18.00")
    assert too_much.status == "rejected" and "more than the 15.00 decided" in too_much.reason
    assert stack.approve(case_id, wait.step, team["S001"], reference="QN20261206001", amount="15.00").status == "rejected"  # an agent: not finance
    assert stack.approve(case_id, wait.step, team["S005"], reference="QN20261206001", amount="15.00").status == "answered"

    assert stack.finished(case_id).outcome == "compensated"
    [line] = ledger(case_id)
    assert (line.kind, line.amount, line.platform_ref, line.approved_by) == ("compensation", Decimal("15.00"), "QN20261206001", team["S001"])
    [paid] = [e for e in events(case_id) if e.details.get("done_by_hand")]
    assert paid.details["done_by_hand"] == {"compensation_refund": team["S005"]}
    assert stack.refunds(order["order_id"]) == []  # nothing went to the gateway
    writes = {m for m in stack.sandbox("GET", "/sandbox/top/state")["calls"] if not m.endswith(".get")}
    assert {m: stack.sandbox("GET", "/sandbox/top/state")["calls"][m] for m in writes} == {m: calls_before.get(m) for m in writes}


def test_on_taobao_a_parcel_top_cannot_ship_is_shipped_by_the_warehouse_and_put_on_the_order(stack, sandbox_clean, team, taobao):
    from aftersales.intake.out_of_area import open_out_of_area

    order, tid = top_order(stack, "158.00", status="shipped", delivered_days_ago=None)
    stack.sandbox("POST", f"/sandbox/parcels/{order['waybill']}/events",
                  json={"state": 2, "status_code": "2", "context": "【武汉洪山珞喻路营业部】网点暂停派送，快件滞留",
                        "area": "湖北,武汉市,洪山区", "time": datetime.now(timezone.utc).isoformat()})
    case_id = stack.run(open_out_of_area(str(tid), "stranded", requested_by=team["S011"])).case_id
    stack.waiting(case_id, "buyer-choice")
    assert stack.answer(case_id, "buyer-choice", remedy="switch_carrier", new_carrier="shunfeng").status == "answered"

    wait = in_qianniu(stack, case_id)  # TOP ships nothing: the warehouse does, and says with what
    assert wait.addressed_to == "warehouse"
    assert stack.approve(case_id, wait.step, team["S004"], carrier="shunfeng", waybill="SF1206000001").status == "answered"
    assert stack.finished(case_id).outcome == "carrier_switched"

    async def on_the_order():
        async with TopClient() as top:
            return await top.get_order(str(tid))

    now = stack.run(on_the_order())
    assert (now.carrier, now.waybill) == ("shunfeng", "SF1206000001")  # the new parcel is on the order at TOP (consign.resend)
    [postage] = ledger(case_id)
    assert (postage.kind, postage.bearer, postage.platform_ref) == ("outbound_postage", "carrier", "SF1206000001")
    assert stack.reshipments(order["order_id"]) == []  # nothing went to the gateway
    assert "SF1206000001" in str([m.json for m in stack.customer_messages(order)])


def test_on_taobao_goods_that_fail_inspection_are_refused_in_qianniu_before_the_platform_refunds(stack, sandbox_clean, team, taobao):
    order, tid = top_order(stack, "99.00")
    refund = apply(stack, tid, "99.00", goods_back=True)
    refund_id, case_id = refund["refund_id"], case_of(tid, refund["refund_id"])
    sync(stack)
    stack.approve(case_id, "seller-review", team["S002"], decision="agree")
    stack.waiting(case_id, "buyer-shipment")
    stack.sandbox("POST", f"/sandbox/top/refunds/{refund_id}/waybill", json={"company_name": "中通快递", "sid": "ZT20261206099"})
    sync(stack)
    stack.approve(case_id, "receipt", team["S004"], note="包裹到仓")
    stack.approve(case_id, "inspection", team["S004"], result="fail", refund_amount="0.00", note="商品已使用，有明显磨损")

    wait = stack.waiting(case_id, "in-qianniu-refuse-goods")  # refusing needs photos: the warehouse does it in Qianniu
    platform_deadline = datetime.fromisoformat(at_platform(stack, refund_id)["refund_remind_timeout"]["timeout"].replace(" ", "T") + "+08:00")
    assert wait.addressed_to == "warehouse" and wait.deadline <= platform_deadline
    assert at_platform(stack, refund_id)["status"] == RefundStatus.WAIT_SELLER_CONFIRM_GOODS

    async def refuse_in_qianniu():  # what the warehouse does in Qianniu, with its photo
        async with TopClient() as top:
            now = await top.get_refund(refund_id)
            await top.refuse_return(refund_id, version=now.version, phase=now.phase, proof=b"\xff\xd8 photo of the worn sole")

    stack.run(refuse_in_qianniu())
    stack.approve(case_id, "in-qianniu-refuse-goods", team["S004"], note="已拒绝，附 3 张磨损照片")
    assert stack.finished(case_id).outcome == "inspection_failed"
    [refused] = [e for e in events(case_id) if e.action == "platform.goods_refused"]
    assert (refused.actor, refused.details["platform_status"]) == (team["S004"], RefundStatus.SELLER_REFUSE_BUYER)
    assert at_platform(stack, refund_id)["status"] == RefundStatus.SELLER_REFUSE_BUYER
    assert not [r for r in stack.refunds(order["order_id"]) if r["case_id"] == f"TOP-{refund_id}"]  # nothing paid


def test_on_taobao_a_delivery_is_the_carriers_signature_and_an_exchange_needing_a_price_is_refused(stack, sandbox_clean, team, taobao):
    from aftersales.domain.rules import InvalidRequest
    from aftersales.intake.exchange import open_exchange
    from aftersales.intake.repair import open_repair

    items = [{"sku": "SKU-FAN-01", "name": "落地扇", "category": "appliance", "quantity": 1, "unit_price": "299.00"}]
    order, tid = top_order(stack, "299.00", items=items, delivered_days_ago=20)
    stack.sandbox("POST", f"/sandbox/parcels/{order['waybill']}/events",
                  json={"state": 3, "status_code": "301", "context": "快件已签收，签收人：本人签收", "area": "上海,上海市,浦东新区",
                        "time": order["delivered_at"]})
    # TOP gives no delivery time: the carrier's signature is the delivery, so a repair may open
    opened = stack.run(open_repair(str(tid), "SKU-FAN-01", "不转了 it stopped turning", "in_scope", team["S001"]))
    with session_scope() as session:
        details = session.get(Case, opened.case_id).details
    signed = datetime.fromisoformat(details["delivered_at"])
    assert abs(signed - datetime.fromisoformat(order["delivered_at"])).total_seconds() < 1

    # an exchange for another SKU needs its price, and TOP keeps no catalogue: refused, nothing recorded
    with pytest.raises(InvalidRequest) as refused:
        stack.run(open_exchange(str(tid), "SKU-FAN-01", "SKU-FAN-02", 1, "换个颜色", requested_by=team["S001"]))
    assert refused.value.code == "no_catalogue" and "Qianniu" in refused.value.message
    with session_scope() as session:
        assert session.exec(select(Case).where(Case.order_id == str(tid), Case.process == "exchange")).first() is None
