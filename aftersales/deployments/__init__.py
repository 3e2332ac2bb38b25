"""How it runs: the CLI, `serve`, `make run` and the intake.

Every entry point lives in this package, so this installation's Prefect settings (server address,
home, result storage) are put in place here, before anything imports Prefect — Prefect reads its
settings once, at its first import (see ``apply_prefect_defaults``).
"""

from aftersales.domain.settings import apply_prefect_defaults

apply_prefect_defaults()
