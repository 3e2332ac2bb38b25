"""One settings class; outside development it refuses to start on a built-in secret, naming it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from aftersales.domain.settings import DEFAULT_SECRETS, Settings

CLEAN = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}


def test_development_accepts_the_built_in_secrets(monkeypatch):
    for name in ("AFTERSALES_ENVIRONMENT", "AFTERSALES_API_KEY", "AFTERSALES_PLATFORM_API_KEY", "AFTERSALES_CARRIER_KEY"):
        monkeypatch.delenv(name, raising=False)  # a test stack of this process may have set them
    settings = Settings(_env_file=None)
    assert settings.environment == "development"
    assert settings.api_key.get_secret_value() == DEFAULT_SECRETS["api_key"]


def test_production_names_every_built_in_secret_it_refuses(monkeypatch):
    for name in ("AFTERSALES_API_KEY", "AFTERSALES_PLATFORM_API_KEY", "AFTERSALES_CARRIER_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AFTERSALES_ENVIRONMENT", "production")
    monkeypatch.setenv("AFTERSALES_CARRIER_KEY", "kd100-key-of-the-shop")
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None)
    message = str(refused.value)
    assert "AFTERSALES_API_KEY" in message and "AFTERSALES_PLATFORM_API_KEY" in message
    assert "AFTERSALES_CARRIER_KEY" not in message  # this one was set

    monkeypatch.setenv("AFTERSALES_API_KEY", "k3y-of-the-shop")
    monkeypatch.setenv("AFTERSALES_PLATFORM_API_KEY", "gateway-key-of-the-shop")
    assert Settings(_env_file=None).environment == "production"


def test_a_command_in_production_with_a_built_in_secret_stops_with_the_setting_named(tmp_path):
    """As an operator types it: no traceback, the setting named, nothing started."""
    env = {**CLEAN, "AFTERSALES_ENVIRONMENT": "production", "AFTERSALES_HOME": str(tmp_path),
           "AFTERSALES_PLATFORM_API_KEY": "gateway-key-of-the-shop", "AFTERSALES_CARRIER_KEY": "kd100-key-of-the-shop"}
    done = subprocess.run([sys.executable, "-m", "aftersales.deployments.cli", "waits", "list"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "AFTERSALES_API_KEY" in done.stderr and "built-in development value" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "var").exists()  # refused before anything was created


def test_an_unknown_environment_is_refused():
    with pytest.raises(ValidationError, match="development"):
        Settings(_env_file=None, environment="prod")
