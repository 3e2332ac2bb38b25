"""An administrator enrols, revokes and re-keys staff from the CLI; the flows' own check
(``check_staff_decision``, the one every staff form goes through) sees it at once."""

from __future__ import annotations

import re
import time
import uuid
from decimal import Decimal

import pyotp
from typer.testing import CliRunner

from aftersales.approvals.auth import check_staff_decision
from aftersales.deployments.cli import app as cli
from aftersales.integrations.db import session_scope


def decide(staff_id: str, code: str):
    with session_scope() as session:
        return check_staff_decision(session, staff_id=staff_id, code=code, case_id=f"case-{uuid.uuid4().hex[:8]}",
                                    requested_by="buyer", allowed_roles=(), amount=Decimal("100.00"))


def secret_in(output: str) -> str:
    return re.search(r"secret=([A-Z2-7]+)", output).group(1)


def test_revoke_stops_a_member_at_once_and_rekey_gives_them_a_new_secret(stack):
    member = f"T{uuid.uuid4().hex[:6].upper()}"
    added = CliRunner().invoke(cli, ["staff", "add", member, "--name", "测试主管", "--role", "supervisor", "--limit", "500"])
    assert added.exit_code == 0, added.output
    old = pyotp.TOTP(secret_in(added.output))
    assert decide(member, old.now()).outcome == "accepted"

    revoked = CliRunner().invoke(cli, ["staff", "revoke", member])
    assert revoked.exit_code == 0 and f"revoked {member}" in revoked.output
    refused = decide(member, old.at(time.time() + 30))  # a code their phone shows, not used yet
    assert refused.outcome == "rejected" and "inactive" in refused.reason

    rekeyed = CliRunner().invoke(cli, ["staff", "rekey", member])
    assert rekeyed.exit_code == 0, rekeyed.output
    new = pyotp.TOTP(secret_in(rekeyed.output))
    assert new.secret != old.secret
    # the lost phone's codes stop; the new one's work (the next step's: a step is burnt once, whichever secret)
    lost = decide(member, old.at(time.time() + 30))
    assert lost.outcome == "rejected" and "wrong or expired" in lost.reason
    assert decide(member, new.at(time.time() + 30)).outcome == "accepted"

    unknown = CliRunner().invoke(cli, ["staff", "revoke", "NOBODY"])
    assert unknown.exit_code != 0 and "no staff member NOBODY" in unknown.output
