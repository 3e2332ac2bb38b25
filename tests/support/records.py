"""What the tests read back from the case database and the notification receiver."""

from __future__ import annotations

import json
from decimal import Decimal

from sqlmodel import select

from aftersales.domain.models import Case, CaseEvent, LedgerLine, Wait
from aftersales.integrations.db import session_scope


def events(case_id: str) -> list[CaseEvent]:
    with session_scope() as session:
        return list(session.exec(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)))


def ledger(case_id: str) -> list[LedgerLine]:
    with session_scope() as session:
        return list(session.exec(select(LedgerLine).where(LedgerLine.case_id == case_id).order_by(LedgerLine.id)))


def wait_row(case_id: str, key: str) -> Wait:
    with session_scope() as session:
        return session.exec(select(Wait).where(Wait.case_id == case_id, Wait.key == key)).one()


def text(messages) -> str:
    """Everything the given received messages said, as one searchable string."""
    return json.dumps([m.json for m in messages], ensure_ascii=False)


def assert_platform_paid_matches(stack, order: dict, lines) -> None:
    """Finance's rule: the lines marked platform_paid add up, by reference, to what the platform
    reports it refunded; no other line carries a refund's reference as if it were that payment."""
    refunds = stack.refunds(order["order_id"])
    paid: dict[str, Decimal] = {}
    for line in lines:
        if line.platform_paid:
            paid[line.platform_ref] = paid.get(line.platform_ref, Decimal("0")) + line.amount
    assert paid == {r["refund_id"]: Decimal(r["amount"]) for r in refunds}
    assert [line.kind for line in lines if not line.platform_paid and line.platform_ref in {r["refund_id"] for r in refunds}] == []


def case_view(stack, case_id: str) -> tuple[str, list[str], list[dict]]:
    """What the Prefect UI shows of a case: the latest case card (markdown), the run's tags and
    the money table's rows, read back from the Prefect server."""
    from uuid import UUID

    from prefect.client.schemas.filters import ArtifactCollectionFilter, ArtifactCollectionFilterKey

    from aftersales.tasks.case_card import card_key

    key = card_key(case_id)
    found = {a.key: a for a in stack.prefect().read_latest_artifacts(
        artifact_filter=ArtifactCollectionFilter(key=ArtifactCollectionFilterKey(any_=[key, f"{key}-money"])))}
    with session_scope() as session:
        run_id = session.get(Case, case_id).flow_run_id
    tags = list(stack.prefect().read_flow_run(UUID(run_id)).tags)
    money = found[f"{key}-money"].data if f"{key}-money" in found else []
    money = json.loads(money) if isinstance(money, str) else money
    return (found[key].data if key in found else ""), tags, money


def card_shows_the_wait(stack, case_id: str, wait: Wait, *, mask: str = "") -> str:
    """The run page at a wait: the case card says whom the case waits for (Chinese first), until when
    (Asia/Shanghai, with the offset) and what the deadline does; the run carries that one queue tag
    and its deadline day, and no other ``waiting:`` tag. ``mask``: a contact that must not appear.
    Returns the card."""
    from aftersales.domain.calendar import shop_time
    from aftersales.domain.models import addressee_label

    card, tags, _ = case_view(stack, case_id)
    assert case_id in card and addressee_label(wait.addressed_to) in card, card
    assert shop_time(wait.deadline) in card and "+08:00" in card
    assert wait.default_action[:20] in card  # what happens at the deadline (its start: the card masks contacts)
    assert [t for t in tags if t.startswith("waiting:")] == [f"waiting:{wait.addressed_to}"], tags
    assert [t for t in tags if t.startswith("deadline:")] == [f"deadline:{shop_time(wait.deadline)[:10]}"], tags
    assert not mask or mask not in card
    return card


def card_shows_the_close(stack, case_id: str, outcome_label: str) -> tuple[str, list[dict]]:
    """The run page once the case closed: the card says closed and how, waits for nobody, and the run
    has left every queue. Returns the card and the money table's rows."""
    card, tags, money = case_view(stack, case_id)
    assert "已结束 closed" in card and outcome_label in card and "等待 Waiting for" not in card, card
    assert not [t for t in tags if t.startswith(("waiting:", "deadline:"))], tags
    return card, money
