"""Approval links (approvals/links.py, api/approval_page.py): each member of the role a wait is
addressed to gets it through their own channel with a link made for them; the link opens a page
that decides the wait as that person, once, with the role, limit and requester checks of a code.
The page's queue decides several waits with one code, each on its own merits."""

from __future__ import annotations

import base64
import json
import re
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from aftersales.approvals.links import BadLink, read_link
from aftersales.domain.models import Staff, WaitStatus
from aftersales.integrations.db import session_scope
from tests.support.records import events, text, wait_row
from tests.support.stack import wait_until
from tests.test_event_proof import by_hand

PHONE = "13812345678"


@pytest.fixture
def page():
    from aftersales.api.app import create_app

    return TestClient(create_app())


def link_of(stack, staff_id: str, case_id: str, key: str) -> str:
    """The token of the approval link in ``staff_id``'s own message about wait ``key``."""
    def sent():
        said = text([m for m in stack.messages(f"/person/{staff_id}") if case_id in text([m])])
        return re.findall(r"/approve/([A-Za-z0-9_-]+\.[0-9a-f]+)", said)

    for token in wait_until(sent, 30, f"{staff_id}'s link to {case_id} {key}"):
        if read_link(token).wait_key == key:
            return token
    raise AssertionError(f"no link to {key} in {staff_id}'s messages")


def test_a_link_decides_its_wait_once_as_its_person(stack, sandbox_clean, team, page):
    order = stack.make_order(paid="128.00")
    case_id = stack.open_return(order)
    wait = stack.waiting(case_id, "seller-review")
    assert wait.addressed_to == "supervisor"
    mine, colleagues = link_of(stack, team["S002"], case_id, wait.key), link_of(stack, team["S006"], case_id, wait.key)
    assert not stack.messages(f"/person/{team['S001']}")  # links go to the role the wait is for
    said = text(stack.messages(f"/person/{team['S002']}"))
    assert "128.00" in said and PHONE not in said and "无需动态口令" in said

    shown = page.get(f"/approve/{mine}")
    assert shown.status_code == 200
    assert case_id in shown.text and "138****5678" in shown.text and PHONE not in shown.text
    assert 'value="agree" checked' in shown.text and 'value="refuse"' in shown.text and "我的待办" in shown.text

    # a link is its person's and its wait's: altered, it opens nothing
    payload, signature = mine.split(".")
    staff, case, key, expires = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    as_colleague = base64.urlsafe_b64encode(json.dumps([team["S006"], case, key, expires], separators=(",", ":")).encode()).decode().rstrip("=")
    for forged in (f"{as_colleague}.{signature}", f"{payload}.{'0' * len(signature)}", "not-a-link"):
        refused = page.get(f"/approve/{forged}")
        assert refused.status_code == 403 and "链接无效" in refused.text
        assert page.post(f"/approve/{forged}", data={"decision": "agree"}).status_code == 403
    with pytest.raises(BadLink, match="expired"):
        read_link(mine, now=wait.deadline)  # good until the wait's deadline, not after

    decided = page.post(f"/approve/{mine}", data={"decision": "agree", "note": "同意退货"})
    assert decided.status_code == 200 and 'data-outcome="accepted"' in decided.text
    answered = wait_row(case_id, wait.key)
    assert (answered.status, answered.actor, answered.decision["note"]) == (WaitStatus.ANSWERED, team["S002"], "同意退货")
    assert [e.actor for e in events(case_id) if e.action == "wait.accepted"] == [team["S002"]]
    stack.waiting(case_id, "buyer-shipment")

    # once: the same link, and a colleague's for the same wait, no longer decide anything
    for used in (mine, colleagues):
        assert page.get(f"/approve/{used}").status_code == 409
        assert page.post(f"/approve/{used}", data={"decision": "refuse", "note": "x"}).status_code == 409
    assert wait_row(case_id, wait.key).actor == team["S002"]


def test_a_signature_the_page_did_not_make_is_refused(stack, sandbox_clean, team):
    order = stack.make_order(paid="128.00")
    case_id = stack.open_return(order)
    forged = by_hand(stack, case_id, "seller-review", {"staff_id": team["S002"], "code": "ab" * 32, "decision": "agree", "note": ""})
    assert forged.status == WaitStatus.REJECTED and "signature" in forged.reason
    assert stack.waiting(case_id, "seller-review").key == "seller-review-2"


def test_above_the_persons_limit_a_link_escalates_and_a_batch_decides_each_on_its_merits(stack, sandbox_clean, team, page):
    low = team.colleague("S002")  # a supervisor whose own limit is ¥100
    with session_scope() as session:
        session.get(Staff, low).approval_limit = Decimal("100")
    dear = stack.open_return(stack.make_order(paid="128.00"))
    cheap = stack.open_return(stack.make_order(paid="80.00"))
    for case_id in (dear, cheap):
        assert stack.waiting(case_id, "seller-review").addressed_to == "supervisor"
    token = link_of(stack, low, cheap, "seller-review-1")
    queue = page.get(f"/approve/{token}").text
    assert f'value="{dear}|seller-review-1"' in queue and f'value="{cheap}|seller-review-1"' in queue

    ticked = {"wait": [f"{dear}|seller-review-1", f"{cheap}|seller-review-1"]}
    wrong = page.post(f"/approve/{token}/batch", data={**ticked, "code": "000000"})
    assert wrong.status_code == 403 and "动态口令" in wrong.text
    assert {wait_row(c, "seller-review-1").status for c in (dear, cheap)} == {WaitStatus.OPEN}  # nothing changed

    code = stack.code(low)
    decided = page.post(f"/approve/{token}/batch", data={**ticked, "code": code})
    assert decided.status_code == 200
    outcomes = dict(re.findall(r'data-case="([^"]+)" data-outcome="([a-z]+)"', decided.text))
    assert outcomes == {dear: "escalated", cheap: "accepted"}
    assert (wait_row(dear, "seller-review-1").status, wait_row(dear, "seller-review-1").actor) == (WaitStatus.ESCALATED, low)
    assert stack.waiting(dear, "seller-review").addressed_to == "manager"
    assert wait_row(cheap, "seller-review-1").actor == low
    stack.waiting(cheap, "buyer-shipment")

    again = page.post(f"/approve/{token}/batch", data={"wait": [f"{dear}|seller-review-2"], "code": code})
    assert again.status_code == 403 and "已使用" in again.text  # one code, once
