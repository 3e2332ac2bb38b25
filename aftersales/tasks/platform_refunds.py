"""A return the buyer applied for at the platform (TOP) is decided on that refund, there.

The platform owns the refund: the seller agrees to the return (with the return address), refuses
it with a reason from the platform's own list, or agrees to refund it — and on TOP agreeing *is*
paying (the platform pays the buyer). Every decision echoes the ``refund_version`` it was made on;
when the buyer changed the refund in between the platform answers with a version conflict, and the
refund is read again and the decision taken again on what it says now — never by overwriting.

Each decision is read-then-act, so a task retried after a lost answer finds the refund already
moved and takes that as done: one agreement, one payment. A refund that moved without us (the
platform's own deadline, the buyer cancelling) is reported to the caller as it stands.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

from prefect import task

from aftersales.approvals.forms import RefusedInQianniu
from aftersales.approvals.ladder import await_stage, stage_default
from aftersales.approvals.waits import WaitSpec
from aftersales.domain.calendar import business_calendar, shop_time, utcnow
from aftersales.domain.details import ReturnDetails, details_of, stored, with_changes
from aftersales.domain.models import Case, Role
from aftersales.domain.settings import get_settings
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope
from aftersales.integrations.platform import (
    PlatformRejected,
    PlatformUnavailable,
    RefundApplication,
    RefundStatus,
    RefundVersionConflict,
    TopClient,
)
from aftersales.tasks.cases import load_case, per_case
from aftersales.tasks.notify import notify_in_session, send_pending
from aftersales.tasks.policy import OUTSIDE_EFFECT, SCHEDULED_READ

CONFLICT_TRIES = 3  # read again and decide again this often before calling it a busy refund
AGREEABLE = {RefundStatus.WAIT_SELLER_AGREE, RefundStatus.WAIT_SELLER_CONFIRM_GOODS}


def platform_refund_of(case: Case) -> str | None:
    """The platform refund a return is decided on; None for a case of our own intake."""
    details = details_of(case, ReturnDetails) if case.process == "return" else None
    return details.platform_refund_id if details is not None else None


async def decide(top: TopClient, refund_id: str, expected: set[str],
                 call: Callable[[RefundApplication], Awaitable[object]]) -> tuple[RefundApplication, bool]:
    """Read the refund and, if it is still in one of ``expected``, ``call`` with its version. A
    version conflict reads it again and decides again. Returns the refund as it is afterwards and
    whether our call moved it (False: it had moved already: a retry, the platform, the buyer)."""
    for _ in range(CONFLICT_TRIES):
        refund = await top.get_refund(refund_id)
        if refund.status not in expected:
            return refund, False
        try:
            await call(refund)
        except RefundVersionConflict:
            continue  # the buyer (or the platform) changed it between our read and our call
        return await top.get_refund(refund_id), True
    raise PlatformUnavailable("taobao.refund.get", None,
                              f"refund {refund_id} changed {CONFLICT_TRIES} times while we decided on it; trying again later")


@task(name="read-platform-deadline", **SCHEDULED_READ)
async def read_platform_deadline(case_id: str) -> Case:
    """The platform's deadline as the refund stands now (it moves with each phase: the seller's
    review, the buyer's shipping, the goods' confirmation), kept on the case. Returns the case."""
    refund_id = platform_refund_of(load_case(case_id))
    async with TopClient() as top:
        refund = await top.get_refund(refund_id)
    with session_scope() as session:
        case = case_store.get_case(session, case_id)
        case.details = stored(with_changes(details_of(case, ReturnDetails), platform_deadline=refund.deadline,
                                           platform_status=refund.status))
        session.add(case)
    return load_case(case_id)


@task(name="agree-return-at-platform", cache_key_fn=per_case("return-address"), **OUTSIDE_EFFECT)
async def agree_return_at_platform(case_id: str, agreed_by: str, by_deadline: bool) -> dict:
    """§1.1 step 3 on TOP: agree the return with the warehouse's address (taobao.rp.returngoods.agree);
    the platform shows the buyer the address. Returns the refund's status afterwards."""
    case = load_case(case_id)
    refund_id = platform_refund_of(case)
    settings = get_settings()
    async with TopClient() as top:
        address = await top.get_return_address(case.order_id)
        refund, ours = await decide(top, refund_id, {RefundStatus.WAIT_SELLER_AGREE}, lambda r: top.agree_return(
            refund_id, address, version=r.version, phase=r.phase, seller_address_id=settings.top_seller_address_id,
            remark="同意退货，请按地址寄回 agreed: please send the goods to this address"))
    agreed = refund.status in (RefundStatus.WAIT_BUYER_RETURN_GOODS, RefundStatus.WAIT_SELLER_CONFIRM_GOODS)
    with session_scope() as session:
        case_store.record_event(session, case_id, "agreed", agreed_by if ours else "platform", "return.agreed",
                                {"by_deadline": by_deadline, "return_address": address.model_dump(mode="json"),
                                 "platform_refund_id": refund_id, "platform_status": refund.status, "agreed_by_us": ours})
        if agreed:
            case = case_store.set_stage(session, case_id, "buyer-shipment")
            notify_in_session(session, case, "agreed", "return_agreed", buyer=True, return_address=address.text,
                              ship_days=settings.rules.buyer_ship_days)
    send_pending(case_id)
    return {"status": refund.status, "ours": ours}


@task(name="refuse-at-platform", cache_key_fn=lambda _c, p: f"refuse-{p['case_id']}-{p['step']}", **OUTSIDE_EFFECT)
async def refuse_at_platform(case_id: str, step: str, message: str, refused_by: str) -> dict:
    """Refuse the buyer's application at the platform (taobao.refund.refuse) with our note to the buyer and
    the platform's own reason for it (taobao.refund.refusereason.get: the first it offers, as the
    note says why). Returns the refund's status afterwards (CLOSED/SUCCESS: it moved without us)."""
    case = load_case(case_id)
    refund_id = platform_refund_of(case)
    text = (message.strip() or "不符合退款条件 does not qualify")[:200]
    text = text if len(text) >= 2 else f"{text}。"
    async with TopClient() as top:
        reasons: list = []

        async def refuse(refund: RefundApplication) -> None:
            reasons[:] = await top.refusal_reasons(refund_id, refund.phase)
            await top.refuse_refund(refund_id, text, version=refund.version, phase=refund.phase,
                                    reason_id=reasons[0].reason_id if reasons else None)

        refund, ours = await decide(top, refund_id, {RefundStatus.WAIT_SELLER_AGREE}, refuse)
    with session_scope() as session:
        case_store.record_event(session, case_id, f"{step}:refused-at-platform", refused_by if ours else "platform",
                                "platform.refused" if ours else "platform.moved",
                                {"platform_refund_id": refund_id, "platform_status": refund.status, "message": text,
                                 "reason": {"id": reasons[0].reason_id, "text": reasons[0].text} if reasons else None})
    return {"status": refund.status, "ours": ours}


@task(name="confirm-inspection-at-platform", cache_key_fn=per_case("inspection-at-platform"), **OUTSIDE_EFFECT)
async def confirm_inspection_at_platform(case_id: str, inspected_by: str, note: str) -> dict:
    """The warehouse passed the returned goods: the refund is marked approved at the platform
    (taobao.rp.refund.review), its status unchanged, before it is agreed and paid."""
    case = load_case(case_id)
    refund_id = platform_refund_of(case)
    message = (note.strip() or "验货通过 inspection passed")[:200]
    async with TopClient() as top:
        refund, ours = await decide(top, refund_id, {RefundStatus.WAIT_SELLER_CONFIRM_GOODS}, lambda r: top.confirm_inspection(
            refund_id, version=r.version, phase=r.phase, operator=inspected_by, message=message, passed=True))
    with session_scope() as session:
        case_store.record_event(session, case_id, "inspection-at-platform", inspected_by if ours else "platform",
                                "platform.reviewed" if ours else "platform.moved",
                                {"platform_refund_id": refund_id, "platform_status": refund.status, "passed": True})
    return {"status": refund.status, "ours": ours}


async def agree_refund_at_platform(case: Case, amount: Decimal, verification_code: str | None) -> tuple[str, Decimal, bool]:
    """Agree the buyer's refund (taobao.rp.refunds.agree), which the platform then pays: at most
    ``amount`` (what was decided), in full as the buyer asked — TOP agrees the refund_fee or nothing.
    Returns (refund id, the amount the platform confirms paid, whether our call paid it). Raises
    ``VerificationCodeRequired`` when the platform wants the seller's SMS code first."""
    refund_id = platform_refund_of(case)
    async with TopClient() as top:
        async def agree(refund: RefundApplication) -> None:
            if refund.amount > amount:
                raise PlatformRejected("taobao.rp.refunds.agree", None,
                                       f"买家已将退款 {refund_id} 改为 {refund.amount} 元，超过已决定的 {amount} 元，请重新决定 the buyer "
                                       f"changed refund {refund_id} to {refund.amount}, above the {amount} decided: decide again")
            await top.agree_refund(refund_id, refund.amount, version=refund.version, phase=refund.phase, sms_code=verification_code)

        refund, ours = await decide(top, refund_id, AGREEABLE, agree)
    if refund.status != RefundStatus.SUCCESS:
        raise PlatformRejected("taobao.rp.refunds.agree", None,
                               f"退款 {refund_id} 在平台上为 {refund.status}，无法同意退款 refund {refund_id} is {refund.status} "
                               "at the platform: there is nothing to agree")
    return refund_id, Decimal(refund.amount), ours


# --- returned goods that failed inspection: refused at the platform, which needs photos ------------


async def refuse_goods_at_platform(case: Case, note: str) -> str:
    """§1.1 inspection failed on a TOP return: unless the goods are refused at the platform it
    refunds the buyer at its own deadline. Refusing needs photos as proof (taobao.rp.returngoods.refuse),
    which our forms do not take: the warehouse refuses in Qianniu and says so here, by the
    platform's deadline at the latest (then the supervisor, then the manager). Returns the refund's
    status read afterwards."""
    step = "in-qianniu-refuse-goods"
    with session_scope() as session:
        resumed = case_store.wait_opened(session, case.id, step)
    if not resumed:  # a resumed run's wait has its deadline: the platform is read once, when it opens
        case = await read_platform_deadline(case.id)
    details = details_of(case, ReturnDetails)
    deadline = business_calendar().add_working_days(utcnow(), 1)
    if details.platform_deadline is not None and utcnow() < details.platform_deadline < deadline:
        deadline = details.platform_deadline
    done = await await_stage(case, WaitSpec(
        step=step,
        title="在千牛拒绝退货并上传验货照片 Refuse the returned goods in Qianniu, with the inspection photos",
        form=RefusedInQianniu, deadline=deadline, default_action=stage_default(1), default_input={"note": "未处理 not done"},
        addressed_to=Role.WAREHOUSE.value,
        facts=(f"**平台退款 Platform refund** `{details.platform_refund_id}` · 验货不通过 inspection failed: {note}",
               f"平台 {shop_time(details.platform_deadline) if details.platform_deadline else '—'} 到期将自动退款 "
               "the platform refunds by itself at its deadline unless the goods are refused")), 1)
    return await goods_refused_at_platform(case.id, done.data.note, done.actor)


@task(name="goods-refused-at-platform", cache_key_fn=per_case("goods-refused-at-platform"), **OUTSIDE_EFFECT)
async def goods_refused_at_platform(case_id: str, note: str, refused_by: str) -> str:
    """What the platform shows after the warehouse refused the goods in Qianniu, recorded."""
    refund_id = platform_refund_of(load_case(case_id))
    async with TopClient() as top:
        refund = await top.get_refund(refund_id)
    refused = refund.status in (RefundStatus.SELLER_REFUSE_BUYER, RefundStatus.CLOSED)
    with session_scope() as session:
        case_store.record_event(session, case_id, "goods-refused-at-platform", refused_by,
                                "platform.goods_refused" if refused else "platform.goods_not_refused",
                                {"platform_refund_id": refund_id, "platform_status": refund.status, "note": note, "done_by_hand": refused_by})
    return refund.status
