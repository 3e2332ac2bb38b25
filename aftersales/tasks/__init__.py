"""Prefect tasks: small steps with retries, caching and idempotency keys.

Every flow module imports this package, also when Prefect loads a flow in a flow-run process of its
own (as a script, so ``aftersales.flows`` itself is not imported there): that is why the run's
logging (masking, waits as INFO) is set up here.
"""

from aftersales.integrations.run_logging import install_run_logging

install_run_logging()
