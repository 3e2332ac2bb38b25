"""How it runs: the deployments, their schedules (Asia/Shanghai), and the `serve` entrypoint.

Every module in ``aftersales/flows/`` that defines ``deployments(schedule)`` contributes its
deployments; ``schedule(cron)`` gives the module its schedules (none when
``AFTERSALES_SERVE_SCHEDULES=false``, as in the tests, which drive them by hand). `prefect.yaml`
declares the same deployments for a work pool (`prefect deploy --all`); `serve` is the
single-machine way used by `make run` and the tests.
"""

from __future__ import annotations

import importlib
import pkgutil

from prefect import serve
from prefect.schedules import Cron

import aftersales.flows
from aftersales.integrations.run_logging import install_run_logging
from aftersales.domain.settings import get_settings
from aftersales.integrations.db import migrate


def deployments(schedule=None) -> list:
    settings = get_settings()

    def serve_schedule(cron: str) -> list:
        return [Cron(cron, timezone=settings.timezone)] if settings.serve_schedules else []

    schedule = schedule or serve_schedule

    found = []
    for name in flow_modules():
        module = importlib.import_module(name)
        if hasattr(module, "deployments"):
            found.extend(by_module(deployment, module.__name__) for deployment in module.deployments(schedule))
    return found


def flow_modules() -> list[str]:
    """Every module of ``aftersales/flows/``: where deployments are declared, and what a warm
    flow-run process imports (``warm_start.py``)."""
    return sorted(f"aftersales.flows.{module.name}" for module in pkgutil.iter_modules(aftersales.flows.__path__))


def by_module(deployment, module: str):
    """The deployment's run imports its flow from ``module`` instead of executing the flow's file.

    Prefect's default entrypoint (``aftersales/flows/returns.py:return_flow``) makes every flow-run
    process execute that file again as a new module: its flow, tasks and forms built anew, 2–3 % of
    a resumed run's CPU (py-spy). By module path, a run forked from the warm process finds the
    module already imported. ``prefect.yaml`` (workers) keeps file entrypoints.
    """
    from prefect.deployments.runner import EntrypointType

    function = deployment.entrypoint.rpartition(":")[2]
    deployment.entrypoint = f"{module}.{function}"
    deployment._entrypoint_type = EntrypointType.MODULE_PATH  # what to_deployment(entrypoint_type=…) sets
    return deployment


async def _served_ids(client, served: list) -> list:
    from prefect.exceptions import ObjectNotFound

    ids = []
    for deployment in served:
        try:
            ids.append((await client.read_deployment_by_name(f"{deployment.flow_name}/{deployment.name}")).id)
        except ObjectNotFound:
            continue  # first start: nothing can be left over
    return ids


async def recover_interrupted_runs(served: list) -> list[str]:
    """Put back in the queue the runs a stopped `serve` left Running or Crashed (kill -9, reboot).

    `serve` is the only runner of its deployments on this machine, so at start-up no run of theirs
    can really be running; those still marked Running died with the previous process (`make run`'s
    supervisor has killed any flow-run process the dead serve left behind). They run again from the
    top through ``aftersales.tasks.recovery.requeue``: finished steps are skipped, and a refund that
    was in flight is asked again with the same idempotency key, so it is paid and recorded once.
    (Runs started by workers carry an infrastructure pid and are left to them: a run whose worker
    died with it is re-queued by the scheduled sweep: ``requeue_silent_worker_runs``.)
    The forms of suspended runs are checked apart, in the background: ``check_forms_in_background``.
    """
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    from aftersales.tasks.recovery import requeue

    recovered: list[str] = []
    async with get_client() as client:
        ids = await _served_ids(client, served)
        if not ids:
            return recovered
        seen: set = set()
        while True:  # re-queued runs leave the filter, so the first page is always the next one
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
                    any_=[StateType.RUNNING, StateType.PENDING, StateType.CRASHED]))),
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=ids)), limit=200,
            )
            orphans = [run for run in runs if not run.infrastructure_pid and run.id not in seen]
            if not orphans:
                return recovered
            for run in orphans:
                seen.add(run.id)
                if await requeue(run.id, run.name):
                    recovered.append(run.name)


async def check_forms_of_served_runs(served: list) -> dict:
    """A run suspended as the process died may have lost its form (approvals/paused_forms.py):
    every suspended run of ``served`` gets it back from its copy, the newest waits' runs first."""
    import time

    from prefect import get_client

    from aftersales.approvals.paused_forms import check_suspended_forms

    started = time.monotonic()
    async with get_client() as client:
        ids = await _served_ids(client, served)
        found = await check_suspended_forms(client, ids) if ids else {"checked": 0, "restored": []}
    return {**found, "seconds": round(time.monotonic() - started, 1)}


def check_forms_in_background(served: list):
    """``check_forms_of_served_runs`` in a thread of its own, so that serving does not wait for it (a
    shop holds thousands of suspended runs: at 10,000 the check took minutes; bench/hold_bench.py).
    What it puts back, and when it is done, goes to the log."""
    import asyncio
    import logging
    import threading

    log = logging.getLogger("aftersales.serve.forms")
    if not log.handlers:  # serve's log (its stderr) shows when the check ends, not only its warnings
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s | %(levelname)-7s | %(name)s - %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False

    def run() -> None:
        log.info("checking the forms of the suspended runs in the background")
        try:
            found = asyncio.run(check_forms_of_served_runs(served))
        except Exception:  # noqa: BLE001 - logged; an answer or the sweeper still puts a lost form back (approvals/resume.py)
            log.exception("checking the suspended runs' forms failed")
            return
        log.info("suspended runs' forms checked: %s runs in %s s, %s put back%s", found["checked"], found["seconds"],
                 len(found["restored"]), f" ({', '.join(found['restored'])})" if found["restored"] else "")

    thread = threading.Thread(target=run, name="check-suspended-forms", daemon=True)
    thread.start()
    return thread


def main() -> None:
    import asyncio
    import atexit
    import logging

    from aftersales.deployments import warm_start

    install_run_logging()
    migrate()
    served = deployments()
    if get_settings().warm_flow_runs:
        warm = warm_start.install(flow_modules())
        if warm is not None:
            atexit.register(warm.stop)
    recovered = asyncio.run(recover_interrupted_runs(served))
    if recovered:
        logging.getLogger("aftersales.serve").warning("re-queued runs interrupted by the last stop: %s", ", ".join(recovered))
    check_forms_in_background(served)
    serve(*served, limit=get_settings().flow_runs_at_once, query_seconds=get_settings().runner_poll_seconds)


if __name__ == "__main__":
    main()
