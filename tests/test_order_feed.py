"""The platform's order feed (§1.9) through the client, against the sandbox over loopback HTTP."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import httpx
import pytest

from aftersales.integrations.platform import PlatformClient
from sandbox_platform.app import seed_orders
from tests.support.sandbox import start_sandbox

API_KEY = "test-feed-key"


@pytest.fixture(scope="module")
def server():
    url, app, stop = start_sandbox(API_KEY)
    yield SimpleNamespace(url=url, app=app)
    stop()


@pytest.fixture
def sandbox(server):
    with httpx.Client(base_url=server.url, headers={"X-Api-Key": API_KEY}) as admin:
        admin.post("/sandbox/reset", json={"seed": False}).raise_for_status()
        yield SimpleNamespace(url=server.url, admin=admin)


def put(sandbox, order_id: str, shipped_days_ago: float, **changes) -> dict:
    order = seed_orders()[0].model_dump(mode="json")
    shipped = datetime.now(timezone.utc) - timedelta(days=shipped_days_ago)
    order.update(order_id=order_id, waybill=f"ZT{order_id}", shipped_at=shipped.isoformat(), delivered_at=None,
                 transaction_success_at=None, status="shipped", **changes)
    response = sandbox.admin.post("/sandbox/orders", json=order)
    response.raise_for_status()
    return response.json()


def read_all(sandbox, limit: int, **query) -> list:
    async def scenario():
        orders, after = [], None
        async with PlatformClient(base_url=sandbox.url, api_key=API_KEY, retries=1) as platform:
            while True:
                page = await platform.list_shipped_orders(after=after, limit=limit, **query)
                orders += page.orders
                if page.next is None:
                    return orders
                after = page.next

    return asyncio.run(scenario())


def test_the_platform_stamps_every_creation_and_change(sandbox):
    before = datetime.now(timezone.utc)
    created = put(sandbox, "F1", 3, modified_at="2020-01-01T00:00:00+08:00")  # the caller cannot set it
    stamped = datetime.fromisoformat(created["modified_at"])
    assert stamped.tzinfo is not None and stamped >= before - timedelta(seconds=1)

    sandbox.admin.post("/sandbox/parcels/ZTF1/events", json={"state": 3, "status_code": "301", "context": "已签收 signed"}).raise_for_status()
    signed = sandbox.admin.get("/api/orders/F1").json()
    assert signed["delivered_at"] is not None and datetime.fromisoformat(signed["modified_at"]) >= stamped


def test_an_order_that_arrives_late_comes_after_everything_already_read(sandbox):
    start = datetime.now(timezone.utc) - timedelta(days=30)
    for i in range(5):
        put(sandbox, f"A{i}", shipped_days_ago=1 + i / 10)
    first = read_all(sandbox, 2, shipped_since=start, modified_since=start)
    assert [o.order_id for o in first] == [f"A{i}" for i in range(5)]  # oldest change first, over three pages
    checkpoint = max(o.modified_at for o in first)

    late = put(sandbox, "LATE", shipped_days_ago=4)  # shipped before all of them, on the platform only now
    since_checkpoint = read_all(sandbox, 2, shipped_since=start, modified_since=checkpoint)
    assert late["order_id"] in [o.order_id for o in since_checkpoint]
    assert [o.order_id for o in since_checkpoint][-1] == "LATE"

    # by shipping time (the feed's old shape, still served) it sorts first, behind any such cursor
    by_shipping = read_all(sandbox, 2, shipped_since=start)
    assert [o.order_id for o in by_shipping][0] == "LATE" and len(by_shipping) == 6


def test_the_shipped_since_filter_applies_to_the_incremental_feed_too(sandbox):
    put(sandbox, "OLD", shipped_days_ago=40)
    put(sandbox, "NEW", shipped_days_ago=2)
    start = datetime.now(timezone.utc) - timedelta(days=30)
    assert [o.order_id for o in read_all(sandbox, 10, shipped_since=start, modified_since=start)] == ["NEW"]


def test_the_feed_refuses_a_query_without_a_start_or_with_a_foreign_cursor(sandbox):
    with pytest.raises(ValueError):
        read_all(sandbox, 10)
    with pytest.raises(ValueError):
        read_all(sandbox, 10, modified_since=datetime(2026, 11, 20))  # naive
    assert sandbox.admin.get("/api/orders").status_code == 422
    since = datetime.now(timezone.utc).isoformat()
    assert sandbox.admin.get("/api/orders", params={"modified_since": since, "after": "nonsense|X"}).status_code == 422
