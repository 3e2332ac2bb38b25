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
from aftersales.domain.masking import install_log_masking
from aftersales.domain.settings import get_settings
from aftersales.integrations.db import migrate


def deployments() -> list:
    settings = get_settings()

    def schedule(cron: str) -> list:
        return [Cron(cron, timezone=settings.timezone)] if settings.serve_schedules else []

    found = []
    for module_info in sorted(pkgutil.iter_modules(aftersales.flows.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"aftersales.flows.{module_info.name}")
        if hasattr(module, "deployments"):
            found.extend(module.deployments(schedule))
    return found


def main() -> None:
    install_log_masking()
    migrate()
    serve(*deployments(), limit=8)


if __name__ == "__main__":
    main()
