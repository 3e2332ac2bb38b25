"""Worker mode: the same deployments run by Prefect workers of the `aftersales` work pool, not `serve`.

`make run-workers` (`aftersales dev --workers 2`) is `make run` with the Prefect server and the case
database on PostgreSQL and, instead of `serve`, a `process` work pool with every deployment of
`prefect.yaml` (`prefect deploy --all`) and N `aftersales worker` processes (Prefect's process
worker, with serve's warm flow runs: ``run_worker``) sharing one result storage. This module holds
the pieces that differ from serve; `dev.py` starts and supervises them like every other component.

A worker's flow run whose process dies while its worker lives is marked Crashed by that worker and
re-queued by the flows' ``on_crashed`` hook (``aftersales.tasks.recovery``), as under serve. When
the worker dies with it (``kill -9``, the machine lost), nobody is left to notice: the run stays
Running. So worker runs send Prefect's flow-run heartbeats, and every scheduled deadline sweep
re-queues a worker's run that has sent none for ``worker_unresponsive_seconds``
(``requeue_silent_worker_runs``): it runs again from the top on any worker, finished steps are
skipped and money is asked again with the same idempotency key.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from aftersales.deployments.commands.deployments import CASES_QUEUE, WORK_POOL, render, write_job_template_file
from aftersales.domain.settings import PROJECT_ROOT, get_settings

OLD_RECOVERY_AUTOMATION = "aftersales: re-queue runs that stopped reporting (worker or machine died)"


def require_postgres() -> None:
    """Worker mode keeps both databases on PostgreSQL (the machines share them): say which is not,
    and create a database that does not exist yet (`make run-workers` does its own set-up)."""
    settings = get_settings()
    urls = {"AFTERSALES_DATABASE_URL": settings.database_url, "AFTERSALES_PREFECT_DATABASE_URL": settings.prefect_database_url}
    missing = [name for name, url in urls.items() if not url.startswith("postgresql")]
    if missing:
        raise SystemExit(f"worker mode needs the case database and the Prefect server on PostgreSQL: set {' and '.join(missing)} "
                         "(e.g. in .env: AFTERSALES_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/aftersales, "
                         "AFTERSALES_PREFECT_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/aftersales_prefect)")
    for name, url in urls.items():
        if create_database(url):
            print(f"  ✓ created the PostgreSQL database of {name}", flush=True)


def create_database(url: str) -> bool:
    """Create the database ``url`` names if its server does not have it (through the server's
    ``postgres`` database, with the same user); False if it was there."""
    import sqlalchemy as sa

    target = sa.make_url(url)
    admin = sa.create_engine(target.set(drivername="postgresql+psycopg", database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}).first():
                return False
            conn.execute(sa.text(f'CREATE DATABASE "{target.database.replace(chr(34), chr(34) * 2)}"'))
            return True
    except sa.exc.SQLAlchemyError as error:
        raise SystemExit(f"worker mode: could not create the PostgreSQL database {target.database!r} on "
                         f"{target.host}:{target.port or 5432} ({type(error.orig or error).__name__}: {str(error.orig or error).strip()[:300]}); "
                         "create it, or give the user the right to") from None
    finally:
        admin.dispose()


def worker_env(env: dict[str, str]) -> dict[str, str]:
    """What every worker (and so every flow run it starts) needs beside the stack's environment:
    the installation's settings exported (a run works in the code's directory, not in the home
    whose `.env` holds them), heartbeats, and the poll cadence serve has."""
    from dotenv import dotenv_values

    settings = get_settings()
    exported = {name: value for name, value in dotenv_values(Path(".env")).items() if value is not None}
    return {
        **exported,
        **env,
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(settings.worker_heartbeat_seconds),
        "PREFECT_WORKER_QUERY_SECONDS": env.get("PREFECT_WORKER_QUERY_SECONDS", str(settings.runner_poll_seconds)),
    }


def worker_command(name: str) -> list[str]:
    return ["-m", "aftersales.deployments.cli", "worker", "--name", name]


def run_worker(name: str, prefect_options: list[str]) -> None:
    """`aftersales worker`: Prefect's process worker for the `aftersales` pool (``prefect worker start``,
    in this process), its flow runs forked from a warm process as under serve. The pool's command says
    ``python``: this interpreter's (its directory first on PATH, for the runs and their launcher)."""
    import atexit

    from prefect.cli import app

    from aftersales.deployments import warm_start
    from aftersales.deployments.serve import flow_modules
    from aftersales.integrations.run_logging import install_run_logging

    install_run_logging()
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    if get_settings().warm_flow_runs:
        warm = warm_start.install(flow_modules())
        if warm is not None:
            atexit.register(warm.stop)
    sys.argv = ["prefect", "worker", "start", "--pool", WORK_POOL, "--type", "process", "--name", name, *prefect_options]
    app()  # Prefect's CLI reads sys.argv


def deploy(env: dict[str, str]) -> Path:
    """Create the `process` work pool and deploy every deployment with `prefect deploy --all`; the
    case runs' queue takes at most ``flow_runs_at_once`` runs at once (serve's limit). The limit is
    the queue's, not the pool's: runs of a machine that died hold their slots until the sweep
    re-queues them, and the sweep (queue `ops`) must still start.

    The deployments are the ones `prefect.yaml` declares, rendered from this installation's
    settings (its schedules) into ``var/prefect.yaml`` with the pull step pointing at this
    machine's code; the checked-in `prefect.yaml` says ``$AFTERSALES_HOME`` for machines where the
    home is the checkout."""
    settings = get_settings()
    prefect_file = settings.var_dir / "prefect.yaml"
    prefect_file.write_text(render(pull_directory=str(PROJECT_ROOT)), encoding="utf-8")
    template_file = write_job_template_file(settings.var_dir / "work-pool-template.json")
    prefect_commands(env, ["work-pool", "create", WORK_POOL, "--type", "process", "--overwrite", "--base-job-template", str(template_file)],
                     ["deploy", "--all", "--prefect-file", str(prefect_file)],
                     ["work-queue", "set-concurrency-limit", CASES_QUEUE, str(settings.flow_runs_at_once), "--pool", WORK_POOL])
    return prefect_file


def prefect_commands(env: dict[str, str], *commands: list[str]) -> None:
    """``prefect <command>`` for each, in the code's directory; the first that fails stops with its output."""
    for command in commands:
        done = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", *command], env=env, cwd=PROJECT_ROOT,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"`prefect {' '.join(command)}` failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


async def remove_old_recovery_automation() -> None:
    """Delete the Prefect automation an earlier version installed for this (Prefect's "zombie flows"
    recipe): it re-queued runs that had suspended, which resumed them without their answer. The
    scheduled sweep does the work now (``aftersales.tasks.recovery.requeue_silent_worker_runs``)."""
    from prefect import get_client

    async with get_client() as client:
        for old in await client.read_automations_by_name(OLD_RECOVERY_AUTOMATION):
            await client.delete_automation(old.id)


def default_names(count: int) -> list[str]:
    host = os.uname().nodename.split(".")[0] or "local"
    return [f"{host}-worker-{n}" for n in range(1, count + 1)]
