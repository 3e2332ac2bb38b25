"""The outside world's two doors: the shop platform and the carrier tracking aggregator.

One client per outside system, each wrapping one ``httpx.AsyncClient``:

* ``PlatformClient`` (``shop.py``): orders, return addresses, refunds, re-shipments and reviews
  from the shop platform's HTTP gateway (the sandbox in ``sandbox_platform/`` speaks the same API).
* ``CarrierClient`` (``carrier.py``): Kuaidi100's real-time query (``shared/domain/CARRIERS.md``),
  so going live is a URL and a key.

Both send through ``http.py`` (retries with backoff, transient failures only); the platform's
vocabulary and money are in ``models.py``, the errors in ``errors.py``. Money is ``Decimal``
everywhere; a float is refused at the door (``TypeError``). Times are timezone-aware.
"""

from aftersales.integrations.platform.models import (
    CENT,
    refuse_float,
    to_cents,
    Money,
    money_text,
    OrderStatus,
    Rating,
    Customer,
    OrderItem,
    Order,
    OrderPage,
    ReturnAddress,
    RefundKind,
    Refund,
    ReshipmentItem,
    Reshipment,
    StockLevel,
    Charge,
    Coupon,
    Review,
    ReviewReport,
    TrackingEvent,
    TrackingResult,
)
from aftersales.integrations.platform.errors import (
    PlatformError,
    OrderNotFound,
    PlatformRejected,
    PlatformUnavailable,
    CarrierError,
    NoTrackingRecord,
)
from aftersales.integrations.platform.shop import (
    PlatformClient,
)
from aftersales.integrations.platform.carrier import (
    CARRIER_TZ,
    kuaidi100_sign,
    CarrierClient,
    main_state,
)

__all__ = [
    "CENT",
    "refuse_float",
    "to_cents",
    "Money",
    "money_text",
    "OrderStatus",
    "Rating",
    "Customer",
    "OrderItem",
    "Order",
    "OrderPage",
    "ReturnAddress",
    "RefundKind",
    "Refund",
    "ReshipmentItem",
    "Reshipment",
    "StockLevel",
    "Charge",
    "Coupon",
    "Review",
    "ReviewReport",
    "TrackingEvent",
    "TrackingResult",
    "PlatformError",
    "OrderNotFound",
    "PlatformRejected",
    "PlatformUnavailable",
    "CarrierError",
    "NoTrackingRecord",
    "PlatformClient",
    "CARRIER_TZ",
    "kuaidi100_sign",
    "CarrierClient",
    "main_state",
]
