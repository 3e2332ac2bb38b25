"""`aftersales workers recovery` — worker mode's recovery automation, for machines set up by hand
(`make run-workers` installs it by itself; see aftersales.deployments.workers)."""

from __future__ import annotations

import asyncio

import typer

NAME = "workers"
app = typer.Typer(help="Worker mode (work pool `aftersales`) 工作进程", no_args_is_help=True)


@app.command("recovery")
def recovery() -> None:
    """Install (or replace) the Prefect automation that re-queues a run whose worker died (no heartbeat
    for AFTERSALES_WORKER_UNRESPONSIVE_SECONDS)."""
    from aftersales.deployments.workers import UNRESPONSIVE_AUTOMATION, ensure_unresponsive_run_automation
    from aftersales.domain.settings import get_settings

    asyncio.run(ensure_unresponsive_run_automation())
    typer.echo(f"automation {UNRESPONSIVE_AUTOMATION!r}: a run silent for {get_settings().worker_unresponsive_seconds} s is re-queued")
