"""The forms a suspended case shows in the Prefect UI (typed ``RunInput``s).

Supervisors read Chinese first: every title and description is Chinese with English alongside.
Money fields are strings with a decimal pattern, so the UI renders a plain text box and the server
validates the format; the flow turns them into ``Decimal`` (never float) with ``rules.parse_amount``,
whose rule the pattern is.
"""

from __future__ import annotations

from enum import Enum, StrEnum
from typing import Any, ClassVar

import pydantic
from pydantic import ConfigDict, Field
from pydantic.fields import FieldInfo
from prefect.input import RunInput

from aftersales.domain.models import Role
from aftersales.domain.rules import MONEY_PATTERN as RULES_MONEY_PATTERN

# the money rule of ``rules.parse_amount`` (plain decimal notation, two decimals at most), so
# the server refuses at the form what the flow would refuse
MONEY_PATTERN = RULES_MONEY_PATTERN
SYSTEM_ACTOR = "system"  # the deadline sweeper's staff id; accepted only with the sweeper's claim
CARRIER_ACTOR = "carrier"  # a carrier's signed push (api: /carrier/kuaidi100/push), for the forms that take one


def required_in_the_form(schema: dict[str, Any], model: type[pydantic.BaseModel]) -> None:
    """What a person must answer is required in the schema the UI receives, though it comes
    prefilled: Prefect's UI marks every field outside ``required`` "(Optional)". That is each
    choice (an enum or a yes/no field) and the free text a form names in ``must_answer``. A field
    required for one choice only stays optional and says so in its title ("…时必填 required when…")."""
    required = schema.setdefault("required", [])
    for name, field in model.model_fields.items():
        choice = isinstance(field.annotation, type) and issubclass(field.annotation, (Enum, bool))
        if (choice or name in getattr(model, "must_answer", ())) and name not in required:
            required.append(name)


class StaffForm(RunInput):
    """A decision taken by a staff member, who proves who they are with a one-time code."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=required_in_the_form)
    allowed_roles: ClassVar[tuple[Role, ...]] = ()
    must_answer: ClassVar[tuple[str, ...]] = ()  # free text that is never optional, though prefilled empty

    staff_id: str = Field(
        title="工号 Staff id",
        description="您的工号，如 S002。不能审批自己提交的申请。Your staff id, e.g. S002. You cannot approve your own request.",
        min_length=1,
        max_length=32,
        pattern=r"^[A-Za-z0-9_-]+$",
    )
    code: str = Field(
        title="动态口令 One-time code",
        description="身份验证器 App 上当前的 6 位动态口令，每个口令只能用一次。The current 6-digit code from your authenticator app; each code works once.",
        # or the approval page's signature in its place (approvals/proof.page_signature)
        pattern=r"^(\d{6}|[0-9a-f]{64})$",
    )


def event_first(schema: dict[str, Any], model: type[pydantic.BaseModel]) -> None:
    """An event form shows the event (carrier, waybill …) first and who reports it last."""
    required_in_the_form(schema, model)
    properties = schema.get("properties") or {}
    who = [name for name in EventForm.model_fields if name in properties]
    schema["properties"] = {**{k: v for k, v in properties.items() if k not in who}, **{k: properties[k] for k in who}}


class EventForm(RunInput):
    """An outside event (the buyer ships, the platform reports). Accepted with the proof our intake
    attaches (the API, the CLI: ``approvals/proof.py``), or from a staff member who enters it here
    with their staff id and one-time code — then the trail names that person, not the buyer."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=event_first)
    must_answer: ClassVar[tuple[str, ...]] = ()

    reported_by: str = Field(
        default="buyer",
        title="来源 Reported by",
        description="buyer（买家/平台回传）或录入人工号 'buyer' (from the platform) or the staff id who entered it",
        min_length=1,
        max_length=32,
    )
    staff_id: str = Field(
        default="",
        title="工号 Staff id（在此录入时必填 required to enter it here）",
        description="在此页面录入时填写您的工号和动态口令，记录为您录入。Entering it on this page: your staff id and code; the trail names you.",
        max_length=32,
        pattern=r"^[A-Za-z0-9_-]*$",
    )
    code: str = Field(
        default="",
        title="动态口令 One-time code（在此录入时必填 required to enter it here）",
        description="身份验证器 App 上当前的 6 位动态口令。The current 6-digit code from your authenticator app.",
        pattern=r"^(\d{6})?$",
    )
    proof: str = Field(
        default="",
        title="凭证 Proof（由接入系统填写 filled in by our intake）",
        description="接入接口自动生成，人工录入请留空。Made by our intake API; leave it empty when you enter the event yourself.",
        max_length=128,
        pattern=r"^[0-9a-f]*$",
    )


class ReviewDecision(StrEnum):
    AGREE = "agree"
    REFUSE = "refuse"


class ApprovalDecision(StrEnum):
    """A superior's answer to a request that needs approval (§1.3 compensation, §1.5 repair): one
    vocabulary for every approval form, so the trail and the statistics read the same everywhere."""

    APPROVE = "approve"
    DECLINE = "decline"


class SellerReview(StaffForm):
    """§1.1 step 2: the seller agrees or refuses the return within 5 days."""

    allowed_roles: ClassVar[tuple[Role, ...]] = (Role.AGENT, Role.SUPERVISOR, Role.MANAGER)

    decision: ReviewDecision = Field(
        default=ReviewDecision.AGREE,
        title="审核结果 Decision",
        description="agree 同意退货（买家将收到退货地址）/ refuse 拒绝（须写明原因）. agree: the buyer gets the return address; refuse: give the reason.",
    )
    note: str = Field(
        default="",
        title="说明 Note（拒绝时必填 required to refuse）",
        description="拒绝时必填，会发给买家。Required when refusing; sent to the buyer.",
        max_length=500,
    )


class BuyerShipment(EventForm):
    """§1.1 step 4: the buyer ships the parcel back and submits carrier and tracking number."""

    carrier: str = Field(
        title="快递公司编码 Carrier code",
        description="快递100 编码，如 zhongtong、shunfeng、yuantong。Kuaidi100 carrier code, e.g. zhongtong, shunfeng.",
        pattern=r"^[a-z0-9]{2,20}$",
    )
    tracking_number: str = Field(
        title="运单号 Tracking number",
        description="退货包裹的运单号 The return parcel's waybill number.",
        pattern=r"^[A-Za-z0-9]{6,32}$",
    )
    return_postage: str = Field(
        default="0.00",
        title="买家支付的退货运费(元) Return postage paid by the buyer (CNY)",
        description="卖家责任时退还给买家 refunded to the buyer when the seller is at fault",
        pattern=MONEY_PATTERN,
    )


class ReceiptConfirmation(StaffForm):
    """§1.1 step 5: the warehouse confirms the return parcel arrived (10 days, else automatic refund)."""

    allowed_roles: ClassVar[tuple[Role, ...]] = (Role.WAREHOUSE, Role.SUPERVISOR, Role.MANAGER)
    # the carrier's signature at our warehouse (a signed push of the return waybill) proves the
    # parcel arrived as well as a warehouse member's confirmation does
    carrier_may_answer: ClassVar[bool] = True

    note: str = Field(default="", title="到货情况 Parcel condition", description="包裹外观、件数等 outer condition, number of parcels", max_length=500)


class InspectionResult(StrEnum):
    PASS = "pass"
    PARTIAL = "partial"
    FAIL = "fail"


class Inspection(StaffForm):
    """§1.1 step 6: the warehouse inspects the returned goods: pass, partial or fail."""

    allowed_roles: ClassVar[tuple[Role, ...]] = (Role.WAREHOUSE, Role.QUALITY, Role.SUPERVISOR, Role.MANAGER)

    result: InspectionResult = Field(
        default=InspectionResult.PASS,
        title="验货结果 Result",
        description="pass 通过，全额退款 full refund / partial 部分通过，按下方金额退款 refund the amount below / fail 不通过，不退款并退回商品 no refund, goods go back",
    )
    refund_amount: str = Field(
        title="退款金额(元) Refund amount (CNY)（部分通过时按此退款 used for partial）",
        description="部分通过时的退款金额，不超过申请金额。For a partial pass; at most the amount requested.",
        pattern=MONEY_PATTERN,
    )
    note: str = Field(default="", title="验货说明 Inspection note（部分通过或不通过时必填 required for partial or fail）", description="部分通过或不通过时必填 required for partial or fail", max_length=500)


class SmsVerification(StaffForm):
    """A large refund on Taobao/Tmall: the platform sent the seller's phone an SMS code and pays the
    refund only when the agreement is repeated with it."""

    allowed_roles: ClassVar[tuple[Role, ...]] = (Role.FINANCE, Role.SUPERVISOR, Role.MANAGER)

    sms_code: str = Field(
        title="短信验证码 SMS code",
        description="淘宝发到店铺绑定手机的退款验证码 The refund code Taobao sent to the shop's registered phone.",
        pattern=r"^\d{4,8}$",
    )


QIANNIU_REFERENCE = r"^[A-Za-z0-9_-]{4,64}$"  # a payment's, coupon's or complaint's number in Qianniu


class DoneInQianniu(StaffForm):
    """What the shop's platform has no call for (TOP: a payment the seller starts, a price-difference
    charge, a coupon) was done by hand in Qianniu: the platform's reference and the amount it shows."""

    allowed_roles: ClassVar[tuple[Role, ...]] = (Role.FINANCE, Role.SUPERVISOR, Role.MANAGER)

    reference: str = Field(
        title="千牛单号 Qianniu reference",
        description="千牛上打款、收款或优惠券的编号 The payment's, charge's or coupon's number in Qianniu.",
        pattern=QIANNIU_REFERENCE,
    )
    amount: str = Field(
        title="金额(元) Amount (CNY)",
        description="千牛上显示的金额，不超过已决定的金额 As Qianniu shows it; at most what was decided.",
        pattern=MONEY_PATTERN,
    )


class ReportedInQianniu(StaffForm):
    """A malicious review reported where the platform has no call for it (TOP): the review team filed
    the complaint in Qianniu (评价管理 → 投诉) and records its number."""

    allowed_roles: ClassVar[tuple[Role, ...]] = (Role.REVIEW, Role.SUPERVISOR, Role.MANAGER)

    reference: str = Field(
        title="投诉编号 Complaint number",
        description="千牛评价投诉的编号 The complaint's number in Qianniu.",
        pattern=QIANNIU_REFERENCE,
    )


class RefusedInQianniu(StaffForm):
    """Returned goods that failed inspection, refused at the platform where that needs photos as
    proof (TOP: taobao.rp.returngoods.refuse): the warehouse refused them in Qianniu with its photos."""

    allowed_roles: ClassVar[tuple[Role, ...]] = (Role.WAREHOUSE, Role.SUPERVISOR, Role.MANAGER)

    note: str = Field(
        title="拒绝说明 What was sent",
        description="在千牛拒绝退货时的说明和所附照片 What you wrote and which photos you attached when refusing in Qianniu.",
        min_length=2,
        max_length=200,
    )


class ShippedByHand(StaffForm):
    """A parcel the shop's platform cannot ship (TOP ships nothing): the warehouse shipped it and
    records its carrier and waybill, which then go on the order at the platform."""

    allowed_roles: ClassVar[tuple[Role, ...]] = (Role.WAREHOUSE, Role.SUPERVISOR, Role.MANAGER)

    carrier: str = Field(
        title="快递公司编码 Carrier code",
        description="快递100 编码，如 zhongtong、shunfeng、yuantong。Kuaidi100 carrier code, e.g. zhongtong, shunfeng.",
        pattern=r"^[a-z0-9]{2,20}$",
    )
    waybill: str = Field(
        title="运单号 Waybill",
        description="补发包裹的运单号 The new parcel's waybill number.",
        pattern=r"^[A-Za-z0-9]{6,32}$",
    )


class Remedy(StrEnum):
    REFUND_MISSING = "refund_missing"
    RESHIP_MISSING = "reship_missing"


class ShortShipmentRemedy(StaffForm):
    """§1.1 short shipment: refund the missing part or re-ship it, usually within 3 working days."""

    allowed_roles: ClassVar[tuple[Role, ...]] = (Role.AGENT, Role.SUPERVISOR, Role.MANAGER)

    remedy: Remedy = Field(
        default=Remedy.REFUND_MISSING,
        title="处理方式 Remedy",
        description="refund_missing 退还缺件金额 refund the missing part / reship_missing 补发缺件 re-ship the missing items",
    )
    note: str = Field(default="", title="说明 Note", max_length=500)


def prefilled(form: type[RunInput], description: str | None = None, **defaults: Any) -> type[RunInput]:
    """A subclass of ``form`` whose fields default to the case's values, keeping each field's
    title, description and constraints.

    Prefect 3.8.8's ``RunInput.with_initial_data`` rebuilds each field from its bare type, which
    drops descriptions and validation (``ge``, patterns) from the form and the server-side check.
    """
    fields: dict[str, Any] = {}
    for name, value in defaults.items():
        original = form.model_fields.get(name)
        if original is None:
            raise KeyError(f"form {form.__name__} has no field {name!r}")
        fields[name] = (original.annotation, FieldInfo.merge_field_infos(original, default=value))
    model = pydantic.create_model(form.__name__, __base__=form, **fields)
    model.allowed_roles = form.allowed_roles if hasattr(form, "allowed_roles") else ()
    if description is not None:
        model._description = description
    return model
