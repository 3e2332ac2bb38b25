"""The floor of bench/cases_bench.py: a bare Prefect flow with the return's number of tasks and the
same two suspends (``suspend_flow_run(wait_for_input=…, key=…)``), served by Prefect's own ``serve``
with our serve's run limit, poll interval and warm flow-run process. Nothing of ours runs in it."""

from __future__ import annotations

from prefect import flow, task
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput


class FloorAnswer(RunInput):
    decision: str = "agree"
    staff_id: str = ""


@task(cache_key_fn=lambda _context, parameters: f"floor-{parameters['case']}-{parameters['index']}", persist_result=True)
async def step(case: str, index: int) -> int:
    return index


@flow(name="floor-case")
async def floor_case(case: str, before: int, between: int) -> str:
    for index in range(before):
        await step(case, index)
    first = await suspend_flow_run(wait_for_input=FloorAnswer, key="seller-review", timeout=None)
    for index in range(before, before + between):
        await step(case, index)
    await suspend_flow_run(wait_for_input=FloorAnswer, key="buyer-shipment", timeout=None)
    return first.decision


def main() -> None:
    from prefect import serve

    from aftersales.deployments import warm_start
    from aftersales.domain.settings import get_settings

    warm = warm_start.install([])
    try:
        serve(floor_case.to_deployment(name="floor"), limit=get_settings().flow_runs_at_once, query_seconds=get_settings().runner_poll_seconds)
    finally:
        if warm is not None:
            warm.stop()


if __name__ == "__main__":
    main()
