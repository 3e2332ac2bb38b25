"""Opening an exchange (§1.2): the request is checked first (nothing is recorded when it is bad),
then one flow run is started for the case (the case id is the idempotency key)."""

from __future__ import annotations

from aftersales.domain.exchange_rules import exchange_kind
from aftersales.domain.masking import mask_text
from aftersales.domain.rules import ReturnKind, approval_level, check_order_id, check_ref, check_skus, check_text
from aftersales.domain.settings import get_settings
from aftersales.intake.core import Opened, start_case_run
from aftersales.integrations.platform import PlatformClient
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
    async with PlatformClient() as platform:
        _order, terms, _replacement = await exchange_terms(platform, order_id, sku, new_sku, quantity, kind)
    case_id = exchange_case_id(order_id, request_ref)
    return await start_case_run(
        "exchange/exchange", case_id,
        {"case_id": case_id, "order_id": order_id, "sku": terms.sku, "new_sku": terms.new_sku, "quantity": terms.quantity,
         "kind": kind.value, "reason": mask_text(reason), "requested_by": requested_by},
        tags=["process:exchange", f"level:{approval_level(terms.value, get_settings().rules).value}", f"kind:{kind.value}",
              f"price-difference:{terms.settlement.value}"],
        same=("sku", "new_sku", "quantity", "kind"),
    )
