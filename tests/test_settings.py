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
    for name in ("AFTERSALES_API_KEY", "AFTERSALES_PLATFORM_API_KEY", "AFTERSALES_CARRIER_KEY", "AFTERSALES_EVENT_SECRET",
                 "AFTERSALES_CARRIER_PUSH_SALT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AFTERSALES_ENVIRONMENT", "production")
    monkeypatch.setenv("AFTERSALES_CARRIER_KEY", "kd100-key-of-the-shop")
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None)
    message = str(refused.value)
    assert "AFTERSALES_API_KEY" in message and "AFTERSALES_PLATFORM_API_KEY" in message and "AFTERSALES_EVENT_SECRET" in message
    assert "AFTERSALES_CARRIER_PUSH_SALT" in message  # the pushes' salt is a secret like the others
    assert "AFTERSALES_CARRIER_KEY" not in message  # this one was set

    monkeypatch.setenv("AFTERSALES_API_KEY", "k3y-of-the-shop")
    monkeypatch.setenv("AFTERSALES_EVENT_SECRET", "event-secret-of-the-shop")
    monkeypatch.setenv("AFTERSALES_PLATFORM_API_KEY", "gateway-key-of-the-shop")
    monkeypatch.setenv("AFTERSALES_CARRIER_PUSH_SALT", "salt-of-the-shop")
    assert Settings(_env_file=None).environment == "production"


def test_a_command_in_production_with_a_built_in_secret_stops_with_the_setting_named(tmp_path):
    """As an operator types it: no traceback, the setting named, nothing started."""
    env = {**CLEAN, "AFTERSALES_ENVIRONMENT": "production", "AFTERSALES_HOME": str(tmp_path),
           "AFTERSALES_PLATFORM_API_KEY": "gateway-key-of-the-shop", "AFTERSALES_CARRIER_KEY": "kd100-key-of-the-shop",
           "AFTERSALES_EVENT_SECRET": "event-secret-of-the-shop", "AFTERSALES_CARRIER_PUSH_SALT": "salt-of-the-shop"}
    done = subprocess.run([sys.executable, "-m", "aftersales.deployments.cli", "waits", "list"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "AFTERSALES_API_KEY" in done.stderr and "built-in development value" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "var").exists()  # refused before anything was created


def test_an_unknown_environment_is_refused():
    with pytest.raises(ValidationError, match="development"):
        Settings(_env_file=None, environment="prod")


PRODUCTION_KEYS = {"AFTERSALES_ENVIRONMENT": "production", "AFTERSALES_API_KEY": "k3y-of-the-shop",
                   "AFTERSALES_PLATFORM_API_KEY": "gateway-key-of-the-shop", "AFTERSALES_CARRIER_KEY": "kd100-key-of-the-shop",
                   "AFTERSALES_EVENT_SECRET": "event-secret-of-the-shop", "AFTERSALES_CARRIER_PUSH_SALT": "salt-of-the-shop"}


def test_production_without_the_prefect_credentials_stops_naming_them(tmp_path):
    """Production makes no password up: a command without PREFECT_API_AUTH_STRING (or the file)
    stops before it talks to anyone, naming both; with the file it goes on."""
    env = {**CLEAN, **PRODUCTION_KEYS, "AFTERSALES_HOME": str(tmp_path), "AFTERSALES_PREFECT_API_URL": "http://127.0.0.1:9/api"}
    command = [sys.executable, "-c", "import aftersales.deployments, os; print(os.environ['PREFECT_API_AUTH_STRING'])"]
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout
    assert "PREFECT_API_AUTH_STRING" in done.stderr and str(tmp_path / "var" / "prefect-auth") in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "var" / "prefect-auth").exists()

    (tmp_path / "var" / "prefect-auth").write_text("ops:s3cret-of-the-shop\n", encoding="utf-8")
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.strip()) == (0, "ops:s3cret-of-the-shop"), done.stderr


def test_development_writes_the_prefect_credentials_once_for_this_user_only(tmp_path):
    """A fresh checkout: the first command writes var/prefect-auth (mode 600); the next reads the same."""
    env = {**CLEAN, "AFTERSALES_HOME": str(tmp_path)}
    command = [sys.executable, "-c", "import aftersales.deployments, os; print(os.environ['PREFECT_SERVER_API_AUTH_STRING'])"]
    first = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    second = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    written = (tmp_path / "var" / "prefect-auth").read_text(encoding="utf-8").strip()
    assert first.stdout.strip() == second.stdout.strip() == written and written.startswith("aftersales:")
    assert (tmp_path / "var" / "prefect-auth").stat().st_mode & 0o777 == 0o600


def test_a_plain_http_prefect_api_gets_the_one_root_ca_file_and_https_keeps_prefects_default(tmp_path):
    """Every Prefect client loads its CA file (about a dozen per flow run): on plain http, where
    nothing is verified, the installation points it at a one-root file; an https API (ours or set
    by the operator) is verified with Prefect's default, and an operator's own file always wins."""
    from aftersales.domain.settings import PLAIN_HTTP_API_CA

    command = [sys.executable, "-c", "import aftersales.deployments, os, prefect.settings as s; "
               "print(os.environ.get('PREFECT_API_SSL_CERT_FILE'), s.PREFECT_API_SSL_CERT_FILE.value())"]

    def cert_file(**env) -> list[str]:
        done = subprocess.run(command, env={**CLEAN, "AFTERSALES_HOME": str(tmp_path), **env}, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert cert_file() == [str(PLAIN_HTTP_API_CA)] * 2  # make run's http://127.0.0.1:4200/api
    assert cert_file(PREFECT_API_URL="https://prefect.shop.example/api") == ["None", "None"]
    assert cert_file(AFTERSALES_PREFECT_API_URL="https://prefect.shop.example/api") == ["None", "None"]
    assert cert_file(PREFECT_API_SSL_CERT_FILE="/etc/ssl/shop-ca.pem") == ["/etc/ssl/shop-ca.pem"] * 2
    import ssl

    ssl.create_default_context(cafile=str(PLAIN_HTTP_API_CA))  # a CA file Python's ssl accepts
