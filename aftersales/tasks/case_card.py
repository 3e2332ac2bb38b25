"""The case card: what a supervisor sees on the run page without opening the Resume form.

One markdown artifact per case (key ``case-<id>``, a new version at each wait and at the close):
what the case is, where it stands, what it waits for, from whom, until when, what the deadline
does, and the timeline with who decided. One table artifact of the money moved
(``case-<id>-money``), from the first money that moves. Both show on the run page's Artifacts tab
and in the Artifacts list.

The run's tags make the Runs page a queue: ``waiting:<role>`` and ``deadline:<YYYY-MM-DD>`` (shop
day) while it waits, none once it is closed. A saved Runs filter on a tag is a person's queue.

Showing is a courtesy: a failure here is logged and never stops the case.
"""

from __future__ import annotations

import logging
import re
from uuid import UUID

from prefect import get_client
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from sqlmodel import select

from aftersales.domain.calendar import shop_time
from aftersales.domain.masking import mask_text
from aftersales.domain.models import Case, CaseEvent, CaseStatus, LedgerLine, Wait, WaitStatus, addressee_label
from aftersales.domain.outcomes import Outcome
from aftersales.domain.stages import stage_label
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope

log = logging.getLogger(__name__)

QUEUE_TAG_PREFIXES = ("waiting:", "deadline:")

def card_key(case_id: str) -> str:
    """Prefect artifact keys are lowercase letters, digits and dashes."""
    return "case-" + re.sub(r"[^a-z0-9-]+", "-", case_id.lower()).strip("-")


def queue_tags(wait: Wait | None) -> list[str]:
    if wait is None:
        return []
    return [f"waiting:{wait.addressed_to}", f"deadline:{shop_time(wait.deadline)[:10]}"]


def card_markdown(case: Case, wait: Wait | None, events: list[CaseEvent], title: str = "", facts: tuple[str, ...] = ()) -> str:
    outcome = Outcome(case.outcome) if case.outcome in set(Outcome) else None
    standing = CaseStatus(case.status).label if case.status in set(CaseStatus) else case.status
    lines = [
        f"# {case.id}",
        "",
        "| | |",
        "|---|---|",
        f"| 流程 Process | {case.process} |",
        f"| 订单 Order | {case.order_id} |",
        f"| 金额 Amount | ¥{case.amount:.2f} |",
        f"| 买家 Buyer | {mask_text(case.customer_id)} |",
        f"| 状态 Status | {standing} |",
        f"| 环节 Step | {title or stage_label(case.stage)} |",
    ]
    if outcome is not None:
        lines.append(f"| 结果 Outcome | {outcome.label} |")
    elif case.outcome:
        lines.append(f"| 结果 Outcome | {case.outcome} |")
    lines.append(f"| 开案 Opened | {shop_time(case.opened_at)} |")
    if case.closed_at:
        lines.append(f"| 结案 Closed | {shop_time(case.closed_at)} |")
    if wait is not None and wait.status in (WaitStatus.OPEN, WaitStatus.EXPIRING):
        lines += [
            "",
            "## 等待 Waiting for",
            "",
            f"- **谁 Who:** {addressee_label(wait.addressed_to)}",
            f"- **截止 Until:** {shop_time(wait.deadline)}",
            f"- **到期 At the deadline:** {mask_text(wait.default_action)}",
        ]
        if wait.notice:
            lines.append(f"- **为何重开 Why it reopened:** {mask_text(wait.notice)}")
        lines += [f"- {mask_text(fact)}" for fact in facts]
    lines += ["", "## 经过 Timeline", "", "| 时间 Time (Asia/Shanghai) | 谁 Who | 做了什么 What |", "|---|---|---|"]
    for event in events:
        lines.append(f"| {shop_time(event.at)} | {mask_text(event.actor)} | {mask_text(event.action)} |")
    return "\n".join(lines) + "\n"


def money_rows(lines: list[LedgerLine]) -> list[dict[str, str]]:
    return [{
        "time": shop_time(line.created_at), "kind": line.kind, "amount": f"{line.amount:.2f}", "currency": line.currency,
        "bearer": line.bearer, "approved_by": line.approved_by, "platform_ref": line.platform_ref,
        "paid_by_platform": "yes" if line.platform_paid else "no",
    } for line in lines]


async def show_case(case_id: str, wait: Wait | None = None, title: str = "", flow_run_id: str | UUID | None = None,
                    facts: tuple[str, ...] = ()) -> None:
    """Write the case card (and the money table, once there is money) and set the run's queue tags (``wait`` None: none).
    The run is the case's own unless ``flow_run_id`` says otherwise."""
    try:
        with session_scope() as session:
            case = case_store.get_case(session, case_id)
            if wait is not None:
                wait = session.get(Wait, wait.id) or wait
            events = case_store.timeline(session, case_id)
            ledger = list(session.exec(select(LedgerLine).where(LedgerLine.case_id == case_id).order_by(LedgerLine.created_at, LedgerLine.id)))
            flow_run_id = flow_run_id or case.flow_run_id
            session.expunge_all()
        key = card_key(case_id)
        await acreate_markdown_artifact(key=key, markdown=card_markdown(case, wait, events, title, facts),
                                        description=f"{case_id}: {title or stage_label(case.stage)}")
        if ledger:  # until money moves there is no table: one call less to the Prefect server at each wait
            await acreate_table_artifact(key=f"{key}-money", table=money_rows(ledger), description=f"{case_id}: 资金往来 money moved")
        if flow_run_id:
            async with get_client() as client:
                run = await client.read_flow_run(UUID(str(flow_run_id)))
                kept = [tag for tag in run.tags if not tag.startswith(QUEUE_TAG_PREFIXES)]
                wanted = kept + queue_tags(wait)
                if sorted(wanted) != sorted(run.tags):
                    await client.update_flow_run(run.id, tags=wanted)
    except Exception:  # noqa: BLE001 - a card that cannot be drawn must never stop a case
        log.warning("case card for %s not updated", case_id, exc_info=True)
