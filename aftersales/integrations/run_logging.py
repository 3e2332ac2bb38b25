"""How our processes log: customer data masked, and a case's wait logged as what it is."""

from __future__ import annotations

import logging

from aftersales.domain.masking import install_log_masking


class WaitIsNotAFailure(logging.Filter):
    """Prefect 3.8.8 logs the end of every flow-run attempt that did not complete as ERROR, so each
    suspended wait — the normal state of a case — reads ``ERROR Finished in state Suspended`` and
    pages whoever alerts on errors. A suspend or pause is logged as INFO; real failures stay ERROR."""

    WAITING = ("Finished in state Suspended", "Finished in state Paused")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and isinstance(record.msg, str) and record.msg.startswith(self.WAITING):
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def install_run_logging() -> None:
    """Masking on every handler, and waits logged as INFO. Idempotent."""
    install_log_masking()
    logger = logging.getLogger("prefect.flow_runs")
    if not any(isinstance(existing, WaitIsNotAFailure) for existing in logger.filters):
        logger.addFilter(WaitIsNotAFailure())
