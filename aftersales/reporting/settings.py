"""Settings of the reports (env ``AFTERSALES_…``), kept apart from ``domain/settings.py`` so the
reporting work does not churn the shared settings module. Read on each call (not cached): they are
only needed a few times per flow run, and tests change the environment between runs.
"""

from __future__ import annotations

import hashlib
import hmac

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from aftersales.domain.settings import get_settings


class ReportingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AFTERSALES_", env_file=".env", extra="ignore")

    # Where people reach our HTTP app (download links in artifacts, satisfaction links in buyer
    # messages). Default: the app's own host and port, right for `make run` on one machine.
    api_public_url: str | None = None
    # HMAC key of the satisfaction links. Unset: derived from the API key, so a deployment that
    # changed its API key has an unguessable secret too; set it to rotate links independently.
    satisfaction_secret: SecretStr | None = None

    # Schedules (Asia/Shanghai). The export runs on the 1st at 06:00 for the previous month.
    compensation_export_cron: str = "0 6 1 * *"
    # The quarterly satisfaction survey (000 §7.1.4): first day of each quarter, 10:00.
    satisfaction_survey_cron: str = "0 10 1 1,4,7,10 *"
    # Early warning (002 §9.2): every hour at :15.
    early_warning_cron: str = "15 * * * *"

    # Early warning (002 §9.2) (defaults): windows of this many days, aligned to Mondays; the
    # threshold is mean + k·stddev of the previous windows' counts, never below the floor.
    early_warning_window_days: int = 7
    early_warning_history_windows: int = 8
    early_warning_k: float = 3.0
    early_warning_floor: int = 5


def reporting_settings() -> ReportingSettings:
    return ReportingSettings()


def api_public_url() -> str:
    configured = reporting_settings().api_public_url
    if configured:
        return configured.rstrip("/")
    settings = get_settings()
    return f"http://{settings.api_host}:{settings.api_port}"


def satisfaction_key() -> bytes:
    secret = reporting_settings().satisfaction_secret
    if secret is not None and secret.get_secret_value():
        return secret.get_secret_value().encode()
    api_key = get_settings().api_key.get_secret_value().encode()
    return hmac.new(api_key, b"aftersales-satisfaction-link", hashlib.sha256).digest()
