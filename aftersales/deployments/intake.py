"""Opening cases: a request is checked first, then one flow run is started per case.

`run_deployment(..., idempotency_key=<case id>)` means a repeated request (a double click, a retried
webhook) finds the run already started instead of opening a second case.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect.deployments import run_deployment

from aftersales.domain.calendar import utcnow
from aftersales.domain.rules import InvalidRequest, ReturnKind, approval_level, validate_return_request
from aftersales.domain.settings import get_settings
from aftersales.flows.returns import return_case_id
from aftersales.integrations.platform import PlatformClient
from aftersales.tasks.intake import order_facts


@dataclass(frozen=True)
class Opened:
    case_id: str
    flow_run_id: str
    flow_run_name: str


async def open_return(order_id: str, amount: str, reason: str = "", kind: ReturnKind | str = ReturnKind.NO_REASON,
                      requested_by: str = "buyer", missing_skus: list[str] | None = None,
                      request_ref: str | None = None) -> Opened:
    """§1.1 step 1 at the door: refuse a bad request at once (nothing is recorded), else start its run."""
    try:
        kind = ReturnKind(kind)
    except ValueError:
        raise InvalidRequest("unknown_kind", f"未知退货类型 unknown return kind {kind!r}; one of {', '.join(k.value for k in ReturnKind)}") from None
    async with PlatformClient() as platform:
        _order, facts = await order_facts(platform, order_id)
    checked = validate_return_request(facts, amount, kind, utcnow(), get_settings().rules, missing_skus)
    case_id = return_case_id(order_id, request_ref)
    return await start_case_run(
        "return/return", case_id,
        {"case_id": case_id, "order_id": order_id, "amount": str(checked), "reason": reason,
         "kind": kind.value, "requested_by": requested_by, "missing_skus": missing_skus or []},
        tags=["process:return", f"level:{approval_level(checked, get_settings().rules).value}", f"kind:{kind.value}"],
    )


async def start_case_run(deployment: str, case_id: str, parameters: dict, tags: list[str]) -> Opened:
    """Start the one flow run of a case; the case id is the idempotency key (and the run's name,
    through the flow's ``flow_run_name="{case_id}"``)."""
    # as_subflow=False: a case opened from inside a flow (the tracker, the review monitor) is a run of
    # its own — a subflow could not suspend for its waits
    run = await run_deployment(deployment, parameters=parameters, idempotency_key=case_id, tags=tags, timeout=0, as_subflow=False)
    return Opened(case_id=case_id, flow_run_id=str(run.id), flow_run_name=run.name)
