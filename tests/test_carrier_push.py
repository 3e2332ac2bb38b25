"""Carrier push first (issue 11, part 5): waybills subscribed once at the sandbox's Kuaidi100 push
service, pushes received on our API — signed, repeated, reordered, forged, aborted, corrected —
applied through the tracker's own findings, once; and a return parcel signed for at the warehouse
answering the receipt wait. Real stack: Prefect server, served flows, sandbox over loopback."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from sqlmodel import select

from aftersales.domain.calendar import utcnow
from aftersales.domain.models import Case, ReturnParcel, TrackedOrder
from aftersales.domain.settings import Settings, get_settings
from aftersales.integrations.db import session_scope
from aftersales.integrations.platform import push_sign, read_push
from tests.support.records import events, wait_row
from tests.support.stack import wait_until


def row_of(order_id: str) -> TrackedOrder:
    with session_scope() as session:
        return session.get(TrackedOrder, order_id)


def cases_of(order_id: str) -> list[Case]:
    with session_scope() as session:
        return list(session.exec(select(Case).where(Case.order_id == order_id)))


def knobs(stack, **values) -> None:
    stack.sandbox("POST", "/sandbox/carrier/push-knobs", json=values)


def event(stack, waybill: str, state: int, code: str, context: str, hours_ago: float = 0) -> None:
    at = datetime.now(timezone.utc) - timedelta(hours=hours_ago)
    stack.sandbox("POST", f"/sandbox/parcels/{waybill}/events", json={"state": state, "status_code": code, "context": context, "time": at.isoformat()})


def watched_in_transit(stack) -> dict:
    """A fresh order shipped a day ago, in transit, on the watch list, polled once and subscribed."""
    from aftersales.flows.order_tracker import order_tracker

    order = stack.make_order(delivered_days_ago=None, status="shipped")
    event(stack, order["waybill"], 1, "103", "【杭州市】已揽收 collected", hours_ago=24)
    event(stack, order["waybill"], 0, "1002", "【上海市】干线运输中 trunk", hours_ago=6)
    summary = stack.run(order_tracker(batch_size=200, concurrency=8))
    assert summary.get("subscribed", 0) >= 1
    row = row_of(order["order_id"])
    assert row.push_status == "subscribed" and row.subscriptions == 1 and row.subscribed_at is not None
    return order


def post_push(api: str, order_id: str, param: dict | str, sign: str | None) -> httpx.Response:
    text = param if isinstance(param, str) else json.dumps(param, ensure_ascii=False)
    form = {"param": text} if sign is None else {"param": text, "sign": sign}
    return httpx.post(f"{api}/carrier/kuaidi100/push", params={"order": order_id}, data=form, timeout=30)


def push_param(waybill: str, events_: list[tuple[int, str, str, datetime]], status: str = "polling") -> dict:
    data = [{"time": at.astimezone(timezone(timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S"), "context": context,
             "status": "", "statusCode": code, "areaName": ""} for state, code, context, at in events_]
    return {"status": status, "message": "", "autoCheck": "0", "comOld": "", "comNew": "",
            "lastResult": {"message": "ok", "nu": waybill, "ischeck": "0", "com": "zhongtong", "status": "200",
                           "state": str(events_[0][0]), "data": data}}


@pytest.fixture
def pushes_quiet(stack):
    """The provider pushes only when the test pulls the lever (no background pushes racing it)."""
    knobs(stack, auto=False)
    yield
    knobs(stack)


def test_duplicated_reordered_and_forged_pushes_act_once(stack, sandbox_clean, intake_api, pushes_quiet):
    order = watched_in_transit(stack)
    order_id, waybill = order["order_id"], order["waybill"]
    event(stack, waybill, 3, "303", "【上海市】已签收，他人代签 signed by the concierge")
    knobs(stack, auto=False, duplicates=2, reorder=True, bad_sign=True)

    answers = stack.sandbox("POST", f"/sandbox/carrier/push/{waybill}")
    forged = [a for a in answers if not a["genuine"]]
    genuine = [a for a in answers if a["genuine"]]
    assert len(forged) == 2 and all(a["http"] == 403 and not a["accepted"] for a in forged)
    assert "签名" in forged[0]["answer"]["message"] and forged[0]["answer"]["result"] is False
    assert len(genuine) == 6 and all(a["accepted"] and a["answer"]["returnCode"] == "200" for a in genuine)
    # the newest track acted once; its two repeats and the older track (three times) acted nothing
    assert [a["answer"]["acted"] for a in genuine] == [["contact:signed-by-other"], [], [], [], [], []]
    assert [a["answer"]["applied"] for a in genuine] == ["applied"] * 3 + ["older"] * 3

    (case,) = cases_of(order_id)
    assert case.process == "tracking" and "signed-by-other" in case.id and case.outcome == "buyer_contacted"
    assert len([m for m in stack.received if m.path == f"/customer/{order['customer']['customer_id']}"]) == 1
    row = row_of(order_id)
    assert row.last_state == 3 and row.last_status_code == "303" and row.signed_at is not None
    assert row.push_status == "shutdown" and row.acted_on.count("contact:signed-by-other") == 1
    # a finished track gets no more pushes or queries: the next look is the end of its 15-day window
    assert row.next_check_at > utcnow() + timedelta(days=14)

    # once more, everything at once: still one case, one message
    stack.sandbox("POST", f"/sandbox/carrier/push/{waybill}")
    assert len(cases_of(order_id)) == 1
    assert len([m for m in stack.received if m.path == f"/customer/{order['customer']['customer_id']}"]) == 1


def test_a_push_without_our_signature_changes_nothing(stack, sandbox_clean, intake_api, pushes_quiet):
    order = watched_in_transit(stack)
    order_id, waybill = order["order_id"], order["waybill"]
    before = row_of(order_id).model_dump()
    now = datetime.now(timezone.utc)
    # out of area: were it believed, an out-of-area case would open
    param = push_param(waybill, [(2, "207", "【上海市】超区，网点无法派送 out of area", now)])
    text = json.dumps(param, ensure_ascii=False)
    salt = get_settings().carrier_push_salt.get_secret_value()

    unsigned = post_push(intake_api, order_id, text, None)
    assert unsigned.status_code == 403 and unsigned.json()["result"] is False and "unsigned" in unsigned.json()["message"]
    wrong = post_push(intake_api, order_id, text, push_sign(text, "not-our-salt"))
    assert wrong.status_code == 403 and "wrong push signature" in wrong.json()["message"]
    tampered = post_push(intake_api, order_id, text.replace("207", "208"), push_sign(text, salt))  # signed, then changed
    assert tampered.status_code == 403
    # correctly signed, but another waybill's track: not this order's
    other = json.dumps(push_param("ZT000000000001", [(2, "207", "超区 out of area", now)]), ensure_ascii=False)
    misdirected = post_push(intake_api, order_id, other, push_sign(other, salt))
    assert misdirected.status_code == 409 and "ZT000000000001" in misdirected.json()["message"]
    garbled = post_push(intake_api, order_id, "{not json", push_sign("{not json", salt))
    assert garbled.status_code == 400 and "not JSON" in garbled.json()["message"]

    assert row_of(order_id).model_dump() == before
    assert cases_of(order_id) == []

    # the same push, signed with our salt, is believed
    good = post_push(intake_api, order_id, text, push_sign(text, salt))
    assert good.status_code == 200 and good.json()["acted"] == ["out-of-area:out_of_area"]
    assert stack.waiting(f"out-of-area-{order_id}", "buyer-choice").case_id


def test_abort_falls_back_to_polling_and_a_corrected_carrier_is_kept(stack, sandbox_clean, intake_api, pushes_quiet):
    from aftersales.flows.order_tracker import order_tracker

    quiet_order = watched_in_transit(stack)
    order = watched_in_transit(stack)
    order_id, waybill = order["order_id"], order["waybill"]

    knobs(stack, auto=False, com_new="yuantong")
    assert [a["answer"]["applied"] for a in stack.sandbox("POST", f"/sandbox/carrier/push/{waybill}")] == ["applied"]
    row = row_of(order_id)
    assert (row.carrier, row.carrier_was, row.push_status) == ("yuantong", "zhongtong", "polling")
    assert row.next_check_at > utcnow() + timedelta(hours=11)  # pushing: not polled till it goes quiet

    knobs(stack, auto=False, abort="3天查询无记录")
    assert [a["answer"]["applied"] for a in stack.sandbox("POST", f"/sandbox/carrier/push/{waybill}")] == ["abort"]
    row = row_of(order_id)
    assert row.push_status == "abort" and row.push_note == "3天查询无记录"
    assert timedelta(hours=23) < row.resubscribe_at - utcnow() <= timedelta(hours=24)
    assert row.next_check_at <= row.last_checked_at + timedelta(minutes=31)  # polled again as soon as allowed

    # the sweep polls only what is quiet: the aborted waybill and the one that never pushed (both
    # made due as if time had passed), not one that is pushing
    pushing = watched_in_transit(stack)
    stack.sandbox("POST", f"/sandbox/carrier/push/{pushing['waybill']}")
    with session_scope() as session:
        for oid in (order_id, quiet_order["order_id"], pushing["order_id"]):
            r = session.get(TrackedOrder, oid)
            if oid != pushing["order_id"]:
                r.next_check_at = utcnow() - timedelta(minutes=1)
            session.add(r)
    before = stack.sandbox("GET", "/sandbox/state")["carrier_queries"]
    stack.run(order_tracker(batch_size=200, concurrency=8))
    after = stack.sandbox("GET", "/sandbox/state")["carrier_queries"]
    assert after.get(waybill, 0) == before.get(waybill, 0) + 1
    assert after.get(quiet_order["waybill"], 0) == before.get(quiet_order["waybill"], 0) + 1
    assert after.get(pushing["waybill"], 0) == before.get(pushing["waybill"], 0)

    # after the provider's wait the sweep subscribes it again; "no change for 60 days" is not resubscribed
    with session_scope() as session:
        r = session.get(TrackedOrder, order_id)
        r.resubscribe_at = utcnow() - timedelta(minutes=1)
        session.add(r)
    stack.run(order_tracker(batch_size=200, concurrency=8))
    row = row_of(order_id)
    assert row.push_status == "subscribed" and row.subscriptions == 2
    knobs(stack, auto=False, abort="60天无变化")
    stack.sandbox("POST", f"/sandbox/carrier/push/{waybill}")
    row = row_of(order_id)
    assert row.push_status == "abort" and row.resubscribe_at is None


def test_the_return_parcel_signed_at_the_warehouse_answers_the_receipt_wait(stack, sandbox_clean, team, intake_api):
    order = stack.make_order(paid="88.00")
    case_id = stack.open_return(order, reason="尺码不合适 wrong size")
    stack.approve(case_id, "seller-review", team["S002"], decision="agree")
    waybill = f"YT{order['order_id'][-8:]}RT"
    assert stack.answer(case_id, "buyer-shipment", carrier="yuantong", tracking_number=waybill).status == "answered"
    receipt = stack.waiting(case_id, "receipt")

    with session_scope() as session:
        parcel = session.get(ReturnParcel, case_id)
    assert (parcel.waybill, parcel.carrier, parcel.push_status, parcel.receipt_step) == (waybill, "yuantong", "subscribed", "receipt")
    (subscription,) = [s for s in stack.sandbox("GET", "/sandbox/carrier/subscriptions") if s["waybill"] == waybill]
    assert f"case={case_id}" in subscription["callbackurl"]

    # in transit: pushed, recorded, the wait stays open
    event(stack, waybill, 0, "1002", "【杭州市】干线运输中 trunk", hours_ago=2)
    wait_until(lambda: row_return(case_id).last_state == 0, 30, "the in-transit push")
    assert wait_row(case_id, receipt.key).status == "open"

    knobs(stack, duplicates=2)  # the signature is pushed three times
    try:
        event(stack, waybill, 3, "301", "【杭州市余杭区】已签收，签收人：仓库 signed for by the warehouse")
        inspection = stack.waiting(case_id, "inspection")
    finally:
        knobs(stack)
    answered = wait_row(case_id, receipt.key)
    assert answered.status == "answered" and answered.actor == "carrier"
    assert "signed for by the carrier" in answered.decision["note"]
    trail = events(case_id)
    signed = [e for e in trail if e.action == "parcel.signed_by_carrier"]
    assert len(signed) == 1 and signed[0].details["waybill"] == waybill and signed[0].details["status_code"] == "301"
    assert [e.actor for e in trail if e.action == "parcel.received"] == ["carrier"]
    wait_until(lambda: len(sent_to(stack, waybill)) >= 4, 30, "the pushes")
    assert inspection.key == "inspection-1" and row_return(case_id).acted_on == ["receipt"]


def test_a_return_parcel_the_provider_stopped_pushing_is_polled_and_its_signature_answers_the_receipt(
        stack, sandbox_clean, team, intake_api, pushes_quiet):
    from aftersales.flows.order_tracker import order_tracker

    order = stack.make_order(paid="66.00")
    case_id = stack.open_return(order, reason="颜色不喜欢 colour")
    stack.approve(case_id, "seller-review", team["S002"], decision="agree")
    waybill = f"YT{order['order_id'][-8:]}RB"
    assert stack.answer(case_id, "buyer-shipment", carrier="yuantong", tracking_number=waybill).status == "answered"
    receipt = stack.waiting(case_id, "receipt")
    knobs(stack, auto=False, abort="3天查询无记录")
    assert [a["answer"]["applied"] for a in stack.sandbox("POST", f"/sandbox/carrier/push/{waybill}")] == ["abort"]
    assert row_return(case_id).push_status == "abort"

    # signed for at the warehouse, and the provider pushes no more: the tracker's sweep polls it
    event(stack, waybill, 3, "301", "【杭州市余杭区】已签收，签收人：仓库 signed for by the warehouse")
    assert stack.run(order_tracker(batch_size=200, concurrency=8)).get("return_parcels_signed") == 1
    stack.waiting(case_id, "inspection")
    answered = wait_row(case_id, receipt.key)
    assert (answered.status, answered.actor) == ("answered", "carrier")
    assert [e.actor for e in events(case_id) if e.action == "parcel.signed_by_carrier"] == ["carrier"]
    parcel = row_return(case_id)
    assert (parcel.push_status, parcel.acted_on) == ("polled", ["receipt"])

    before = stack.sandbox("GET", "/sandbox/state")["carrier_queries"].get(waybill, 0)
    stack.run(order_tracker(batch_size=200, concurrency=8))  # signed: not asked again
    assert stack.sandbox("GET", "/sandbox/state")["carrier_queries"].get(waybill, 0) == before


def row_return(case_id: str) -> ReturnParcel:
    with session_scope() as session:
        return session.get(ReturnParcel, case_id)


def sent_to(stack, waybill: str) -> list[dict]:
    return [a for s in stack.sandbox("GET", "/sandbox/carrier/subscriptions") if s["waybill"] == waybill for a in s["sent"]]


def test_a_salt_longer_than_kuaidi100_takes_is_refused():
    with pytest.raises(ValueError, match="1 to 32"):
        Settings(_env_file=None, carrier_push_salt="x" * 33)


def test_a_push_is_read_with_its_correction_and_track():
    param = push_param("ZT1", [(3, "301", "已签收", datetime(2026, 12, 1, 10, tzinfo=timezone.utc))], status="shutdown")
    param.update(autoCheck="1", comOld="yuantong", comNew="zhongtong")
    push = read_push(json.dumps(param))
    assert (push.status, push.com_old, push.com_new) == ("shutdown", "yuantong", "zhongtong")
    assert push.tracking.state == 3 and push.newest_event_at == datetime(2026, 12, 1, 10, tzinfo=timezone.utc)


def test_the_migration_leaves_watched_orders_unsubscribed_for_the_next_sweep(tmp_path):
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from aftersales.integrations.db import MIGRATIONS

    url = f"sqlite:///{tmp_path / 'cases.db'}"
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "0006_case_stage_words")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO tracked_order (order_id, customer_id, carrier, waybill, phone_tail, shipped_at, watching,"
                             " next_check_at, last_status_code, acted_on) VALUES ('O1', 'C1', 'zhongtong', 'ZT1', '5678',"
                             " '2026-12-01 00:00:00', 1, '2026-12-01 00:00:00', '', '[]')"))
    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT push_status, subscriptions, subscribed_at, carrier_was FROM tracked_order")).one()
    assert tuple(row) == ("", 0, None, "")
    command.downgrade(cfg, "0006_case_stage_words")
    with engine.connect() as conn:
        assert "push_status" not in {c["name"] for c in sa.inspect(conn).get_columns("tracked_order")}
    engine.dispose()


def test_a_push_naming_no_carrier_code_as_its_correction_is_refused():
    from aftersales.integrations.platform import PushMalformed

    param = push_param("ZT1", [(0, "1002", "干线", datetime(2026, 12, 1, 10, tzinfo=timezone.utc))])
    param.update(autoCheck="1", comOld="zhongtong", comNew="DROP TABLE")
    with pytest.raises(PushMalformed, match="comNew"):
        read_push(json.dumps(param))
    with pytest.raises(PushMalformed, match="status"):
        read_push(json.dumps({**param, "status": "sometimes"}))
