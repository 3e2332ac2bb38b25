"""The 15-day tracker (§1.9) and the review monitor (§1.6) on the real stack."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from sqlmodel import select

from aftersales.domain.calendar import utcnow
from aftersales.domain.models import Case, TrackedOrder
from aftersales.integrations.db import session_scope
from aftersales.integrations.sandbox.bulk import bulk_waybill
from tests.support.stack import wait_until


def cases_of(order_id: str) -> list[Case]:
    with session_scope() as session:
        return list(session.exec(select(Case).where(Case.order_id == order_id)))


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

    order = stack.make_order(paid="99.00")
    negative = stack.sandbox("POST", "/sandbox/reviews", json={"order_id": order["order_id"], "rating": "negative", "text": "质量太差，穿一次就起球"})
    positive_order = stack.make_order(paid="99.00")
    stack.sandbox("POST", "/sandbox/reviews", json={"order_id": positive_order["order_id"], "rating": "positive", "text": "很好"})

    first = stack.run(review_monitor())
    assert f"review-{negative['review_id']}" in first["follow_ups"]
    stack.waiting(f"review-{negative['review_id']}", "review-cause")
    second = stack.run(review_monitor())
    assert len(cases_of(order["order_id"])) == 1  # the overlap opened nothing twice
    assert cases_of(positive_order["order_id"]) == []
    assert second["reviews"] >= 1
