"""What can go wrong at the platform and at the carrier, each error naming what failed."""

from __future__ import annotations


class PlatformError(Exception):
    """A platform call failed; says which call, with what HTTP status and why."""

    def __init__(self, operation: str, status_code: int | None, detail: str):
        self.operation = operation
        self.status_code = status_code
        self.detail = detail
        status = f"HTTP {status_code}" if status_code is not None else "no answer"
        super().__init__(f"platform {operation} failed ({status}): {detail}")


class OrderNotFound(PlatformError):
    """The platform does not know the order (404)."""


class PlatformRejected(PlatformError):
    """The platform refused the request (4xx): wrong key, over-refund, bad input. Not retried."""


class PlatformUnavailable(PlatformError):
    """No good answer after every retry: timeouts, connection errors, 429 or 5xx."""


class CarrierError(Exception):
    """The carrier aggregator answered with an error code (Kuaidi100 ``returnCode``)."""

    def __init__(self, com: str, waybill: str, return_code: str | None, message: str):
        self.com = com
        self.waybill = waybill
        self.return_code = return_code
        self.message = message
        super().__init__(f"carrier query {com} {waybill} failed ({return_code}): {message}")


class NoTrackingRecord(CarrierError):
    """Kuaidi100 ``returnCode`` 500: no tracking yet (or a wrong carrier code/waybill)."""
