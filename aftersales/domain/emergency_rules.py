"""§3 emergencies (001 §四): record at once, assess severity and scope, escalate, start the
contingency plan, solve step by step, keep affected customers updated on a schedule, review
afterwards. Pure rules: no database, no Prefect."""

from __future__ import annotations

from enum import StrEnum

from aftersales.domain.models import Role
from aftersales.domain.rules import InvalidRequest, shown

# 1 major (重大), 2 serious (较大), 3 general (一般)
SEVERITY_LABEL = {1: "重大 major", 2: "较大 serious", 3: "一般 general"}


class Source(StrEnum):
    STAFF = "staff"  # reported by a person
    EARLY_WARNING = "early_warning"  # a breach far above its threshold
    GROUP_COMPLAINT = "group_complaint"  # 002 §5.2: a group complaint


class UpdateStatus(StrEnum):
    ONGOING = "ongoing"
    RESOLVED = "resolved"


def check_severity(raw: object) -> int:
    try:
        severity = int(str(raw).strip())
    except ValueError:
        severity = 0
    if severity not in SEVERITY_LABEL:
        raise InvalidRequest("bad_severity", f"严重程度须为 1 重大、2 较大、3 一般 severity must be 1 (major), 2 (serious) or 3 (general), got {shown(raw)}")
    return severity


def told_at_once(severity: int) -> list[str]:
    """Who hears of it the moment it is recorded: the supervisors always, the managers for a major one."""
    return [Role.SUPERVISOR.value] + ([Role.MANAGER.value] if severity == 1 else [])
