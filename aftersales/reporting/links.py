"""Links the reports hand out: where people reach our HTTP app, and the key that signs
satisfaction links (both from the one settings class, ``domain/settings.py``)."""

from __future__ import annotations

import hashlib
import hmac

from aftersales.domain.settings import get_settings


def api_public_url() -> str:
    return get_settings().public_url


def satisfaction_key() -> bytes:
    settings = get_settings()
    secret = settings.satisfaction_secret
    if secret is not None and secret.get_secret_value():
        return secret.get_secret_value().encode()
    return hmac.new(settings.api_key.get_secret_value().encode(), b"aftersales-satisfaction-link", hashlib.sha256).digest()
