"""Opening a case, the same for every process: a checked request starts one flow run per case.

`run_deployment(..., idempotency_key=<case id>)` means a repeated request (a double click, a retried
webhook) finds the run already started instead of opening a second case. A repeated request that
asks for something else (another amount, kind, items …) is refused: it would otherwise silently get
the existing case.

Customer data stays in the case database: a run's parameters are visible to everyone who can see
Prefect (UI, API), so they carry the case id and non-personal choices only. Free text (reasons,
notes) goes into parameters with phone numbers and e-mail addresses masked; processes that take the
customer's contact details themselves (complaint, dispute) record the case here, before the run
starts, and give the run only the case id (``record_case_at_intake``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prefect.deployments import run_deployment

from aftersales.domain.masking import mask_contact, mask_text
from aftersales.domain.rules import InvalidRequest, shown
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope


@dataclass(frozen=True)
class Opened:
    case_id: str
    flow_run_id: str
    flow_run_name: str


async def start_case_run(deployment: str, case_id: str, parameters: dict, tags: list[str], same: Iterable[str] = (),
                         subject: tuple[str, str] = ("此订单", "this order")) -> Opened:
    """Start the one flow run of a case; the case id is the idempotency key (and the run's name,
    through the flow's ``flow_run_name="{case_id}"``).

    A repeated request gets the run already started — unless one of the ``same`` parameters differs
    from that run's: then it is refused (``case_exists_different``) and nothing changes."""
    # as_subflow=False: a case opened from inside a flow (the tracker, the review monitor) is a run of
    # its own — a subflow could not suspend for its waits
    run = await run_deployment(deployment, parameters=parameters, idempotency_key=case_id, tags=tags, timeout=0, as_subflow=False)
    refuse_a_different_repeat(case_id, run.parameters or {}, parameters, same, subject)
    return Opened(case_id=case_id, flow_run_id=str(run.id), flow_run_name=run.name)


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


def record_case_at_intake(same: Callable[[Mapping[str, Any]], Mapping[str, Any]], subject: tuple[str, str] = ("此订单", "this order"),
                          **fields: Any) -> None:
    """Put a checked request in the case database before its run starts (the run then gets only the
    case id): the customer's contact details are kept here and nowhere in Prefect. A repeat with the
    same content finds the case (and the run, through the idempotency key); one that differs in
    ``same(details)`` is refused and changes nothing."""
    with session_scope() as session:
        case, created = case_store.create_case(session, flow_run_id=None, **fields)
        if not created:
            refuse_a_different_repeat(case.id, same(case.details or {}), same(fields["details"]), same(fields["details"]).keys(), subject)
