"""Proof that an outside event came through our intake (the API, the CLI, the platform sync).

An event form (the buyer shipped, the customer agreed) resumes a run through the Prefect API, which
anyone holding its credentials can call. So our intake signs what it submits: an HMAC-SHA256, with
the installation's ``AFTERSALES_EVENT_SECRET``, over the case, the wait's key and every field of the
answer as the form will read it. The flow checks it before it believes the event
(``waits._judge``): no proof, a wrong one, one made for another wait or for other values is
refused, and the case stays where it was. A proof is good for one wait key, and a wait is answered
once, so replaying one changes nothing. Staff who enter an event by hand give their code instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from aftersales.domain.settings import get_settings

UNSIGNED = ("proof", "staff_id", "code")  # the proof itself, and the staff path's own credentials


def event_proof(case_id: str, wait_key: str, values: dict[str, Any]) -> str:
    """The proof of ``values`` (every field of the form, JSON values) as the answer to ``wait_key``."""
    return sign("event", case_id, wait_key, {name: value for name, value in values.items() if name not in UNSIGNED})


def page_signature(case_id: str, wait_key: str, values: dict[str, Any]) -> str:
    """Our approval page's signature of a staff answer (``api/approval_page.py``): the page has
    identified the person (by their link, or by their code once for a batch), so the flow takes
    this in the code's place and checks role, limit and self-approval as for a code."""
    return sign("approval-page", case_id, wait_key, {name: value for name, value in values.items() if name not in ("code", "proof")})


def carrier_signature(case_id: str, wait_key: str, values: dict[str, Any]) -> str:
    """Our push receiver's signature of a carrier event (a signed Kuaidi100 push it has verified),
    in a staff form's code: the flow takes it as the carrier's answer, on a form that allows one."""
    return sign("carrier", case_id, wait_key, {name: value for name, value in values.items() if name not in ("code", "proof")})


def signed_by_carrier(case_id: str, wait_key: str, values: dict[str, Any]) -> bool:
    return hmac.compare_digest(values.get("code") or "", carrier_signature(case_id, wait_key, values))


def signed_by_page(case_id: str, wait_key: str, values: dict[str, Any]) -> bool:
    return is_page_signature(values.get("code") or "") and hmac.compare_digest(values["code"], page_signature(case_id, wait_key, values))


def is_page_signature(code: str) -> bool:
    """A staff form's code is six digits from an app, or the approval page's 64-hex signature."""
    return len(code) == 64


def sign(purpose: str, case_id: str, wait_key: str, signed: dict[str, Any]) -> str:
    # the purpose keeps an event's proof from passing as a staff answer's signature and back
    message = json.dumps([purpose, case_id, wait_key, signed], sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    secret = get_settings().event_secret.get_secret_value().encode()
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def proven(case_id: str, wait_key: str, values: dict[str, Any]) -> bool:
    """Does ``values["proof"]`` prove these values for this wait?"""
    return hmac.compare_digest(values.get("proof") or "", event_proof(case_id, wait_key, values))


def complete(values: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The answer as the form will read it: every field the schema declares, a missing one at its
    default, so the intake signs what the flow will check."""
    filled = dict(values)
    for name, prop in (schema.get("properties") or {}).items():
        if name not in filled and "default" in prop:
            filled[name] = prop["default"]
    return filled
