"""What can go wrong at the platform and at the carrier, each error naming what failed."""

from __future__ import annotations

from aftersales.integrations.platform.models import RefundToAgree


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


class NotOffered(PlatformRejected):
    """The shop's platform has no such operation (TOP cannot start a refund, ship, charge…): says
    where the seller does it instead. Final, like any refusal."""

    def __init__(self, operation: str, instead: str):
        super().__init__(operation, None, f"not offered by this platform: {instead}")


class CarrierError(Exception):
    """The carrier aggregator answered with an error code (Kuaidi100 ``returnCode``)."""

    def __init__(self, com: str, waybill: str, return_code: str | None, message: str, operation: str = "query"):
        self.com = com
        self.waybill = waybill
        self.return_code = return_code
        self.message = message
        self.operation = operation
        super().__init__(f"carrier {operation} {com} {waybill} failed ({return_code}): {message}")


class NoTrackingRecord(CarrierError):
    """Kuaidi100 ``returnCode`` 500: no tracking yet (or a wrong carrier code/waybill)."""


# --- TOP (Taobao Open Platform): its ``error_response`` as typed errors (top.py) -------------------


class TopError(PlatformError):
    """TOP answered ``error_response``: its ``code`` and ``msg``, the ``sub_code``/``sub_msg`` detail,
    and, where a setting of ours is the likely cause, which one to check (``setting``)."""

    def __init__(self, method: str, code: int | None, msg: str, sub_code: str | None = None, sub_msg: str | None = None,
                 request_id: str | None = None, *, setting: str | None = None, hint: str | None = None):
        self.code, self.msg, self.sub_code, self.sub_msg = code, msg, sub_code, sub_msg
        self.request_id, self.setting, self.hint = request_id, setting, hint
        detail = f"TOP {code} {msg}" if code is not None else msg
        if sub_code or sub_msg:
            detail += f"; {sub_code or ''}{': ' if sub_code and sub_msg else ''}{sub_msg or ''}"
        if setting or hint:
            detail += f" — {'check ' + setting + ': ' if setting else ''}{hint or ''}"
        super().__init__(method, 200, detail)  # TOP answers its errors with HTTP 200

    def __str__(self) -> str:
        return f"platform {self.operation} failed: {self.detail}"


class TopRejected(TopError, PlatformRejected):
    """TOP refused the call (a business rule, a bad argument): final, retrying gives the same answer."""


class TopAuthError(TopRejected):
    """TOP did not accept who we are: signature, app key, session key, permissions or the timestamp.
    ``setting`` names what to check (``AFTERSALES_TOP_APP_SECRET``, ``_APP_KEY``, ``_SESSION_KEY``)."""


class TopNotFound(TopError, OrderNotFound):
    """TOP does not know the trade or the refund."""


class TopUnavailable(TopError, PlatformUnavailable):
    """TOP was busy or down (``isp.*``, App Call Limited, Service Unavailable) after every retry."""


class RefundVersionConflict(TopRejected):
    """The refund changed since we read it (a stale ``refund_version``): read it again and decide again,
    never send the same call with a newer version blindly."""


class VerificationCodeRequired(TopRejected):
    """A large refund: TOP sent the seller an SMS code (短信验证码) instead of agreeing. Repeat the same
    agreement with the code a person enters: ``agree_refunds(error.refunds, sms_code=code)``. Not
    retried by itself: another call would only send another SMS."""

    def __init__(self, *args: object, refunds: tuple[RefundToAgree, ...] = (), **kwargs: object):
        self.refunds = refunds
        super().__init__(*args, **kwargs)
