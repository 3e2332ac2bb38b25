"""Telling people: outbox rows written with the case event, then a best-effort delivery.

A message is enqueued in the same transaction as the event it reports, so it cannot be lost; the
delivery right after is only a fast path. A channel that is down leaves the row pending for the
outbox retry flow and never fails the case.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlmodel import Session

from aftersales.domain.details import details_of
from aftersales.domain.models import Case
from aftersales.domain.settings import get_settings
from aftersales.integrations import notify as outbox

log = logging.getLogger(__name__)


def case_context(case: Case) -> dict[str, Any]:
    """The placeholders every template may use. Staff rendering masks the buyer's data."""
    buyer = details_of(case).customer
    settings = get_settings()
    return {
        "case_id": case.id,
        "order_id": case.order_id,
        "amount": f"{case.amount:.2f}",
        "reason": case.reason,
        "customer_name": buyer.name if buyer else "",
        "customer_phone": buyer.phone if buyer else "",
        "address": buyer.address if buyer else "",
        "link": f"{settings.ui_url.rstrip('/')}/runs/flow-run/{case.flow_run_id}" if case.flow_run_id else settings.ui_url,
    }


def notify_in_session(
    session: Session,
    case: Case,
    event_key: str,
    template: str,
    *,
    staff_tags: list[str] | None = None,
    staff_url: str | None = None,
    buyer: bool = False,
    **extra: Any,
) -> None:
    """Enqueue the staff and/or buyer message for one case event (idempotent by event key); staff
    messages go to the role channels ``staff_tags`` or to one person's own channel ``staff_url``."""
    context = {**case_context(case), **extra}
    if staff_tags or staff_url:
        outbox.enqueue(session, case_id=case.id, key=f"{case.id}:{event_key}:staff", audience="staff", template=template, context=context,
                       tags=staff_tags, to_url=staff_url)
    if buyer:
        customer = details_of(case).customer
        outbox.enqueue(
            session, case_id=case.id, key=f"{case.id}:{event_key}:buyer", audience="customer", template=template,
            context=context, to_url=outbox.buyer_url(details_of(case)), language=(customer.language if customer else "") or "zh-CN",
        )


def send_pending(case_id: str) -> None:
    """Fast path: try to deliver this case's pending messages now; never raises."""
    try:
        outbox.deliver_pending(case_id=case_id)
    except Exception as exc:  # the outbox retry flow will deliver it; the case goes on
        log.warning("notification delivery for %s postponed: %s", case_id, exc)

