"""§1.4 Express out-of-area: the buyer's choice of remedy (an outside event: the buyer answers on
the platform, or an agent enters what the buyer said on the phone)."""

from __future__ import annotations

from pydantic import Field

from aftersales.approvals.forms import EventForm
from aftersales.domain.out_of_area_rules import OutOfAreaRemedy


class RemedyChoice(EventForm):
    """The buyer chooses: switch carrier, collect it themselves, or have it returned and refunded."""

    remedy: OutOfAreaRemedy = Field(
        default=OutOfAreaRemedy.SWITCH_CARRIER,
        title="处理方式 Remedy",
        description=(
            "switch_carrier 换快递重新发货 ship again with another carrier / "
            "self_pickup 买家到网点或驿站自提 the buyer collects it at the outlet or a station / "
            "return_refund 退回并全额退款 the parcel comes back, full refund"
        ),
    )
    new_carrier: str = Field(
        default="",
        title="新快递公司编码 New carrier code（换快递时填写 for switch_carrier）",
        description="换快递时填写，快递100 编码，如 ems、shunfeng；不能与原快递相同。For switch_carrier: Kuaidi100 code, e.g. ems; not the current carrier.",
        pattern=r"^([a-z0-9]{2,20})?$",
    )
    pickup_point: str = Field(
        default="",
        title="自提点 Pickup point（自提时必填，已预填 required for self_pickup, prefilled）",
        description="自提时填写网点或驿站名称和地址（已按物流轨迹预填）。For self_pickup: the outlet or station, name and address (prefilled from the tracking).",
        max_length=200,
    )
    note: str = Field(default="", title="说明 Note", description="买家的其他要求 anything else the buyer asked for", max_length=500)
