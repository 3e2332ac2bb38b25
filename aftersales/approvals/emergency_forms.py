"""§3 Emergencies: the contingency plan, each scheduled update to the affected customers, and the
post-incident review without which the emergency does not close."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from aftersales.approvals.forms import StaffForm
from aftersales.domain.emergency_rules import UpdateStatus
from aftersales.domain.models import Role

LEADS = (Role.SUPERVISOR, Role.MANAGER)


class ContingencyPlan(StaffForm):
    """Start the plan: who owns it, what is done first (the core problem), how often customers hear."""

    allowed_roles: ClassVar[tuple[Role, ...]] = LEADS
    must_answer: ClassVar[tuple[str, ...]] = ("owner", "plan", "first_update")

    owner: str = Field(default="", title="负责人工号 Owner (staff id)", description="负责处理此事件的员工工号 who owns the emergency",
                       min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    plan: str = Field(default="", title="应急预案 Contingency plan", description="先解决核心问题，逐步处理 the core problem first, then step by step",
                      min_length=1, max_length=1000)
    update_every_hours: int = Field(default=4, ge=1, le=72, title="通报间隔(小时) Update every (hours)",
                                    description="每隔多少小时向受影响客户通报进展 how often the affected customers hear of the progress")
    first_update: str = Field(default="", title="首次通报 First update to the customers",
                              description="发给每位受影响客户 sent to every affected customer", min_length=1, max_length=500)


class EmergencyUpdate(StaffForm):
    """A scheduled update: the progress told to every affected customer, or that it is resolved."""

    must_answer: ClassVar[tuple[str, ...]] = ("message",)

    status: UpdateStatus = Field(default=UpdateStatus.ONGOING, title="状态 Status",
                                 description="ongoing 处理中（按时继续通报）still being solved / resolved 已解决（进入事后复盘）solved: the review follows")
    message: str = Field(default="", title="通报内容 Update to the customers", description="发给每位受影响客户 sent to every affected customer",
                         min_length=1, max_length=500)


class PostIncidentReviewForm(StaffForm):
    """001 §四: review afterwards — cause, actions taken, prevention. The emergency closes with it only."""

    allowed_roles: ClassVar[tuple[Role, ...]] = LEADS
    must_answer: ClassVar[tuple[str, ...]] = ("cause", "actions", "prevention")

    cause: str = Field(default="", title="原因 Cause", min_length=1, max_length=1000)
    actions: str = Field(default="", title="采取的措施 Actions taken", min_length=1, max_length=1000)
    prevention: str = Field(default="", title="预防措施 Prevention", min_length=1, max_length=1000)
