"""Money and goods that move: refunds and re-shipments, each exactly once.

Three guards, from the inside out: the platform call carries an idempotency key derived from case
and step (a retried HTTP call or task is answered with the first result); the task's business cache
key skips it on a resumed run; the ledger line has the same key as a unique column.
"""

from __future__ import annotations

from decimal import Decimal

from prefect import task

from aftersales.domain.rules import PostageLine
from aftersales.domain.settings import get_settings
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope
from aftersales.integrations.platform import PlatformClient, RefundKind
from aftersales.tasks.cases import load_case, no_retry_on_invalid
from aftersales.tasks.notify import notify_in_session, send_pending


def _per_case_step(prefix: str):
    def key(_context, parameters) -> str:
        return f"{prefix}-{parameters['case_id']}-{parameters['step']}"

    return key


@task(name="refund-buyer", retries=3, retry_delay_seconds=[2, 10, 30], cache_key_fn=_per_case_step("refund"),
      persist_result=True, retry_condition_fn=no_retry_on_invalid)
async def refund_buyer(case_id: str, step: str, goods_amount: Decimal, approved_by: str, reason: str,
                       postage: list[PostageLine] | None = None) -> dict:
    """Refund the buyer once: the goods (less any postage share of theirs), and separately the
    postage the rulebook puts on the seller — the platform caps goods refunds at the price paid."""
    postage = postage or []
    goods = goods_amount + sum((line.add_to_refund for line in postage if line.add_to_refund < 0), Decimal("0"))
    owed_postage = sum((line.add_to_refund for line in postage if line.add_to_refund > 0), Decimal("0"))
    key = f"refund-{case_id}-{step}"
    case = load_case(case_id)
    refs: dict[str, str] = {}
    async with PlatformClient() as platform:
        if goods > 0:
            refs["goods"] = (await platform.refund(case.order_id, goods, reason, case_id, key)).refund_id
        if owed_postage > 0:
            refs["postage"] = (await platform.refund(case.order_id, owed_postage, f"{reason}（运费 postage）", case_id, f"{key}-postage", RefundKind.POSTAGE)).refund_id
    with session_scope() as session:
        case = case_store.get_case(session, case_id)
        case_store.add_ledger_line(session, idempotency_key=key, case=case, kind="refund", amount=goods_amount, bearer="seller",
                                   approved_by=approved_by, platform_ref=refs.get("goods", ""), note=reason)
        for index, line in enumerate(postage):
            ref = refs.get("postage", "") if line.add_to_refund > 0 else refs.get("goods", "")
            case_store.add_ledger_line(session, idempotency_key=f"{key}-{line.kind}-{line.bearer}-{index}", case=case, kind=line.kind,
                                       amount=line.amount, bearer=line.bearer, approved_by=approved_by, platform_ref=ref, note=line.note)
        total = goods + owed_postage
        case_store.record_event(session, case_id, f"{step}:refunded", approved_by, "refund.paid",
                                {"amount": total, "goods_amount": goods, "postage": owed_postage, "platform_refs": refs, "reason": reason})
        notify_in_session(session, case, f"{step}:refunded", "refund_paid", staff_tags=["finance"], buyer=True,
                          refund_amount=f"{total:.2f}", reason=reason)
    send_pending(case_id)
    return {"refunds": refs, "amount": str(total)}


@task(name="reship-items", retries=3, retry_delay_seconds=[2, 10, 30], cache_key_fn=_per_case_step("reship"),
      persist_result=True, retry_condition_fn=no_retry_on_invalid)
async def reship_items(case_id: str, step: str, items: list[dict], value: Decimal, approved_by: str, reason: str) -> dict:
    """Re-ship goods once; the goods and the postage are the seller's cost (§1.1)."""
    key = f"reship-{case_id}-{step}"
    case = load_case(case_id)
    async with PlatformClient() as platform:
        shipment = await platform.reship(case.order_id, items, reason, case_id, key)
    with session_scope() as session:
        case = case_store.get_case(session, case_id)
        case_store.add_ledger_line(session, idempotency_key=key, case=case, kind="reshipment", amount=value, bearer="seller",
                                   approved_by=approved_by, platform_ref=shipment.reshipment_id, note=reason)
        case_store.add_ledger_line(session, idempotency_key=f"{key}-postage", case=case, kind="outbound_postage",
                                   amount=get_settings().rules.standard_postage, bearer="seller", approved_by=approved_by,
                                   platform_ref=shipment.reshipment_id, note="补发运费 postage of the re-shipment")
        case_store.record_event(session, case_id, f"{step}:reshipped", approved_by, "goods.reshipped",
                                {"items": items, "carrier": shipment.carrier, "waybill": shipment.waybill})
        notify_in_session(session, case, f"{step}:reshipped", "reshipped", staff_tags=["warehouse"], buyer=True,
                          carrier=shipment.carrier, waybill=shipment.waybill)
    send_pending(case_id)
    return {"reshipment_id": shipment.reshipment_id, "waybill": shipment.waybill}
