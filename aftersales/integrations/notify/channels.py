"""Delivery through Apprise: staff messages to the tagged channels of the Apprise config (or to a
person's own channel: their approval link), buyer messages to the buyer's own channel; Apprise's log masked and its warnings kept as the reason a
delivery failed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apprise

from aftersales.domain.masking import MaskingFilter, mask_text
from aftersales.domain.models import OutboxMessage
from aftersales.integrations.notify.taobao import SCHEME as TAOBAO_REFUND
from aftersales.integrations.notify.templates import STAFF, clip


MAX_ERROR = 1000  # column size of OutboxMessage.last_error
OWN_SCHEMES = (TAOBAO_REFUND,)  # Apprise channels of our own, registered with Apprise by importing their module


def tag_list(tags: Any) -> list[str]:
    if not tags:
        return []
    if isinstance(tags, str):
        tags = tags.split(",")
    return [str(tag).strip() for tag in tags if str(tag).strip()]


@dataclass(frozen=True)
class Outcome:
    error: str = ""  # empty: delivered everywhere
    owed_tags: tuple[str, ...] = ()  # staff tags still to deliver to after a partial failure

    @property
    def delivered(self) -> bool:
        return not self.error


def send(message: OutboxMessage, staff_channels: StaffChannels) -> Outcome:
    try:
        if message.audience == STAFF and not message.to_url:
            return _send_to_staff(message, staff_channels)
        return _send_to_one(message)
    except Exception as exc:  # whatever a channel does, the caller carries on
        return Outcome(error=_error_text(f"{type(exc).__name__}: {exc}"))


def _send_to_staff(message: OutboxMessage, staff_channels: StaffChannels) -> Outcome:
    """One notify per tag, so a retry after a partial failure only goes to the tags still owed."""
    tags = tag_list(message.tags)
    if not tags:
        return Outcome(error="staff message without tags")
    channels = staff_channels.load()
    failures: dict[str, str] = {}
    for tag in tags:
        with _apprise_warnings() as warnings:
            result = channels.notify(body=message.body, title=message.subject, tag=tag,
                                     body_format=apprise.NotifyFormat.TEXT)
        if result is None:
            failures[tag] = f"no staff channel tagged {tag!r} in {staff_channels.path}"
        elif not result:
            failures[tag] = "; ".join(warnings) or "the channel refused the message"
    if not failures:
        return Outcome()
    delivered = [tag for tag in tags if tag not in failures]
    error = "; ".join(f"{tag}: {why}" for tag, why in failures.items())
    if delivered:
        error = f"delivered to {', '.join(delivered)}; failed {error}"
    return Outcome(error=_error_text(error), owed_tags=tuple(failures) if delivered else ())


def _send_to_one(message: OutboxMessage) -> Outcome:
    """To one person's own channel: the buyer's, or a staff member's (their approval link)."""
    whose = "the staff member's" if message.audience == STAFF else "the buyer's"
    channel = apprise.Apprise(asset=_asset())
    if not channel.add(message.to_url):
        scheme = message.to_url.split("://", 1)[0] if "://" in message.to_url else "?"
        return Outcome(error=f"{whose} channel URL is not valid (scheme {scheme!r})")
    with _apprise_warnings() as warnings:
        result = channel.notify(body=message.body, title=message.subject,
                                body_format=apprise.NotifyFormat.TEXT)
    if result:
        return Outcome()
    return Outcome(error=_error_text("; ".join(warnings) or f"{whose} channel refused the message"))


class StaffChannels:
    """The staff channels of the Apprise YAML config, read once per delivery round.

    Read per round rather than per process so an edited config takes effect without a restart.
    """

    def __init__(self, path: Path):
        self.path = path
        self._channels: apprise.Apprise | None = None

    def load(self) -> apprise.Apprise:
        if self._channels is None:
            if not self.path.is_file():
                raise FileNotFoundError(f"staff channel config {self.path} not found")
            config = apprise.AppriseConfig(asset=_asset())
            config.add(str(self.path))
            channels = apprise.Apprise(asset=_asset())
            channels.add(config)
            self._channels = channels
        return self._channels


def _asset() -> apprise.AppriseAsset:
    # Synchronous sending keeps Apprise's warnings in our thread, where _apprise_warnings
    # collects them for last_error.
    return apprise.AppriseAsset(async_mode=False)


def _error_text(error: str) -> str:
    return clip(mask_text(error), MAX_ERROR)


# --- Apprise's log: masked, and its warnings kept as the reason a delivery failed --------------


class _WarningsOfThisThread(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self._local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        collected = getattr(self._local, "collected", None)
        if collected is not None:
            collected.append(record.getMessage())

    @contextmanager
    def collect(self) -> Iterator[list[str]]:
        self._local.collected = []
        try:
            yield self._local.collected
        finally:
            self._local.collected = None


def _watch_apprise_log() -> _WarningsOfThisThread:
    apprise_log = logging.getLogger("apprise")
    # Apprise logs payloads at debug level; a buyer's message may hold their phone or email.
    if not any(isinstance(f, MaskingFilter) for f in apprise_log.filters):
        apprise_log.addFilter(MaskingFilter())
    for handler in apprise_log.handlers:
        if isinstance(handler, _WarningsOfThisThread):
            return handler
    handler = _WarningsOfThisThread()
    apprise_log.addHandler(handler)
    return handler


_APPRISE_WARNINGS = _watch_apprise_log()
_apprise_warnings = _APPRISE_WARNINGS.collect
