"""How it runs: the deployments, their schedules (Asia/Shanghai), and the `serve` entrypoint.

`prefect.yaml` declares the same deployments for a work pool (`prefect deploy --all`); `serve` is the
single-machine way used by `make run` and the tests.
"""

from __future__ import annotations

from prefect import serve
from prefect.schedules import Cron

from aftersales.domain.masking import install_log_masking
from aftersales.domain.settings import get_settings
from aftersales.flows.deadline_sweeper import deadline_sweeper
from aftersales.flows.outbox import outbox_retry
from aftersales.flows.returns import return_flow
from aftersales.integrations.db import migrate


def deployments() -> list:
    settings = get_settings()
    scheduled = settings.serve_schedules

    def every(cron: str) -> list:
        return [Cron(cron, timezone=settings.timezone)] if scheduled else []

    return [
        return_flow.to_deployment(
            name="return", tags=["process:return"],
            description="§1.1 退货 Return: one run per case, named after the case. Opened by `aftersales return open` or the intake API.",
        ),
        deadline_sweeper.to_deployment(
            name="deadline-sweeper", tags=["ops"], schedules=every(settings.sweeper_cron),
            description="到期处理 Applies the rulebook's default action to every wait past its deadline.",
        ),
        outbox_retry.to_deployment(
            name="outbox-retry", tags=["ops"], schedules=every(settings.outbox_retry_cron),
            description="通知重发 Delivers notifications whose channel was down.",
        ),
    ]


def main() -> None:
    install_log_masking()
    migrate()
    serve(*deployments(), limit=8)


if __name__ == "__main__":
    main()
