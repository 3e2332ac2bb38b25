"""Return (退货) — rulebook §1.1 (004 fig. 5.1; 000 §6.1, §6.2).

The flow chart, step by step:

1. the buyer applies (reason, amount); the request is checked against the order and the window;
2. the seller agrees or refuses within 5 days — on timeout the platform agrees;
3. on agreement the buyer gets the return address;
4. the buyer ships and submits the tracking number within 7 days — otherwise the request closes;
   the return waybill is subscribed to the carrier's pushes;
5. the seller confirms receipt within 10 days — otherwise the system refunds automatically; the
   carrier's signature at our warehouse (a signed push) confirms it too, as the carrier;
6. the warehouse inspects: pass, partial or fail;
7. the refund is paid once; the postage falls on whoever is at fault.

Two branches of §1.1 start elsewhere: a parcel refused at the door (it comes back by itself; check
it, refund) and a short shipment (refund the missing part or re-ship it within 3 working days).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from prefect import flow, task

from aftersales.approvals.forms import (
    BuyerShipment,
    SmsVerification,
    Inspection,
    InspectionResult,
    ReceiptConfirmation,
    Remedy,
    ReviewDecision,
    SellerReview,
    ShortShipmentRemedy,
)
from aftersales.approvals.waits import Decision, WaitSpec, await_decision
from aftersales.domain.calendar import business_calendar, shop_time, utcnow
from aftersales.domain.details import ReturnDetails, details_of
from aftersales.domain.models import Case, CaseStatus, Process, Role
from aftersales.domain.outcomes import Outcome
from aftersales.domain.rules import ReturnKind, approval_level, declared_return_postage, parse_amount, postage_lines, refund_explained
from aftersales.domain.settings import get_settings
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope
from aftersales.integrations.platform import RefundStatus, VerificationCodeRequired, shop_platform
from aftersales.tasks.carrier_push import subscribe_return_parcel
from aftersales.tasks.cases import close_case, load_case, open_case, per_case, record_step
from aftersales.tasks.money import refund_buyer, reship_items
from aftersales.tasks.notify import notify_in_session, send_pending
from aftersales.tasks.platform_refunds import (
    agree_return_at_platform,
    confirm_inspection_at_platform,
    platform_refund_of,
    read_platform_deadline,
    refuse_at_platform,
    refuse_goods_at_platform,
)
from aftersales.tasks.policy import OUTSIDE_EFFECT
from aftersales.tasks.recovery import CASE_RUN


@flow(name="return", **CASE_RUN)
async def return_flow(case_id: str, order_id: str, amount: str, reason: str = "",
                      kind: ReturnKind = ReturnKind.NO_REASON, requested_by: str = "buyer",
                      missing_skus: list[str] | None = None) -> str:
    """A buyer's return request, from application to refund (§1.1)."""
    from prefect.runtime import flow_run

    await open_case(case_id, flow_run.id)  # §1.1 step 1: checked and recorded at the door
    case = load_case(case_id)
    if case.status == CaseStatus.CLOSED:
        return case.outcome or "closed"

    if kind is ReturnKind.SHORT_SHIPMENT:
        return await handle_short_shipment(case)
    if kind is ReturnKind.REFUSED_AT_DELIVERY:
        return await handle_refused_parcel(case)

    review = await await_decision(case, seller_review(case))
    on_platform = platform_refund_of(case) is not None  # applied for at the platform (TOP): decided there
    if review.data.decision == ReviewDecision.REFUSE:
        if on_platform:
            refused = await refuse_at_platform(case_id, review.wait_key, review.data.note, review.actor)
            if refused["status"] != RefundStatus.SELLER_REFUSE_BUYER:
                return await settled_at_platform(case, refused["status"])
        return await close_case(case_id, Outcome.REFUSED, review.actor, notify="return_refused", staff_tags=[Role.AGENT.value], note=review.data.note)
    if on_platform and not details_of(case, ReturnDetails).goods_back:
        # refund only (仅退款): nothing comes back; agreeing pays it
        await pay_refund(case, "refund", case.amount, review.actor, "仅退款，卖家同意 refund only: agreed")
        return await close_case(case_id, Outcome.REFUNDED, review.actor, notify="case_closed")
    if on_platform:
        agreed = await agree_return_at_platform(case_id, review.actor, review.by_deadline)
        if agreed["status"] not in (RefundStatus.WAIT_BUYER_RETURN_GOODS, RefundStatus.WAIT_SELLER_CONFIRM_GOODS):
            return await settled_at_platform(case, agreed["status"])
    else:
        await send_return_address(case_id, review.actor, review.by_deadline)

    back = await goods_come_back(case, buyer_shipment(case, review), return_postage, "await_buyer_shipment_expired")
    if isinstance(back, str):
        return back
    _shipment, receipt, postage = back

    inspection = await await_decision(case, inspect_goods(case, receipt, postage))
    result = inspection.data.result
    if result == InspectionResult.FAIL:
        if platform_refund_of(case) is not None:
            refused = await refuse_goods_at_platform(case, inspection.data.note)
            if refused == RefundStatus.SUCCESS:  # the platform refunded at its deadline before the refusal
                return await settled_at_platform(case, refused)
        return await close_case(case_id, Outcome.INSPECTION_FAILED, inspection.actor, notify="return_refused", staff_tags=[Role.AGENT.value], note=inspection.data.note)
    goods = case.amount if result == InspectionResult.PASS or inspection.by_deadline else parse_amount(inspection.data.refund_amount)
    if platform_refund_of(case) is not None:
        await confirm_inspection_at_platform(case_id, inspection.actor, inspection.data.note)
    await pay_refund(case, "refund", goods, inspection.actor, f"退货验货{result.value} return inspected: {result.value}", postage)
    return await close_case(case_id, Outcome.REFUNDED if result == InspectionResult.PASS else Outcome.PARTLY_REFUNDED, inspection.actor, notify="case_closed")


async def goods_come_back(case: Case, shipment_wait: WaitSpec, postage_of, not_shipped_notice: str,
                          receipt_of=None, refund_unconfirmed: bool = True) -> tuple[Decision, Decision, list] | str:
    """§1.1 steps 4–5 (the exchange, §1.2, too): the buyer ships within 7 days, else the request
    closes; the warehouse confirms receipt within 10 days, else the system refunds automatically —
    or, for an exchange (``refund_unconfirmed=False``), takes the parcel as received, so the
    replacement the buyer asked for still ships. Returns (shipment, receipt, postage lines) or,
    when a deadline closed the case, its outcome."""
    shipment = await await_decision(case, shipment_wait)
    if shipment.by_deadline:
        return await close_case(case.id, Outcome.CLOSED_NOT_SHIPPED, "system", notify=not_shipped_notice)
    await record_step(case.id, "buyer-shipped", "parcel.shipped", shipment.actor, stage="in-return-transit",
                      details={"carrier": shipment.data.carrier, "tracking_number": shipment.data.tracking_number},
                      notify="parcel_shipped", staff_tags=[Role.WAREHOUSE.value],
                      carrier=shipment.data.carrier, waybill=shipment.data.tracking_number)

    receipt_wait = (receipt_of or receipt_confirmation)(case, shipment)
    # the carrier's signature at our warehouse can answer the receipt wait (a signed push)
    await subscribe_return_parcel(case.id, case.order_id, shipment.data.carrier, shipment.data.tracking_number, receipt_wait.step)
    receipt = await await_decision(case, receipt_wait)
    postage = postage_of(case, shipment)
    if receipt.by_deadline and refund_unconfirmed:
        # §1.1 step 5: nobody confirmed receipt in 10 days — the system refunds automatically.
        await pay_refund(case, "auto-refund", case.amount, "system", "10 天未确认收货，系统自动退款 not confirmed within 10 days: automatic refund", postage)
        return await close_case(case.id, Outcome.REFUNDED_AUTOMATICALLY, "system", notify="auto_refund_deadline", staff_tags=[Role.SUPERVISOR.value])
    await record_step(case.id, "received", "parcel.received", receipt.actor, stage="inspection",
                      details={"note": receipt.data.note, "by_deadline": receipt.by_deadline},
                      notify=None if receipt.by_deadline else "inspection_needed", staff_tags=[Role.WAREHOUSE.value])
    return shipment, receipt, postage


# --- a return applied for at the platform (TOP) ---------------------------------------------------


async def pay_refund(case: Case, step: str, amount: Decimal, actor: str, reason: str, postage: list | None = None) -> list:
    """Refund the buyer once (``refund_buyer``). On TOP a large refund asks for the seller's SMS
    code: the case waits for a finance or supervisor member to enter it, then agrees again with it.
    A resumed run takes the codes already asked for first (a new call without one would send
    another SMS and void the code the person typed).

    Nobody entered the code by the wait's deadline: the refund is read again without a code. The
    platform paid it by itself at its deadline → what it paid is recorded (as the platform's);
    it has not → agreeing again sends a new code and the case waits for it again."""
    if platform_refund_of(case) is None:
        return await refund_buyer(case.id, step, amount, actor, reason, postage)
    code, attempt = None, 1
    while waited_at(case.id, f"sms-code-{attempt}"):
        # asked before this run went round again: its answer (or the wait for it) comes first
        code, attempt = sms_code_of(await await_decision(case, sms_code_wait(case, f"sms-code-{attempt}", amount))), attempt + 1
    while True:
        try:
            return await refund_buyer(case.id, step, amount, actor, reason, postage, verification_code=code)
        except VerificationCodeRequired:
            case = await read_platform_deadline(case.id)  # the wait lasts until the platform pays by itself
            code, attempt = sms_code_of(await await_decision(case, sms_code_wait(case, f"sms-code-{attempt}", amount))), attempt + 1


def waited_at(case_id: str, step: str) -> bool:
    with session_scope() as session:
        return case_store.wait_opened(session, case_id, step)


def sms_code_of(decision: Decision) -> str | None:
    """The code a person typed; none when the wait ran out (its default carries no real code)."""
    return None if decision.by_deadline else decision.data.sms_code


def sms_code_wait(case: Case, step: str, amount: Decimal) -> WaitSpec:
    details = details_of(case, ReturnDetails)
    # the platform pays by itself at its own deadline: the case waits no longer than that; once
    # that has passed (the platform has not paid yet), a working day for the new code
    deadline = details.platform_deadline
    if deadline is None or deadline <= utcnow():
        deadline = business_calendar().add_days(utcnow(), 1)
    return WaitSpec(
        step=step,
        title="输入退款短信验证码 Enter the refund's SMS code",
        form=SmsVerification,
        deadline=deadline,
        default_action="未输入验证码：重查平台退款，平台已自动退款则记录实付，否则重发验证码 no code: the refund is read "
                       "again; paid by the platform → recorded, else a new code is sent",
        default_input={"sms_code": "000000"},  # the form's shape only: a default is never sent as a code (sms_code_of)
        addressed_to=Role.SUPERVISOR.value,
        decides=amount,  # entering the code decides nothing new (the refund was decided): no approval limit
        facts=(f"**平台退款 Platform refund** `{details.platform_refund_id}` · {amount:.2f} 元",
               "淘宝已向店铺绑定手机发送验证码 Taobao sent a code to the shop's registered phone"),
    )


async def settled_at_platform(case: Case, status: str) -> str:
    """The refund moved at the platform before our decision reached it: the platform refunded by
    itself at its deadline (recorded, with what it paid), or the buyer cancelled (withdrawn)."""
    if status == RefundStatus.SUCCESS:
        await pay_refund(case, "platform-refund", case.amount, "platform", "平台到期自动退款 refunded by the platform at its deadline")
        return await close_case(case.id, Outcome.REFUNDED_AUTOMATICALLY, "platform", notify="case_closed")
    return await close_case(case.id, Outcome.WITHDRAWN, "platform", notify="return_withdrawn", staff_tags=[Role.AGENT.value],
                            buyer=False, note="退款在平台上已关闭 the refund was closed at the platform")


# --- the waits of §1.1, each with its deadline and default action -------------------------------


def platform_first(ours: datetime, platform: datetime | None) -> tuple[datetime, str]:
    """A wait's deadline is the earlier of the rulebook's and the platform's (TOP's
    refund_remind_timeout), and the form says whose it is."""
    if platform is not None and platform < ours:
        return platform, f"（平台截止 {shop_time(platform)} the platform's deadline）"
    return ours, ""


def seller_review(case: Case) -> WaitSpec:
    rules = get_settings().rules
    # an exchange (§1.2) reviews the same way; only a return can come from the platform
    platform_deadline = details_of(case, ReturnDetails).platform_deadline if case.process == Process.RETURN else None
    deadline, whose = platform_first(business_calendar().add_days(case.opened_at, rules.seller_review_days), platform_deadline)
    return WaitSpec(
        step="seller-review",
        title="退货审核 Return review",
        form=SellerReview,
        deadline=deadline,
        default_action=f"{rules.seller_review_days} 天未处理，平台自动同意 not answered in {rules.seller_review_days} days: the platform agrees{whose}",
        default_input={"decision": ReviewDecision.AGREE.value, "note": "超时自动同意 agreed automatically at the deadline"},
        addressed_to=approval_level(case.amount, rules).value,
        amount=case.amount,
        check=lambda form: "拒绝须写明原因 a refusal needs a note for the buyer" if form.decision == ReviewDecision.REFUSE and not form.note.strip() else None,
    )


def buyer_shipment(case: Case, review: Decision) -> WaitSpec:
    rules = get_settings().rules
    return WaitSpec(
        step="buyer-shipment",
        title="等待买家退货 Waiting for the buyer to ship",
        form=BuyerShipment,
        deadline=business_calendar().add_days(review.answered_at, rules.buyer_ship_days),
        default_action=f"买家 {rules.buyer_ship_days} 天未寄回，关闭退货 buyer did not ship within {rules.buyer_ship_days} days: the request closes",
        default_input={"carrier": "none", "tracking_number": "NOTSHIPPED"},
        addressed_to="buyer",
        prefill={"return_postage": "0.00"},
    )


def receipt_confirmation(case: Case, shipment: Decision) -> WaitSpec:
    rules = get_settings().rules
    return WaitSpec(
        step="receipt",
        title="确认收到退货 Confirm the return parcel arrived",
        form=ReceiptConfirmation,
        deadline=business_calendar().add_days(shipment.answered_at, rules.receipt_confirm_days),
        default_action=f"{rules.receipt_confirm_days} 天未确认收货，系统自动退款 not confirmed in {rules.receipt_confirm_days} days: automatic refund",
        default_input={"note": "超时未确认 not confirmed in time"},
        addressed_to=Role.WAREHOUSE.value,
        facts=(f"**买家寄回 The buyer shipped** {shipment.data.carrier} `{shipment.data.tracking_number}`",) if shipment.data else (),
    )


def inspect_goods(case: Case, receipt: Decision, postage: list | None = None) -> WaitSpec:
    rules = get_settings().rules
    # a pass refunds the price; the platform pays it less the buyer's share of the postage (§1.1)
    explained = refund_explained(case.amount, postage or [])

    def check(form: Inspection) -> str | None:
        if form.result != InspectionResult.PASS and not form.note.strip():
            return "部分通过或不通过须写验货说明 partial or fail needs an inspection note"
        if form.result == InspectionResult.PARTIAL and platform_refund_of(case) is not None:
            return ("淘宝/天猫的退款只能按买家申请的金额同意或拒绝：部分退款请先请买家修改退款申请 a platform refund is agreed as "
                    "the buyer asked or refused: for a partial refund, ask the buyer to change the application first")
        if form.result == InspectionResult.PARTIAL:
            amount = parse_amount(form.refund_amount, "refund_amount")
            if amount > case.amount:
                return f"退款金额 {amount} 超过申请金额 {case.amount} refund above the amount requested"
        return None

    return WaitSpec(
        step="inspection",
        title="退货验货 Inspect the returned goods",
        form=Inspection,
        deadline=business_calendar().add_working_days(receipt.answered_at, rules.inspection_working_days),
        default_action=f"{rules.inspection_working_days} 个工作日未验货，视为通过并全额退款 not inspected in {rules.inspection_working_days} working days: passes, full refund",
        default_input={"result": InspectionResult.PASS.value, "refund_amount": f"{case.amount:.2f}", "note": "超时视为通过 passed at the deadline"},
        addressed_to=Role.WAREHOUSE.value,
        prefill={"refund_amount": f"{case.amount:.2f}"},
        check=check,
        facts=(f"**通过时平台实退 The platform pays on a pass** {explained}",) if explained else (),
    )


def return_postage(case: Case, shipment: Decision) -> list:
    """§1.1 postage: who pays the return and (free shipping) the outbound postage."""
    details = details_of(case, ReturnDetails)
    standard = get_settings().rules.standard_postage
    declared = Decimal(shipment.data.return_postage) if not shipment.by_deadline else Decimal("0")
    paid = declared_return_postage(declared, bool(shipment.data.staff_id), standard, refunded=details.kind.seller_at_fault)
    return postage_lines(details.kind, details.free_shipping, paid, standard)


@task(name="send-return-address", cache_key_fn=per_case("return-address"), **OUTSIDE_EFFECT)
async def send_return_address(case_id: str, agreed_by: str, by_deadline: bool) -> dict:
    """§1.1 step 3: the buyer gets the return address; status “退款协议达成,等待买家退货”."""
    case = load_case(case_id)
    async with shop_platform(case) as platform:
        address = await platform.get_return_address(case.order_id)
    rules = get_settings().rules
    with session_scope() as session:
        case_store.record_event(session, case_id, "agreed", agreed_by, "return.agreed", {"by_deadline": by_deadline, "return_address": address.model_dump(mode="json")})
        case = case_store.set_stage(session, case_id, "buyer-shipment")
        notify_in_session(session, case, "agreed", "return_agreed", buyer=True,
                          return_address=address.text,
                          ship_days=rules.buyer_ship_days)
    send_pending(case_id)
    return address.model_dump(mode="json")


# --- §1.1 refusal at delivery and short shipment --------------------------------------------------


async def handle_refused_parcel(case: Case) -> str:
    """The buyer refused the parcel at the door: it returns by itself; check it, then refund (the seller bears the costs)."""
    receipt = await await_decision(case, refused_parcel_back(case))
    if receipt.by_deadline:
        await refund_buyer(case.id, "auto-refund", case.amount, "system", "拒收退回 10 天未确认，自动退款 refused parcel not confirmed in 10 days: automatic refund")
        return await close_case(case.id, Outcome.REFUNDED_AUTOMATICALLY, "system", notify="auto_refund_deadline", staff_tags=[Role.SUPERVISOR.value])
    inspection = await await_decision(case, inspect_goods(case, receipt))
    if inspection.data.result == InspectionResult.FAIL:
        return await close_case(case.id, Outcome.INSPECTION_FAILED, inspection.actor, notify="return_refused", staff_tags=[Role.AGENT.value], note=inspection.data.note)
    goods = case.amount if inspection.data.result == InspectionResult.PASS else parse_amount(inspection.data.refund_amount)
    await refund_buyer(case.id, "refund", goods, inspection.actor, "拒收退回核对后退款 refused parcel checked and refunded")
    return await close_case(case.id, Outcome.REFUNDED, inspection.actor, notify="case_closed")


def refused_parcel_back(case: Case) -> WaitSpec:
    spec = receipt_confirmation(case, Decision(data=None, actor="carrier", by_deadline=False, wait_key="", answered_at=case.opened_at))
    spec.step, spec.title = "refused-parcel-back", "确认拒收包裹已退回 Confirm the refused parcel is back"
    return spec


async def handle_short_shipment(case: Case) -> str:
    """Items missing from a signed parcel: refund the missing part or re-ship it within 3 working days."""
    remedy = await await_decision(case, short_shipment_remedy(case))
    missing = details_of(case, ReturnDetails).missing_skus
    if remedy.data.remedy == Remedy.RESHIP_MISSING and not remedy.by_deadline:
        await reship_items(case.id, "reship", [{"sku": sku, "quantity": 1} for sku in missing], case.amount, remedy.actor, "少件补发 re-ship missing items")
        return await close_case(case.id, Outcome.RESHIPPED, remedy.actor, notify="case_closed")
    await refund_buyer(case.id, "refund", case.amount, remedy.actor, "少件退还缺件金额 refund of missing items")
    return await close_case(case.id, Outcome.REFUNDED, remedy.actor, notify="case_closed")


def short_shipment_remedy(case: Case) -> WaitSpec:
    rules = get_settings().rules
    with session_scope() as session:
        notify_in_session(session, case, "short-shipment", "short_shipment", staff_tags=[Role.WAREHOUSE.value], buyer=True,
                          missing=", ".join(details_of(case, ReturnDetails).missing_skus), fix_days=rules.short_shipment_fix_working_days)
    send_pending(case.id)
    return WaitSpec(
        step="short-shipment-remedy",
        title="少件处理 Short shipment: refund or re-ship",
        form=ShortShipmentRemedy,
        deadline=business_calendar().add_working_days(case.opened_at, rules.short_shipment_fix_working_days),
        default_action=f"{rules.short_shipment_fix_working_days} 个工作日未处理，退还缺件金额 not handled in {rules.short_shipment_fix_working_days} working days: refund the missing part",
        default_input={"remedy": Remedy.REFUND_MISSING.value, "note": "超时自动退款 refunded at the deadline"},
        addressed_to=approval_level(case.amount, rules).value,
        amount=case.amount,
    )


def deployments(schedule) -> list:
    return [
        return_flow.to_deployment(
            name="return", tags=["process:return"],
            description="§1.1 退货 Return: one run per case, named after the case. Opened by `aftersales return open` or POST /returns.",
        )
    ]
