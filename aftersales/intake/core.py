"""Opening a case, the same for every process: a request is checked once, here at the door; the
case is recorded and one flow run is started for it.

The process's intake module checks the request against the platform and the rulebook and hands
over a ``NewCase``; ``open_case`` records it and starts the run with the case id as its idempotency
key, so a repeated request (a double click, a retried webhook) finds the case and the run already
there instead of opening a second case. A repeat that asks for something else (another amount,
kind, items …) is refused and changes nothing: it would otherwise silently get the existing case.
The run does not check the request again (no second platform call, no re-judging a window against
a later date): its first task only gives the case its run, records ``opened`` and tells people.

Customer data stays in the case database: a run's parameters are visible to everyone who can see
Prefect (UI, API), so they carry the case id and non-personal choices only, free text with phone
numbers and e-mail addresses masked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from prefect.deployments import run_deployment

from aftersales.domain.details import RunRequest, details_of, store, stored, with_changes
from aftersales.domain.calendar import utcnow
from aftersales.domain.masking import mask_contact, mask_text
from aftersales.domain.models import Case
from aftersales.domain.rules import InvalidRequest, shown
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Opened:
    case_id: str
    flow_run_id: str
    flow_run_name: str
    new: bool = True  # False: a repeated request found the case already open


@dataclass(frozen=True)
class NewCase:
    """A checked request as its case: the row, its first event and its first messages.

    It is written at the door, before the run starts (``open_case``); the run's first task
    (``tasks.cases.open_case``) gives the case its run and, once, records ``opened`` and enqueues
    ``notice`` — then the messages can link to the run."""

    # the case's columns: id, process, order_id, customer_id, requested_by, reason, amount, and details
    # (the process's model of ``domain/details.py``: checked here, at the door, stored as JSON)
    fields: dict[str, Any]
    opened: dict[str, Any]  # the first event's details (case.opened)
    terms: dict[str, Any]  # what a repeated request must agree on (labels in SAME_LABELS)
    actor: str  # who opened it, as the trail says
    notice: str | None = None  # the first messages' template …
    staff_tags: tuple[str, ...] = ()
    buyer: bool = False
    say: Callable[[Case], dict[str, Any]] | None = None  # … and their placeholders beyond the case's own

    @property
    def case_id(self) -> str:
        return self.fields["id"]


async def open_case(deployment: str, new: NewCase, parameters: dict, tags: list[str],
                    subject: tuple[str, str] = ("此订单", "this order")) -> Opened:
    """Record the case, then start its one run (the case id is the idempotency key). A repeat that
    asks for something else than the recorded case is refused and changes nothing."""
    _case, created = record_case(new, subject, RunRequest(deployment=deployment, parameters=case_store.jsonable(parameters), tags=tags))
    opened = await start_case_run(deployment, new.case_id, parameters, tags)
    return replace(opened, new=created)


def record_case(new: NewCase, subject: tuple[str, str] = ("此订单", "this order"), run: RunRequest | None = None) -> tuple[Case, bool]:
    with session_scope() as session:
        details = with_changes(new.fields["details"], request_terms=case_store.jsonable(new.terms))
        case, created = case_store.create_case(session, flow_run_id=None, **{**new.fields, "details": stored(details)})
        if not created:
            refuse_a_different_repeat(case.id, details_of(case).request_terms or {}, new.terms, new.terms.keys(), subject)
            return case, False
        context = new.say(case) if new.say else {}
        opening = {"actor": new.actor, "run": run.model_dump(mode="json") if run else None, "event": new.opened, "notice": new.notice, "staff_tags": list(new.staff_tags), "buyer": new.buyer,
                   "context": context,
                   # kept as text in JSON; the messages show them as times again (with their offset)
                   "times": sorted(key for key, value in context.items() if isinstance(value, datetime))}
        store(case, with_changes(details_of(case), opening=case_store.jsonable(opening)))  # a new dict: the JSON column sees the change
        session.add(case)
        return case, True


async def start_case_run(deployment: str, case_id: str, parameters: dict, tags: list[str]) -> Opened:
    """Start the one flow run of a case; the case id is the idempotency key and the run's name from
    its creation (the flow's ``flow_run_name="{case_id}"`` only names it once it starts, so the CLI
    would print a random name): a repeated request gets the run already started."""
    # as_subflow=False: a case opened from inside a flow (the tracker, the review monitor) is a run of
    # its own — a subflow could not suspend for its waits
    run = await run_deployment(deployment, parameters=parameters, flow_run_name=case_id, idempotency_key=case_id, tags=tags,
                               timeout=0, as_subflow=False)
    return Opened(case_id=case_id, flow_run_id=str(run.id), flow_run_name=run.name)


# A case's run not started this long after the case was recorded is asked for again: its request
# failed or it is still queued behind others (then the repeat finds it: the case id is the key).
RUN_MISSING_AFTER = timedelta(minutes=10)


async def start_missing_runs(limit: int = 100) -> list[str]:
    """Ask again for the run of every case recorded at the door whose run has not started
    ``RUN_MISSING_AFTER`` later. Nothing is lost when the Prefect API refuses an open (seen: 7 of 100
    opens at once on a SQLite Prefect server, 503) or the process dies between recording the case
    and asking for its run; a run that exists already is found, not started twice."""
    with session_scope() as session:
        waiting = case_store.cases_without_run(session, recorded_before=utcnow() - RUN_MISSING_AFTER, limit=limit)
        requests = [(case.id, opening.run) for case in waiting
                    if (opening := details_of(case).opening) is not None and opening.run is not None]
    asked = []
    for case_id, run in requests:
        try:
            await start_case_run(run.deployment, case_id, run.parameters, run.tags)
        except Exception as error:  # noqa: BLE001 — still refused: the next sweep asks again; the others go on
            log.warning("case %s: its run was asked for again and refused (%s: %s)", case_id, type(error).__name__, error)
            continue
        asked.append(case_id)
    return asked


# What a repeated request must agree on, by name: (中文, English).
SAME_LABELS: dict[str, tuple[str, str]] = {
    "amount": ("金额", "amount"), "claimed_amount": ("金额", "amount"), "kind": ("类型", "kind"),
    "missing_skus": ("缺件商品", "missing items"), "form": ("补偿方式", "compensation form"), "bearer": ("承担方", "bearer"),
    "goods": ("补偿商品", "goods"), "sku": ("商品", "item"), "new_sku": ("换成的商品", "replacement item"),
    "quantity": ("数量", "quantity"), "skus": ("错发商品", "items"), "problem": ("问题类型", "problem"),
    "scope": ("维修范围", "repair scope"), "department": ("部门", "department"), "reason": ("维权原因", "dispute reason"),
    "channel": ("渠道", "channel"), "category_code": ("投诉分类", "category"), "level": ("等级", "level"),
    "order_id": ("订单", "order"), "contact": ("联系方式", "contact"),
}


def _comparable(value: Any) -> Any:
    if isinstance(value, (list, tuple, set)):
        return sorted(str(v) for v in value)
    return "" if value is None else str(value)


def _display(name: str, value: Any) -> str:
    if isinstance(value, (list, tuple, set)):
        value = ", ".join(str(v) for v in value) or "-"
    text = "-" if value is None or value == "" else str(value)
    return shown(text, 24, mask=mask_contact if name == "contact" else mask_text)


def refuse_a_different_repeat(case_id: str, existing: Mapping[str, Any], requested: Mapping[str, Any], same: Iterable[str],
                              subject: tuple[str, str] = ("此订单", "this order")) -> None:
    """Refuse a repeated request (same case id) that asks for something the existing case does not."""
    differing = [name for name in same if _comparable(existing.get(name)) != _comparable(requested.get(name))]
    if not differing:
        return
    labels = [SAME_LABELS.get(name, (name, name)) for name in differing]
    zh = "、".join(dict.fromkeys(label[0] for label in labels))
    en = " and ".join(dict.fromkeys(label[1] for label in labels))
    values = "; ".join(f"{SAME_LABELS.get(n, (n, n))[1]}: existing {_display(n, existing.get(n))}, requested {_display(n, requested.get(n))}"
                       for n in differing)
    raise InvalidRequest(
        "case_exists_different",
        f"{subject[0]}已有案件 {case_id}，但{zh}不同，未做任何更改 a case already exists for {subject[1]} ({case_id}) "
        f"with a different {en} ({values}); nothing was changed",
    )
