"""The 15-day tracker (§1.9) and the review monitor (§1.6) on the real stack."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

from sqlmodel import select

from aftersales.domain.calendar import utcnow
from aftersales.domain.models import Case, TrackedOrder
from aftersales.integrations.db import session_scope
from sandbox_platform.bulk import bulk_waybill
from tests.support.stack import wait_until


def cases_of(order_id: str) -> list[Case]:
    with session_scope() as session:
        return list(session.exec(select(Case).where(Case.order_id == order_id)))


def watch_list(ids: list[str]) -> dict[str, TrackedOrder]:
    with session_scope() as session:
        return {row.order_id: row for row in session.exec(select(TrackedOrder).where(TrackedOrder.order_id.in_(ids)))}


def carrier_queries(stack) -> dict[str, int]:
    """How often the sandbox's carrier API was asked about each waybill."""
    return stack.sandbox("GET", "/sandbox/state")["carrier_queries"]


def shipped_order(stack, *, shipped_days_ago: float, signed_days_ago: float | None) -> dict:
    """A fresh order on the platform, shipped (and signed) so many days ago, with its parcel's history."""
    order = stack.make_order(delivered_days_ago=signed_days_ago, status="completed" if signed_days_ago is not None else "shipped")
    shipped = datetime.now(timezone.utc) - timedelta(days=shipped_days_ago)
    order = {**order, "shipped_at": shipped.isoformat()}
    stack.sandbox("POST", "/sandbox/orders", json=order)
    stack.sandbox("POST", f"/sandbox/parcels/{order['waybill']}/events",
                  json={"state": 1, "status_code": "103", "context": "【杭州市】快件已揽收 collected", "time": shipped.isoformat()})
    if signed_days_ago is not None:
        stack.sandbox("POST", f"/sandbox/parcels/{order['waybill']}/events",
                      json={"state": 3, "status_code": "301", "context": "【上海市】已签收 signed", "time": order["delivered_at"]})
    return order


def test_one_sweep_opens_the_right_cases_once_and_contacts_buyers(stack, sandbox_clean):
    from aftersales.flows.order_tracker import order_tracker

    prefix = f"TR{uuid.uuid4().hex[:6].upper()}"
    stack.sandbox("POST", "/sandbox/orders/bulk", json={"count": 16, "prefix": prefix, "problem_share": 0.25})
    ids = [f"{prefix}{i:07d}" for i in range(16)]

    first = stack.run(order_tracker(batch_size=5, concurrency=4))
    assert first["polled"] >= 16

    with session_scope() as session:
        watched = {row.order_id: row for row in session.exec(select(TrackedOrder).where(TrackedOrder.order_id.in_(ids)))}
    assert set(watched) == set(ids)

    out_of_area, damaged, signed_by_other, stale = ids[0], ids[4], ids[8], ids[12]
    # the cases are opened as runs of their own processes, which record them a moment later
    assert stack.waiting(f"out-of-area-{out_of_area}", "buyer-choice").case_id
    wait_until(lambda: cases_of(damaged), 60, "the damage complaint")
    assert [c.process for c in cases_of(out_of_area)] == ["out_of_area"]
    assert [c.process for c in cases_of(damaged)] == ["complaint"]
    for order_id, finding in ((signed_by_other, "signed-by-other"), (stale, "no-update")):
        (case,) = cases_of(order_id)
        assert case.process == "tracking" and case.outcome == "buyer_contacted" and finding in case.id
    assert all(cases_of(order_id) == [] for order_id in ids if order_id not in (out_of_area, damaged, signed_by_other, stale))

    buyer = [m for m in stack.received if m.path == f"/customer/C{signed_by_other}"]
    assert len(buyer) == 1 and signed_by_other in json.dumps(buyer[0].json, ensure_ascii=False)
    assert any(signed_by_other in json.dumps(m.json, ensure_ascii=False) for m in stack.messages("/staff/logistics"))

    # the aggregator locks a waybill queried too often: a second sweep right away polls none of them
    before = stack.sandbox("GET", "/sandbox/state")["carrier_queries"]
    again = stack.run(order_tracker(batch_size=5, concurrency=4))
    after = stack.sandbox("GET", "/sandbox/state")["carrier_queries"]
    assert again.get("polled", 0) == 0
    assert all(after.get(bulk_waybill(prefix, i)) == before.get(bulk_waybill(prefix, i)) for i in range(16))
    assert after[bulk_waybill(prefix, 1)] == 1  # an ordinary parcel: asked once in all

    # when they are due again, nothing found before is acted on twice
    with session_scope() as session:
        for row in session.exec(select(TrackedOrder).where(TrackedOrder.order_id.in_(ids))):
            row.next_check_at = utcnow() - timedelta(minutes=1)
            session.add(row)
    stack.run(order_tracker(batch_size=5, concurrency=4))
    assert len(cases_of(out_of_area)) == 1 and len(cases_of(damaged)) == 1 and len(cases_of(stale)) == 1
    assert len([m for m in stack.received if m.path == f"/customer/C{signed_by_other}"]) == 1


def test_review_monitor_opens_one_follow_up_per_neutral_or_negative_review(stack, sandbox_clean):
    from aftersales.flows.review_monitor import review_monitor

    positive_order = stack.make_order(paid="99.00")
    stack.sandbox("POST", "/sandbox/reviews", json={"order_id": positive_order["order_id"], "rating": "positive", "text": "很好"})
    order = stack.make_order(paid="99.00")  # the newest review: the next read (since it, inclusive) reads it again
    negative = stack.sandbox("POST", "/sandbox/reviews", json={"order_id": order["order_id"], "rating": "negative", "text": "质量太差，穿一次就起球"})

    first = stack.run(review_monitor())
    assert f"review-{negative['review_id']}" in first["follow_ups"]
    stack.waiting(f"review-{negative['review_id']}", "review-cause")
    second = stack.run(review_monitor())
    assert len(cases_of(order["order_id"])) == 1  # the overlap opened nothing twice
    assert cases_of(positive_order["order_id"]) == []
    assert second["reviews"] >= 1
    # and says so: the review read again is "already followed up", not a new case
    case_id = f"review-{negative['review_id']}"
    assert case_id not in second["follow_ups"] and case_id in second["already_followed_up"]


def test_orders_that_reach_the_platform_late_are_still_watched(stack, sandbox_clean):
    """The feed follows what changed at the platform, not the shipping time: an order that arrives
    after a sweep with an older shipping time than one already seen is watched all the same."""
    from aftersales.flows.order_tracker import order_tracker

    newest = shipped_order(stack, shipped_days_ago=1 / 24, signed_days_ago=None)
    stack.run(order_tracker(batch_size=100, concurrency=8))
    assert newest["order_id"] in watch_list([newest["order_id"]])  # the feed has seen an order shipped an hour ago

    # 300 orders shipped four days ago reach the platform only now (a late import, a delayed sync)
    prefix = f"LA{uuid.uuid4().hex[:6].upper()}"
    stack.sandbox("POST", "/sandbox/orders/bulk", json={"count": 300, "prefix": prefix, "problem_share": 0})
    ids = [f"{prefix}{i:07d}" for i in range(300)]
    second = stack.run(order_tracker(batch_size=100, concurrency=8))

    assert second["watch_list_added"] >= 300
    watched = watch_list(ids)
    assert set(watched) == set(ids) and all(row.watching and row.last_checked_at for row in watched.values())
    queries = carrier_queries(stack)
    assert all(queries.get(bulk_waybill(prefix, i)) == 1 for i in range(300))  # each queried, once

    # the next sweep reads the overlap again and adds none of them twice
    third = stack.run(order_tracker(batch_size=100, concurrency=8))
    assert third.get("watch_list_added", 0) == 0 and set(watch_list(ids)) == set(ids)
    assert all(carrier_queries(stack).get(bulk_waybill(prefix, i)) == 1 for i in range(300))


def test_an_order_signed_before_the_watch_window_is_never_queried(stack, sandbox_clean):
    """§1.9 watches an order for 15 days after the signature: one signed 16 days ago is not
    added to the watch list, and the carrier is not asked about it even once."""
    from aftersales.flows.order_tracker import order_tracker

    old = shipped_order(stack, shipped_days_ago=18, signed_days_ago=16)
    recent = shipped_order(stack, shipped_days_ago=4, signed_days_ago=2)
    stack.run(order_tracker(batch_size=100, concurrency=8))

    queries = carrier_queries(stack)
    assert old["waybill"] not in queries
    assert queries.get(recent["waybill"]) == 1
    watched = watch_list([old["order_id"], recent["order_id"]])
    assert watched[recent["order_id"]].watching
    assert old["order_id"] not in watched or not watched[old["order_id"]].watching


def test_a_watched_order_leaves_the_watch_list_at_the_end_of_its_window_without_a_query(stack, sandbox_clean):
    from aftersales.flows.order_tracker import order_tracker

    order = shipped_order(stack, shipped_days_ago=16, signed_days_ago=14)
    stack.run(order_tracker(batch_size=100, concurrency=8))
    (row,) = watch_list([order["order_id"]]).values()
    assert row.watching and row.signed_at is not None
    asked = carrier_queries(stack)[order["waybill"]]

    # a day and a half later the signature is 15.5 days old and the order is due for a look again
    with session_scope() as session:
        row = session.get(TrackedOrder, order["order_id"])
        row.signed_at = utcnow() - timedelta(days=15, hours=12)
        row.next_check_at = utcnow() - timedelta(minutes=1)
        session.add(row)
    stack.run(order_tracker(batch_size=100, concurrency=8))

    assert carrier_queries(stack)[order["waybill"]] == asked
    (row,) = watch_list([order["order_id"]]).values()
    assert not row.watching
