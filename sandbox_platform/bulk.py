"""Synthetic shipped orders with Kuaidi100 tracking, in bulk, for the tracker's tests and benchmark.

Deterministic: order i has a problem when ``i % period == 0`` (period = 1 / problem_share), the
problem cycling through out of area (207), damaged (209), signed by someone else (303) and no update
for five days; every other parcel was signed two days ago.
"""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta
from decimal import Decimal

from aftersales.integrations.platform import Customer, Order, OrderItem, OrderStatus
from sandbox_platform.parcels import Parcel, ParcelEvent

PROBLEMS = ("207", "209", "303", "stale")


def bulk_waybill(prefix: str, index: int) -> str:
    """The waybill of synthetic order ``index``: unique per prefix, known to callers."""
    return f"75{zlib.crc32(prefix.encode()) % 1000:03d}{index:09d}"


def synthetic_orders(count: int, prefix: str, problem_share: float, now: datetime) -> tuple[list[Order], list[Parcel]]:
    period = int(1 / problem_share) if problem_share > 0 else 0
    orders, parcels = [], []
    for i in range(count):
        order_id, waybill = f"{prefix}{i:07d}", bulk_waybill(prefix, i)
        shipped = now - timedelta(days=4, minutes=i % 600)
        problem = PROBLEMS[(i // period) % len(PROBLEMS)] if period and i % period == 0 else None
        events = [ParcelEvent(shipped, 1, "103", "【杭州市】快件已揽收 collected", "浙江,杭州市"),
                  ParcelEvent(shipped + timedelta(hours=20), 0, "1001", "【上海市】到达派件城市 arrived", "上海,上海市")]
        delivered = None
        if problem == "207":
            events.append(ParcelEvent(shipped + timedelta(days=1), 2, "207", "【上海市】超区，网点无法派送 out of area", "上海,上海市"))
        elif problem == "209":
            events.append(ParcelEvent(shipped + timedelta(days=1), 2, "209", "【上海市】外包装破损 damaged", "上海,上海市"))
        elif problem == "stale":
            events[-1] = ParcelEvent(now - timedelta(days=5), 0, "1002", "【上海市】干线运输中 trunk", "上海,上海市")
        else:
            delivered = now - timedelta(days=2)
            code = "303" if problem == "303" else "301"
            events.append(ParcelEvent(delivered, 3, code, "【上海市】已签收 signed", "上海,上海市"))
        customer = Customer(customer_id=f"C{prefix}{i:07d}", name="测试买家", phone=f"139{i:08d}",
                            email=f"buyer{i}@bulk.example", address="上海市浦东新区测试路 1 号", language="zh-CN")
        orders.append(Order(
            order_id=order_id, customer=customer,
            items=[OrderItem(sku="BULK-SKU", name="测试商品", category="测试", quantity=1, unit_price=Decimal("20.00"))],
            paid_amount=Decimal("20.00"), postage_paid=Decimal("0.00"), free_shipping=True,
            status=OrderStatus.COMPLETED if delivered else OrderStatus.SHIPPED, shipped_at=shipped,
            delivered_at=delivered, transaction_success_at=delivered, carrier="zhongtong", waybill=waybill, warehouse_left=True,
        ))
        parcels.append(Parcel(waybill, "zhongtong", customer.phone, events))
    return orders, parcels
