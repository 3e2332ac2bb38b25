"""The outside world's two doors: the shop platform and the carrier tracking aggregator.

One client per outside system, each wrapping one ``httpx.AsyncClient``; the processes reach the
shop platform through ``shop_platform()`` (``backend.py``: one interface, ``ShopPlatform``, with a
backend per ``AFTERSALES_PLATFORM``):

* ``PlatformClient`` (``shop.py``): orders, return addresses, refunds, re-shipments and reviews
  from the shop platform's HTTP gateway (the sandbox in ``sandbox_platform/`` speaks the same API).
* ``TopClient`` (``top.py``): the same shop on Taobao/Tmall's TOP protocol (``/router/rest``, signed
  forms, ``error_response`` codes as typed errors), for ``AFTERSALES_PLATFORM=taobao``.
* ``CarrierClient`` (``carrier.py``): Kuaidi100's real-time query (``/poll/query.do``) and push
  subscription (``/poll``; ``read_push``/``push_signed`` for the pushes), so going live is a URL and a key.

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
    yuan_to_fen,
    fen_to_yuan,
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
    ReviewPage,
    RefundStatus,
    RefundApplication,
    RefundPage,
    RefundToAgree,
    RefundAgreement,
    RefusalReason,
    RefundMessage,
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
    TopError,
    TopRejected,
    TopAuthError,
    TopNotFound,
    TopUnavailable,
    RefundVersionConflict,
    VerificationCodeRequired,
    NotOffered,
)
from aftersales.integrations.platform.shop import (
    PlatformClient,
)
from aftersales.integrations.platform.top import (
    TopClient,
    top_sign,
    top_time,
)
from aftersales.integrations.platform.backend import (
    BACKENDS,
    ShopPlatform,
    shop_platform,
)
from aftersales.integrations.platform.carrier import (
    CARRIER_TZ,
    kuaidi100_sign,
    CarrierClient,
    CarrierPush,
    PushMalformed,
    main_state,
    push_sign,
    push_signed,
    read_push,
)



__all__ = [
    "CENT",
    "refuse_float",
    "to_cents",
    "Money",
    "money_text",
    "yuan_to_fen",
    "fen_to_yuan",
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
    "ReviewPage",
    "RefundStatus",
    "RefundApplication",
    "RefundPage",
    "RefundToAgree",
    "RefundAgreement",
    "RefusalReason",
    "RefundMessage",
    "TrackingEvent",
    "TrackingResult",
    "PlatformError",
    "OrderNotFound",
    "PlatformRejected",
    "PlatformUnavailable",
    "CarrierError",
    "NoTrackingRecord",
    "TopError",
    "TopRejected",
    "TopAuthError",
    "TopNotFound",
    "TopUnavailable",
    "RefundVersionConflict",
    "VerificationCodeRequired",
    "PlatformClient",
    "TopClient",
    "BACKENDS",
    "ShopPlatform",
    "shop_platform",
    "NotOffered",
    "top_sign",
    "top_time",
    "CARRIER_TZ",
    "kuaidi100_sign",
    "CarrierClient",
    "CarrierPush",
    "PushMalformed",
    "main_state",
    "push_sign",
    "push_signed",
    "read_push",
]
