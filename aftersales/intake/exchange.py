"""Opening an exchange (§1.2): the request is checked first (nothing is recorded when it is bad),
then one flow run is started for the case (the case id is the idempotency key)."""

from __future__ import annotations

from aftersales.domain.details import ExchangeDetails
from aftersales.domain.exchange_rules import exchange_kind
from aftersales.domain.masking import mask_text
from aftersales.domain.rules import ReturnKind, approval_level, check_order_id, check_ref, check_skus, check_text
from aftersales.domain.settings import get_settings
from aftersales.domain.models import Process, Role
from aftersales.intake.core import NewCase, Opened, open_case
from aftersales.intake.registry import ProcessEntry, ProcessRequest, cli
from aftersales.integrations.platform import shop_platform
from aftersales.tasks.exchange import exchange_terms


def exchange_case_id(order_id: str, request_ref: str | None = None) -> str:
    return f"exchange-{order_id}" + (f"-{request_ref}" if request_ref else "")


async def open_exchange(order_id: str, sku: str, new_sku: str = "", quantity: int | str = 1, reason: str = "",
                        kind: ReturnKind | str = ReturnKind.NO_REASON, requested_by: str = "buyer", request_ref: str | None = None) -> Opened:
    """§1.2 step 1 at the door: refuse a bad request at once (nothing is recorded), else start its run."""
    kind = exchange_kind(kind)
    order_id = check_order_id(order_id)
    sku = check_skus(sku)[0]
    new_sku = check_skus(new_sku, "new_sku")[0] if (new_sku or "").strip() else ""
    reason = check_text(reason, "reason", "换货原因")
    requested_by = check_text(requested_by, "requested_by", "申请人", 64) or "buyer"
    request_ref = check_ref(request_ref)
    async with shop_platform() as platform:
        order, terms, replacement = await exchange_terms(platform, order_id, sku, new_sku, quantity, kind)
    case_id = exchange_case_id(order_id, request_ref)
    new = NewCase(
        fields=dict(id=case_id, process=Process.EXCHANGE, order_id=order_id, customer_id=order.customer.customer_id,
                    requested_by=requested_by, reason=mask_text(reason), amount=terms.value,
                    details=ExchangeDetails(kind=kind, **terms.as_details(), new_name=replacement.name if replacement else terms.new_sku,
                                            customer=order.customer.model_dump(mode="json"),
                                            items=[item.model_dump(mode="json") for item in order.items])),
        opened={"kind": kind.value, "reason": mask_text(reason), **terms.as_details()},
        terms={"sku": terms.sku, "new_sku": terms.new_sku, "quantity": terms.quantity, "kind": kind.value}, actor=requested_by,
        notice="exchange_opened", staff_tags=(Role.AGENT.value,), buyer=True,
        say=lambda _case: {"sku": terms.sku, "new_sku": terms.new_sku, "quantity": terms.quantity},
    )
    return await open_case(
        "exchange/exchange", new,
        {"case_id": case_id, "order_id": order_id, "sku": terms.sku, "new_sku": terms.new_sku, "quantity": terms.quantity,
         "kind": kind.value, "reason": mask_text(reason), "requested_by": requested_by},
        tags=["process:exchange", f"level:{approval_level(terms.value, get_settings().rules).value}", f"kind:{kind.value}",
              f"price-difference:{terms.settlement.value}"],
    )


class ExchangeRequest(ProcessRequest):
    order_id: str = cli("--order", "订单号 order id (delivered)")
    sku: str = cli("--sku", "要换的商品 SKU the item sent back")
    new_sku: str = cli("--new-sku", "换成的商品 SKU the replacement (default: the same SKU)", "")
    quantity: int = cli("--quantity", "数量 how many", 1)
    reason: str = cli("--reason", "换货原因 reason", "")
    kind: str = cli("--kind", "no_reason | quality | wrong_item (quality, wrong_item: the seller pays the postage)",
                    ReturnKind.NO_REASON.value)
    requested_by: str = cli("--requested-by", "buyer, or the staff id opening it for the buyer", "buyer")
    request_ref: str | None = cli("--request-ref", "platform's request id, for a second exchange on one order", None)


PROCESS = ProcessEntry(
    name="exchange", section="§1.2", title="Exchanges (§1.2) 换货", route="exchanges", request=ExchangeRequest, opener=open_exchange,
    summary="Open an exchange case. A repeated request opens no second case.",
    # a size up, and a cheaper model (the difference is refunded); both wait for a supervisor
    demo=(ExchangeRequest(order_id="O20261120-001", sku="TS-COT-WH-L", new_sku="TS-COT-WH-XL", reason="尺码偏小，换大一码 too small, one size up"),
          ExchangeRequest(order_id="O20261120-005", sku="SH-RUN-42", new_sku="SH-RUN-42-LITE", kind=ReturnKind.QUALITY.value,
                          reason="鞋底开胶，换简约款 sole came loose, the lighter model instead")),
)
