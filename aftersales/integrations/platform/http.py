"""What both clients share on the wire: retries with backoff on transient failures only, JSON
with ``Decimal``, error details, secrets."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, Self

import httpx
from pydantic import SecretStr

from aftersales.domain.settings import Settings

RETRYABLE_STATUS = {429} | set(range(500, 600))

# One TLS context for every client of the process (httpx's default: certifi's roots, or
# SSL_CERT_FILE), made on import. Loading the roots costs about 50 ms: a flow run forked from the
# warm process, which imports this module, inherits the context instead of loading them again for
# each pool it opens (py-spy: 2–3 % of a resumed run's CPU). Sharing one context is what it is for.
TLS = httpx.create_ssl_context()


class Backoff:
    """Exponential backoff with jitter, so many clients retrying do not hit the gateway in step."""

    def __init__(self, base: float, cap: float):
        self.base = base
        self.cap = cap

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after and retry_after.isdigit():
            # the gateway knows best when it will be back; still never wait past the cap
            return min(float(retry_after), self.cap)
        return min(self.base * 2**attempt, self.cap) * random.uniform(0.5, 1.0)


async def with_retries(
    send: Callable[[], Awaitable[httpx.Response]],
    retries: int,
    backoff: Backoff,
    give_up: Callable[[int | None, str], Exception],
    transient_answer: Callable[[httpx.Response], str | None] | None = None,
) -> httpx.Response:
    """Send until an answer that is not worth retrying; ``give_up`` builds the final error.

    The caller's ``send`` repeats the same request, idempotency key included, so a retry after a
    lost answer replays the first effect instead of paying twice. A gateway that reports being busy
    inside a 200 (TOP's ``error_response``) says so through ``transient_answer``: the detail of an
    answer worth another try, else None.
    """
    for attempt in range(retries + 1):
        try:
            response = await send()
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as error:
            # transient only: a bad URL or scheme (UnsupportedProtocol) is a setup bug, raised as is
            status, detail, retry_after = None, f"{type(error).__name__} {error}".strip(), None
        else:
            if response.status_code in RETRYABLE_STATUS:
                detail = detail_of(response)
            elif transient_answer is None or (detail := transient_answer(response)) is None:
                return response
            status, retry_after = response.status_code, response.headers.get("Retry-After")
        if attempt < retries:
            await asyncio.sleep(backoff.delay(attempt, retry_after))
    raise give_up(status, f"{detail} (after {retries + 1} attempts)")


def json_body(response: httpx.Response) -> Any:
    # parse_float=Decimal: should a gateway ever send a number, no cent is lost on the way
    return json.loads(response.content, parse_float=Decimal)


def detail_of(response: httpx.Response) -> str:
    try:
        body = json_body(response)
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict) and "detail" in body:
        detail = body["detail"]
        return detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False, default=str)
    return json.dumps(body, ensure_ascii=False, default=str)[:300]


def secret_value(value: str | SecretStr) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


class GatewayClient:
    """What both clients share: an ``httpx.AsyncClient`` with an explicit timeout, and the retry
    budget and backoff its calls go through (``with_retries``). Use a client as ``async with …:``;
    arguments override the settings (``AFTERSALES_PLATFORM_TIMEOUT_SECONDS``, ``_RETRIES``);
    ``transport`` lets a test or a bench plug in its own httpx transport.

    One connection pool per run: every client a flow run makes (in its event loop) with the same
    address, headers and timeout borrows one ``httpx.AsyncClient``, so a run's tens of calls reuse
    their connections instead of opening a pool each; it lives as long as the run's process. Outside
    a flow run (a CLI command, the intake API, a test) each client has its own, closed on exit."""

    def __init__(self, *, settings: Settings, timeout: float | None, retries: int | None,
                 transport: httpx.AsyncBaseTransport | None, backoff_base: float, backoff_cap: float,
                 base_url: str = "", headers: dict[str, str] | None = None):
        self.retries = settings.platform_retries if retries is None else retries
        self._backoff = Backoff(backoff_base, backoff_cap)
        seconds = settings.platform_timeout_seconds if timeout is None else timeout

        def new_pool() -> httpx.AsyncClient:
            return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=httpx.Timeout(seconds), transport=transport, verify=TLS)

        shared = transport is None
        self._http = shared_pool((base_url, tuple(sorted((headers or {}).items())), seconds), new_pool) if shared else None
        self._owned = self._http is None
        if self._http is None:
            self._http = new_pool()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owned:  # a run's shared pool outlives its borrowers: it lives as long as the run
            await self._http.aclose()


_POOLS: dict[tuple, httpx.AsyncClient] = {}


def shared_pool(key: tuple, make: Callable[[], httpx.AsyncClient]) -> httpx.AsyncClient | None:
    """The running flow run's pool for ``key`` (made on first use); None outside a flow run."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return None
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    scope = (str(context.flow_run.id), id(loop), *key)  # an httpx client belongs to one event loop
    pool = _POOLS.get(scope)
    if pool is None or pool.is_closed:
        pool = _POOLS[scope] = make()
    return pool
