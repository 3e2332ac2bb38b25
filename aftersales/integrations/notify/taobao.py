"""The buyer of a refund applied for on Taobao/Tmall is told on the refund itself.

TOP gives the buyer's phone and address encrypted, and the refund's message thread is where a
Taobao buyer reads the seller: a buyer message of such a case goes to ``tbrefund://<refund id>``,
an Apprise channel of our own (Apprise's ``@notify`` decorator) that leaves it as a refund message
(``taobao.refund.message.add``, at most 400 bytes). It is delivered and retried like any other
message through the outbox.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from apprise.decorators import notify

SCHEME = "tbrefund"
MAX_BYTES = 400  # taobao.refund.message.add's limit for ``content``

log = logging.getLogger(__name__)


def refund_url(refund_id: str) -> str:
    """The buyer's channel on the refund ``refund_id``."""
    return f"{SCHEME}://{refund_id}"


def fit(text: str, limit: int = MAX_BYTES) -> str:
    """``text`` cut to ``limit`` bytes of UTF-8 (with "…" when cut), never inside a character."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - len("…".encode())].decode("utf-8", errors="ignore") + "…"


@notify(on=SCHEME, name="Taobao refund message")
def leave_on_refund(body: str, title: str, notify_type: str, meta: dict, *args, **kwargs) -> bool:
    from aftersales.integrations.platform import PlatformError, TopClient

    refund_id = meta["host"]
    content = fit(f"{title}\n{body}" if title else body)

    async def leave() -> None:
        async with TopClient() as top:
            await top.leave_refund_message(refund_id, content)

    try:  # a loop of its own in a thread of its own: the caller may be inside a running loop
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, leave()).result()
    except PlatformError as failed:  # Apprise's warning is the outbox row's reason; it is retried
        log.warning("refund %s: the message was not left: %s", refund_id, failed)
        return False
    return True
