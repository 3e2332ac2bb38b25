"""The sandbox carrier's parcels, in Kuaidi100's vocabulary."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")

# Kuaidi100 company codes and the carriers' names
CARRIER_NAMES = {
    "zhongtong": "中通快递", "yuantong": "圆通速递", "shunfeng": "顺丰速运", "yunda": "韵达快递",
    "shentong": "申通快递", "jd": "京东快递", "ems": "EMS",
}

STATE_NAMES = {
    1: "揽收", 0: "在途", 5: "派件", 3: "签收", 6: "退回", 4: "退签",
    14: "拒签", 7: "转投", 8: "清关", 2: "疑难",
}


@dataclass
class ParcelEvent:
    time: datetime
    state: int
    status_code: str
    context: str
    area: str | None = None

    def as_kuaidi100(self) -> dict[str, Any]:
        stamp = self.time.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
        return {
            "time": stamp,
            "ftime": stamp,
            "context": self.context,
            "status": STATE_NAMES.get(self.state, str(self.state)),
            "statusCode": self.status_code,
            "areaName": self.area,
        }


@dataclass
class Parcel:
    waybill: str
    com: str | None  # None: any carrier code finds it (a parcel made by a test without one)
    phone: str | None = None  # SF checks the recipient's phone, so the sandbox does too
    events: list[ParcelEvent] = field(default_factory=list)

    def newest_first(self) -> list[ParcelEvent]:
        return sorted(self.events, key=lambda event: event.time, reverse=True)
