"""Business time: deadlines in Asia/Shanghai, calendar days and working days (rulebook §4).

Working days are Monday to Friday, minus holidays, plus make-up working days (调休), read from
``config/holidays.yml``. All functions take and return timezone-aware datetimes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: business times must be timezone-aware")
    return moment


@dataclass(frozen=True)
class BusinessCalendar:
    tz: ZoneInfo
    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        return day.weekday() < 5

    def add_days(self, start: datetime, days: int) -> datetime:
        """Calendar days, as the platform counts its 5/7/10-day rules."""
        return _aware(start).astimezone(self.tz) + timedelta(days=days)

    def add_hours(self, start: datetime, hours: int) -> datetime:
        return _aware(start).astimezone(self.tz) + timedelta(hours=hours)

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """``days`` working days after ``start``: the same local time on the n-th working day.

        A start on a non-working day counts from the beginning of the next working day, so a
        request received on Saturday with 3 working days is due Wednesday end of day.
        """
        local = _aware(start).astimezone(self.tz)
        if days <= 0:
            return local
        if not self.is_working_day(local.date()):
            local = local.replace(hour=23, minute=59, second=59, microsecond=0)
        day = local.date()
        remaining = days
        while remaining:
            day += timedelta(days=1)
            if self.is_working_day(day):
                remaining -= 1
        return local.replace(year=day.year, month=day.month, day=day.day)


def shop_time(moment: datetime) -> str:
    """A moment as the shop reads it: its local time (``AFTERSALES_TIMEZONE``) to the minute, with
    its offset (``2026-11-20 18:00 (UTC+08:00)``), so nobody has to guess the zone — the CLI, the
    forms and the messages all show times this way."""
    from aftersales.domain.settings import get_settings

    local = moment.astimezone(get_settings().tz)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} (UTC{offset[:3]}:{offset[3:]})"


def business_calendar() -> BusinessCalendar:
    from aftersales.domain.settings import get_settings, load_calendar_days

    settings = get_settings()
    holidays, workdays = load_calendar_days(settings.holidays_file)
    return BusinessCalendar(settings.tz, frozenset(holidays), frozenset(workdays))


_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})")


def in_shop_time(value: Any) -> Any:
    """``value`` (a case event's details: JSON) with every moment in it moved to the shop's time
    zone, ISO 8601 with its offset (``2026-12-11T14:03:00+08:00``): stored in UTC, read by people."""
    from aftersales.domain.settings import get_settings

    if isinstance(value, dict):
        return {key: in_shop_time(item) for key, item in value.items()}
    if isinstance(value, list):
        return [in_shop_time(item) for item in value]
    if isinstance(value, str) and _MOMENT.fullmatch(value):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(get_settings().tz).isoformat()
    return value
