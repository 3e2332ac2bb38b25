"""Opening a compensation (§1.3): the offer is checked first (nothing is recorded when it is bad),
then one flow run is started for the case (the case id is the idempotency key)."""

from __future__ import annotations

from aftersales.domain.compensation_rules import approval_chain
from aftersales.domain.details import CompensationDetails
from aftersales.domain.masking import mask_text
from aftersales.domain.rules import check_order_id, check_ref, check_text
from aftersales.domain.settings import get_settings
from aftersales.domain.models import Process, Role
from aftersales.intake.core import NewCase, Opened, open_case
from aftersales.intake.registry import ProcessEntry, ProcessRequest, cli
from aftersales.integrations.platform import shop_platform
from aftersales.tasks.compensation import compensation_request


def compensation_case_id(order_id: str, request_ref: str | None = None) -> str:
    return f"compensation-{order_id}" + (f"-{request_ref}" if request_ref else "")


async def open_compensation(order_id: str, form: str, amount: str | None, reason: str, requested_by: str,
                            bearer: str = "seller", goods: list[str] | None = None, request_ref: str | None = None) -> Opened:
    """§1.3 at the door: refuse a bad offer at once (nothing is recorded), else start its run."""
    order_id = check_order_id(order_id)
    reason = check_text(reason, "reason", "补偿原因")
    requested_by = check_text(requested_by, "requested_by", "发起人工号", 64)
    request_ref = check_ref(request_ref)
    async with shop_platform() as platform:
        order, request = await compensation_request(platform, order_id, form, amount, reason, bearer, requested_by, goods)
    case_id = compensation_case_id(order_id, request_ref)
    chain = approval_chain(request.amount, get_settings().rules)
    needed = [level.value for level in chain]
    new = NewCase(
        fields=dict(id=case_id, process=Process.COMPENSATION, order_id=order_id, customer_id=order.customer.customer_id,
                    requested_by=requested_by, reason=mask_text(reason), amount=request.amount,
                    details=CompensationDetails(form=request.form, bearer=request.bearer, goods=list(request.goods),
                                                approvals_needed=needed, customer=order.customer.model_dump(mode="json"))),
        opened={"form": request.form.value, "amount": request.amount, "bearer": request.bearer, "goods": request.goods_items(),
                "approvals_needed": needed, "reason": mask_text(reason)},
        terms={"form": request.form.value, "amount": str(request.amount), "bearer": request.bearer,
               "goods": [f"{sku}:{quantity}" for sku, quantity in request.goods]},
        actor=requested_by, notice="compensation_opened", staff_tags=(Role.AGENT.value,),
        say=lambda _case: {"compensation_form": request.form.value, "requested_by": requested_by, "bearer": request.bearer,
                           "approvals": " → ".join(needed) or "无需审批 none (within the agent's limit)"},
    )
    return await open_case(
        "compensation/compensation", new,
        {"case_id": case_id, "order_id": order_id, "form": request.form.value, "amount": str(request.amount), "reason": mask_text(reason),
         "requested_by": requested_by, "bearer": request.bearer, "goods": [f"{sku}:{quantity}" for sku, quantity in request.goods]},
        tags=["process:compensation", f"form:{request.form.value}", f"level:{chain[-1].value if chain else 'agent'}"],
    )


class CompensationRequest(ProcessRequest):
    order_id: str = cli("--order", "订单号 order id")
    form: str = cli("--form", "cash 现金 | partial_refund 部分退款 | coupon 优惠券 | goods 商品")
    amount: str | None = cli("--amount", "金额(元) amount in CNY, e.g. 30.00 (goods: taken from the catalogue)", None)
    reason: str = cli("--reason", "补偿原因 the problem it settles")
    requested_by: str = cli("--requested-by", "the agent's staff id")
    bearer: str = cli("--bearer", "承担方 seller | carrier | platform | supplier", "seller")
    goods: list[str] = cli("--goods", "商品 SKU or SKU:quantity (form goods), repeatable", [])
    request_ref: str | None = cli("--request-ref", "a reference, for a second compensation on one order", None)


PROCESS = ProcessEntry(
    name="compensation", section="§1.3", title="Compensation (§1.3) 补偿", route="compensations",
    request=CompensationRequest, opener=open_compensation,
    summary="Open a compensation. Above ¥20 it waits for the supervisor, above ¥500 then for the manager.",
    # a coupon waiting for a supervisor; cash for the noisy purifier, waiting for the supervisor, then the manager
    demo=(CompensationRequest(order_id="O20261120-002", form="coupon", amount="30.00", reason="物流延误三天 parcel three days late",
                              requested_by="S001", bearer="carrier"),
          CompensationRequest(order_id="O20261120-004", form="cash", amount="600.00", requested_by="S001",
                              reason="净化器噪音大，买家接受补偿不退货 noisy purifier: compensated instead of a return")),
)
