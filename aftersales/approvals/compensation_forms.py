"""Forms of the §1.3 compensation approval (the compensation process and a complaint's remedy): one
approval per level, each answered by that level's role."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from aftersales.approvals.forms import ApprovalDecision, StaffForm
from aftersales.domain.models import Role


class CompensationApproval(StaffForm):
    """§1.3: approve or decline a compensation above the agent's limit."""

    allowed_roles: ClassVar[tuple[Role, ...]] = (Role.SUPERVISOR, Role.MANAGER)

    decision: ApprovalDecision = Field(
        default=ApprovalDecision.APPROVE,
        title="审批结果 Decision",
        description="approve 同意（如需更高一级审批，将转给上级）/ decline 不同意（须写明原因，告知提出人）. approve: goes on to the next level if one is needed; decline: give the reason for whoever proposed it.",
    )
    note: str = Field(default="", title="审批意见 Note（不同意时必填 required to decline）", description="不同意时必填 required when declining", max_length=500)


class SupervisorCompensationApproval(CompensationApproval):
    """§1.3 first level: the supervisor (主管)."""

    allowed_roles: ClassVar[tuple[Role, ...]] = (Role.SUPERVISOR,)


class ManagerCompensationApproval(CompensationApproval):
    """§1.3 top level: the manager (经理), after the supervisor or when the supervisor did not answer."""

    allowed_roles: ClassVar[tuple[Role, ...]] = (Role.MANAGER,)


FORMS: dict[Role, type[CompensationApproval]] = {Role.SUPERVISOR: SupervisorCompensationApproval, Role.MANAGER: ManagerCompensationApproval}
