"""Calendar months in the shop's time zone (Asia/Shanghai), as UTC bounds for database queries."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from aftersales.domain.settings import get_settings

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class BadMonth(ValueError):
    pass


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> "Month":
        match = _MONTH.match((text or "").strip())
        if not match:
            raise BadMonth(f"month must look like 2026-11 (YYYY-MM), got {text!r} / 月份格式应为 YYYY-MM")
        year, month = int(match.group(1)), int(match.group(2))
        if not 1 <= month <= 12 or not 2000 <= year <= 2999:
            raise BadMonth(f"no such month: {text!r} / 月份无效")
        return cls(year, month)

    @classmethod
    def previous(cls, moment: datetime) -> "Month":
        """The month before the one ``moment`` falls in, in the shop's time zone."""
        if moment.tzinfo is None:
            raise ValueError("timezone-aware moment required")
        local = moment.astimezone(get_settings().tz)
        return cls(local.year - 1, 12) if local.month == 1 else cls(local.year, local.month - 1)

    def next(self) -> "Month":
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)

    def start(self) -> datetime:
        """Midnight of the 1st in Asia/Shanghai, as an aware UTC datetime."""
        tz = get_settings().tz
        return datetime(self.year, self.month, 1, tzinfo=tz).astimezone(timezone.utc)

    def end(self) -> datetime:
        return self.next().start()

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"
