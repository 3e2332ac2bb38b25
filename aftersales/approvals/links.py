"""Approval links: a staff member decides a wait from their phone, without a one-time code.

Each message that asks for a decision goes to the role's channels as before and, to each member of
the role (but whoever opened the request), through that person's own channel
(``settings.staff_notify_url``) with a link made for them and that wait. The link is signed (HMAC
with the installation's event secret, for this purpose only), names the person and the wait, and
is good until the wait's deadline and only while the wait is open: a wait is answered once, so a
link decides once, and a refused answer reopens the wait under a new key with new links.

The link opens the approval page (``api/approval_page.py``). What the page submits carries the
page's signature in the code's place (``proof.page_signature``); the flow checks role, limit and
self-approval exactly as for a code (``waits._judge``), so above the person's limit it escalates.
"""

from __future__ import annotations

import base64
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote

from sqlmodel import Session

from aftersales.approvals.auth import staff_by_role
from aftersales.approvals.proof import sign
from aftersales.domain.calendar import utcnow
from aftersales.domain.models import Role, Staff, Wait
from aftersales.domain.settings import get_settings


class BadLink(ValueError):
    pass


@dataclass(frozen=True)
class ApprovalLink:
    staff_id: str
    case_id: str
    wait_key: str
    expires: datetime  # the wait's deadline

    @property
    def token(self) -> str:
        payload = json.dumps([self.staff_id, self.case_id, self.wait_key, int(self.expires.timestamp())], separators=(",", ":"))
        encoded = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
        return f"{encoded}.{self._signature()}"

    @property
    def url(self) -> str:
        return f"{get_settings().public_url}/approve/{self.token}"

    def _signature(self) -> str:
        return sign("approval-link", self.case_id, self.wait_key, {"staff_id": self.staff_id, "expires": int(self.expires.timestamp())})[:40]


def link_for(staff_id: str, wait: Wait) -> ApprovalLink:
    return ApprovalLink(staff_id=staff_id, case_id=wait.case_id, wait_key=wait.key, expires=wait.deadline)


def read_link(token: str, now: datetime | None = None) -> ApprovalLink:
    """The link a token stands for; ``BadLink`` (saying why) if it was altered or has expired."""
    encoded, _, signature = token.partition(".")
    try:
        staff_id, case_id, wait_key, expires = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        link = ApprovalLink(str(staff_id), str(case_id), str(wait_key), datetime.fromtimestamp(int(expires), timezone.utc))
    except (ValueError, TypeError):
        raise BadLink("链接无效 this link is not one of ours") from None
    if not hmac.compare_digest(signature, link._signature()):
        raise BadLink("链接无效或被改动 this link was altered or is not one of ours")
    if (now or utcnow()) >= link.expires:
        raise BadLink("链接已过期（已过处理期限）this link expired with its wait's deadline")
    return link


def personal_channel(staff: Staff) -> str | None:
    """The person's own channel (``staff_notify_url`` with their id and contact), or None."""
    template = get_settings().staff_notify_url
    if not template or ("{contact}" in template and not staff.contact):
        return None
    return template.format(staff_id=quote(staff.id, safe=""), contact=quote(staff.contact or "", safe="@+"))


def who_decides(session: Session, addressed_to: str, requested_by: str) -> list[Staff]:
    """The members of the role a wait is addressed to who may get a link: active, and not the one
    who opened the request (they could not approve it)."""
    try:
        role = Role(addressed_to)
    except ValueError:
        return []
    return [member for member in staff_by_role(session, role) if member.id != requested_by]
