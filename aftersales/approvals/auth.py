"""Who approved must be true: staff, one-time codes (TOTP), roles and approval limits.

Prefect's open-source server records no identity, so each staff form carries the staff id and a
one-time code from that person's authenticator app (RFC 6238, pyotp). A code is accepted once.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import pyotp
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from aftersales.domain.calendar import utcnow
from aftersales.domain.models import OneTimeCodeUse, Role, Staff, addressee_label
from aftersales.domain.rules import next_level

ISSUER = "Aftersales"


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking a staff decision: accepted, rejected (try again) or escalated."""

    outcome: str  # "accepted" | "rejected" | "escalated"
    reason: str = ""
    escalate_to: Role | None = None

    @classmethod
    def accepted(cls) -> Verdict:
        return cls("accepted")

    @classmethod
    def rejected(cls, reason: str) -> Verdict:
        return cls("rejected", reason)


def enrolment_uri(staff: Staff) -> str:
    """The otpauth:// URI an authenticator app scans (as a QR code) to enrol."""
    return pyotp.TOTP(staff.totp_secret).provisioning_uri(name=staff.id, issuer_name=ISSUER)


def current_code(staff: Staff, at: datetime | None = None) -> str:
    return pyotp.TOTP(staff.totp_secret).at(at or utcnow())


def _matching_time_step(secret: str, code: str, at: datetime) -> int | None:
    """The TOTP time step ``code`` belongs to (allowing one step of clock drift), or None."""
    totp = pyotp.TOTP(secret)
    step = totp.timecode(at)
    for candidate in (step, step - 1, step + 1):
        if pyotp.utils.strings_equal(totp.generate_otp(candidate), code):
            return candidate
    return None


def burn_code(session: Session, staff: Staff, code: str, case_id: str, at: datetime | None = None) -> str | None:
    """Check ``code`` and mark it used. Returns the reason it is refused, or None when accepted."""
    step = _matching_time_step(staff.totp_secret, code, at or utcnow())
    if step is None:
        return f"动态口令错误或已过期 wrong or expired one-time code for {staff.id}"
    try:
        with session.begin_nested():
            session.add(OneTimeCodeUse(staff_id=staff.id, time_step=step, case_id=case_id))
    except IntegrityError:
        return f"动态口令已使用过 this one-time code of {staff.id} was already used"
    return None


def check_staff_decision(
    session: Session,
    *,
    staff_id: str,
    code: str | None,
    case_id: str,
    requested_by: str,
    allowed_roles: tuple[Role, ...],
    amount: Decimal | None,
    at: datetime | None = None,
) -> Verdict:
    """Every check a staff decision must pass, in the order a person would want to be told.
    ``code`` None: our approval page has identified the person already (a signed link, or their
    code once for a batch: ``proof.page_signature``); everything else is checked the same."""
    staff = session.get(Staff, staff_id)
    if staff is None or not staff.active:
        return Verdict.rejected(f"工号 {staff_id} 不存在或已停用 unknown or inactive staff id {staff_id}")
    if staff.id == requested_by:
        return Verdict.rejected(f"不能审批自己提交的申请 {staff.id} opened this request and cannot approve it")
    refused = burn_code(session, staff, code, case_id, at) if code is not None else None
    if refused:
        return Verdict.rejected(refused)
    if allowed_roles and staff.role not in allowed_roles:
        allowed = "、".join(addressee_label(r.value) for r in allowed_roles)
        return Verdict.rejected(f"{staff.id}（{addressee_label(staff.role)}）的角色无权处理此步骤 their role may not decide this step; 可处理 allowed: {allowed}")
    if amount is not None and amount > staff.approval_limit:
        # 001 §三(二): above one's authority the request goes up a level instead of passing.
        return Verdict(
            "escalated",
            f"金额 {amount} 超过 {staff.id} 的审批权限 {staff.approval_limit}，已上报 amount above {staff.id}'s limit {staff.approval_limit}: escalated",
            next_level(Role(staff.role)),
        )
    return Verdict.accepted()


def staff_by_role(session: Session, role: Role) -> list[Staff]:
    return list(session.exec(select(Staff).where(Staff.role == role, Staff.active == True)))  # noqa: E712


def _demo_secret(staff_id: str) -> str:
    """Deterministic, publicly known secrets: for the demo staff only."""
    return base64.b32encode(hashlib.sha1(f"aftersales-demo-{staff_id}".encode()).digest()).decode()


# Demo staff for `make run` and the tests: known secrets so a code can be printed
# (`aftersales staff code S002`). A real shop enrols its own people (`aftersales staff add`).
DEMO_STAFF: tuple[Staff, ...] = (
    Staff(id="S001", name="王小明 Wang Xiaoming", role=Role.AGENT, approval_limit=Decimal("20"), contact="agent@shop.example", totp_secret=_demo_secret("S001")),
    Staff(id="S002", name="李娜 Li Na", role=Role.SUPERVISOR, approval_limit=Decimal("500"), contact="supervisor@shop.example", totp_secret=_demo_secret("S002")),
    Staff(id="S003", name="张伟 Zhang Wei", role=Role.MANAGER, approval_limit=Decimal("50000"), contact="manager@shop.example", totp_secret=_demo_secret("S003")),
    Staff(id="S004", name="刘洋 Liu Yang", role=Role.WAREHOUSE, approval_limit=Decimal("0"), contact="warehouse@shop.example", totp_secret=_demo_secret("S004")),
    Staff(id="S005", name="陈静 Chen Jing", role=Role.FINANCE, approval_limit=Decimal("0"), contact="finance@shop.example", totp_secret=_demo_secret("S005")),
    Staff(id="S006", name="赵磊 Zhao Lei", role=Role.SUPERVISOR, approval_limit=Decimal("500"), contact="supervisor2@shop.example", totp_secret=_demo_secret("S006")),
    Staff(id="S007", name="孙丽 Sun Li", role=Role.WAREHOUSE, approval_limit=Decimal("0"), contact="warehouse2@shop.example", totp_secret=_demo_secret("S007")),
    Staff(id="S008", name="周强 Zhou Qiang", role=Role.QUALITY, approval_limit=Decimal("0"), contact="quality@shop.example", totp_secret=_demo_secret("S008")),
    Staff(id="S009", name="吴敏 Wu Min", role=Role.REVIEW, approval_limit=Decimal("0"), contact="review@shop.example", totp_secret=_demo_secret("S009")),
    Staff(id="S010", name="郑浩 Zheng Hao", role=Role.DISPUTE, approval_limit=Decimal("0"), contact="dispute@shop.example", totp_secret=_demo_secret("S010")),
    Staff(id="S011", name="何婷 He Ting", role=Role.LOGISTICS, approval_limit=Decimal("0"), contact="logistics@shop.example", totp_secret=_demo_secret("S011")),
    Staff(id="S012", name="马超 Ma Chao", role=Role.AGENT, approval_limit=Decimal("20"), contact="agent2@shop.example", totp_secret=_demo_secret("S012")),
)


def seed_demo_staff(session: Session) -> None:
    for demo in DEMO_STAFF:
        if session.get(Staff, demo.id) is None:
            session.add(Staff.model_validate(demo.model_dump()))
