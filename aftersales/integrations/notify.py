"""Notifications: message templates, the outbox, and delivery through Apprise.

A flow never sends a message itself. It writes an ``OutboxMessage`` with ``enqueue`` in the same
transaction as the case event that caused it, so the message exists exactly when the event does.
``deliver_pending`` (run on a schedule or right after the flow step) sends what is due: staff
messages to tagged channels of an Apprise config, buyer messages to the buyer's own channel. A
channel that is down delays a message (retries with backoff), never loses it (a message that
runs out of attempts is kept as 'dead' and can be requeued), and never blocks the case (no
delivery error reaches the flow).

Delivery is at least once: a process that dies between sending and recording the result leaves
the message 'sending', and it is sent again once its 10-minute claim runs out.

Privacy (rulebook §4): staff texts are rendered from masked context (138****5678), buyer texts are
not masked (it is their own data), and Apprise's log records are masked.
"""

from __future__ import annotations

import logging
import string
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import apprise
import yaml
from sqlalchemy import update
from sqlmodel import Session, col, select

from aftersales.domain.calendar import utcnow
from aftersales.domain.masking import (
    MaskingFilter,
    mask_address,
    mask_contact,
    mask_email,
    mask_phone,
    mask_text,
)
from aftersales.domain.models import OutboxMessage
from aftersales.domain.settings import get_settings
from aftersales.integrations.db import session_scope

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATES_FILE = TEMPLATES_DIR / "messages.yml"  # the shared ones; each process may add <process>.yml
STAFF, CUSTOMER = "staff", "customer"
AUDIENCES = (STAFF, CUSTOMER)
CHINESE, ENGLISH = "zh-CN", "en"
LANGUAGES = (CHINESE, ENGLISH)

PENDING, SENDING, SENT, DEAD = "pending", "sending", "sent", "dead"
# A claimed message is ours for this long; a process that dies while sending gives it back
# when the claim runs out.
CLAIM_TIMEOUT = timedelta(minutes=10)
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)

# Column sizes of OutboxMessage.
_MAX_KEY, _MAX_SUBJECT, _MAX_BODY, _MAX_ERROR = 160, 300, 4000, 1000


# =================================================================================================
# Templates
# =================================================================================================


class TemplateError(ValueError):
    """A message template is unknown, incomplete, or lacks a placeholder value."""


@dataclass(frozen=True)
class _Text:
    subject: str
    body: str


@dataclass(frozen=True)
class MessageTemplate:
    id: str
    texts: Mapping[str, Mapping[str, _Text]]  # audience → language → text
    staff_tags: tuple[str, ...] = ()  # default staff channels

    def text(self, audience: str, language: str) -> _Text:
        if audience not in self.texts:
            raise TemplateError(
                f"message template {self.id!r} has no {audience!r} text "
                f"(it has: {', '.join(self.texts)})"
            )
        return self.texts[audience][language]


@dataclass(frozen=True)
class _Catalog:
    templates: Mapping[str, MessageTemplate]
    # placeholder → code → language → text, e.g. reason → bad_code → zh-CN → 一次性验证码错误…
    phrases: Mapping[str, Mapping[str, Mapping[str, str]]]

    def template(self, template_id: str) -> MessageTemplate:
        try:
            return self.templates[template_id]
        except KeyError:
            raise TemplateError(
                f"unknown message template {template_id!r} "
                f"(known: {', '.join(sorted(self.templates))})"
            ) from None


@lru_cache
def _catalog(directory: Path = TEMPLATES_DIR) -> _Catalog:
    """Every template file in the folder; a template id defined twice is an error."""
    templates: dict[str, MessageTemplate] = {}
    phrases: dict[str, dict[str, Mapping[str, str]]] = {}
    for path in sorted(directory.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for template_id, spec in (data.get("templates") or {}).items():
            if template_id in templates:
                raise TemplateError(f"message template {template_id!r} is defined twice (again in {path.name})")
            templates[template_id] = _parse_template(template_id, spec)
        for placeholder, codes in (data.get("phrases") or {}).items():
            merged = phrases.setdefault(placeholder, {})
            merged.update({_phrase_code(code): texts for code, texts in codes.items()})
    return _Catalog(templates, phrases)


def preload() -> None:
    """Load once what every delivery needs, for a process that forks flow runs (warm_start.py): the
    message catalog, and Apprise's channel plugins (Apprise imports them all at the first URL it is
    given: about 0.2 CPU-seconds a process)."""
    from apprise.manager_plugins import NotificationManager

    _catalog()
    NotificationManager().load_modules()


def _parse_template(template_id: str, spec: Mapping[str, Any]) -> MessageTemplate:
    texts: dict[str, dict[str, _Text]] = {}
    for audience in AUDIENCES:
        if audience not in spec:
            continue
        texts[audience] = {}
        for language in LANGUAGES:
            text = (spec[audience] or {}).get(language) or {}
            if not text.get("subject") or not text.get("body"):
                raise TemplateError(
                    f"message template {template_id!r} ({audience}) needs a {language} "
                    f"subject and body in {TEMPLATES_DIR.name}/"
                )
            texts[audience][language] = _Text(str(text["subject"]), str(text["body"]))
    if not texts:
        raise TemplateError(f"message template {template_id!r} has neither staff nor customer text")
    tags = tuple((spec.get(STAFF) or {}).get("tags") or ())
    return MessageTemplate(template_id, texts, tags)


def template_ids() -> list[str]:
    return sorted(_catalog().templates)


def default_staff_tags(template_id: str) -> tuple[str, ...]:
    """The staff channels a template goes to when the caller names none (may be empty)."""
    return _catalog().template(template_id).staff_tags


def placeholders(template_id: str, audience: str) -> set[str]:
    """The context names a template's text for ``audience`` needs (both languages)."""
    template = _catalog().template(template_id)
    needed: set[str] = set()
    for language in LANGUAGES:
        text = template.text(audience, language)
        needed |= _fields(text.subject) | _fields(text.body)
    return needed


def normalize_language(language: str | None) -> str:
    """The buyer's language setting → one we write in: ``en`` for any English, else zh-CN."""
    if language and language.replace("_", "-").lower().split("-")[0] == "en":
        return ENGLISH
    return CHINESE


def render(template_id: str, language: str, audience: str, /, **context: Any) -> tuple[str, str]:
    """Render a message → ``(subject, body)``.

    Staff messages are Chinese first with the English text below, whatever ``language`` says;
    the buyer's phone, address and email in ``context`` are masked first. Customer messages are
    in the buyer's language (zh-CN unless English) and not masked.
    """
    if audience not in AUDIENCES:
        raise TemplateError(f"unknown audience {audience!r} (use 'staff' or 'customer')")
    catalog = _catalog()
    template = catalog.template(template_id)
    if audience == STAFF:
        values = {name: _display(value) for name, value in mask_customer_data(context).items()}
        chinese = _fill(template, STAFF, CHINESE, values, catalog)
        english = _fill(template, STAFF, ENGLISH, values, catalog)
        subject = f"{chinese.subject} / {english.subject}"
        body = f"{chinese.body}\n\n—— English ——\n{english.body}"
        return subject, body
    values = {name: _display(value) for name, value in context.items()}
    text = _fill(template, CUSTOMER, normalize_language(language), values, catalog)
    return text.subject, text.body


def mask_customer_data(context: Mapping[str, Any]) -> dict[str, Any]:
    """Mask the buyer's data for staff eyes, judged by the placeholder's name.

    ``customer_phone``/``mobile``/``tel`` → phone mask, ``*email*`` → email mask, ``*address*``
    → region only, ``*contact*`` → phone or email mask; any other text still has phones and
    emails masked (a reason often quotes the buyer: “请联系我 13812345678”).
    """
    masked: dict[str, Any] = {}
    for name, value in context.items():
        if value is None or isinstance(value, (int, float, Decimal, datetime)):
            masked[name] = value  # numbers and times carry no contact data
            continue
        value = str(value)  # lists, dicts: whatever ends up in the text is masked
        words = set(name.lower().split("_"))
        if words & {"email", "mail"}:
            masked[name] = mask_email(value)
        elif words & {"phone", "mobile", "tel", "telephone"}:
            masked[name] = mask_phone(value)
        elif "address" in words:
            masked[name] = mask_address(value)
        elif "contact" in words:
            masked[name] = mask_contact(value)
        else:
            masked[name] = mask_text(value)
    return masked


def flow_run_link(flow_run_id: str | None) -> str:
    """The Prefect UI page of a flow run: where a staff member finds the Resume form."""
    base = get_settings().ui_url.rstrip("/")
    return f"{base}/runs/flow-run/{flow_run_id}" if flow_run_id else base


def _fill(
    template: MessageTemplate, audience: str, language: str, values: Mapping[str, Any],
    catalog: _Catalog,
) -> _Text:
    text = template.text(audience, language)
    missing = sorted((_fields(text.subject) | _fields(text.body)) - set(values))
    if missing:
        raise TemplateError(
            f"message template {template.id!r} ({audience}, {language}) needs "
            + ", ".join(repr(name) for name in missing)
            + " — not given"
        )
    in_language = {name: _phrase(catalog, name, value, language) for name, value in values.items()}
    return _Text(text.subject.format_map(in_language), text.body.format_map(in_language))


def _fields(text: str) -> set[str]:
    """Placeholder names in a str.format text ({order_id} → order_id; {a.b}/{a[0]} → a)."""
    names = set()
    for _literal, field, _spec, _conversion in string.Formatter().parse(text):
        if field:
            names.add(field.split(".")[0].split("[")[0])
    return names


def _phrase(catalog: _Catalog, name: str, value: Any, language: str) -> Any:
    """A known code (reason='bad_code') becomes the sentence in the message's language."""
    codes = catalog.phrases.get(name)
    if not codes or not isinstance(value, str):
        return value
    texts = codes.get(_phrase_code(value))
    return texts.get(language, value) if texts else value


def _phrase_code(code: str) -> str:
    return str(code).strip().lower().replace("-", "_")


def _display(value: Any) -> Any:
    """How a value reads in a message: times in the shop's time zone, money with two decimals."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise TemplateError(f"naive datetime {value!r}: pass timezone-aware times")
        local = value.astimezone(get_settings().tz)
        offset = local.strftime("%z")
        return f"{local:%Y-%m-%d %H:%M} (UTC{offset[:3]}:{offset[3:]})"
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if value is None or (isinstance(value, str) and not value.strip()):
        return "—"  # an empty field reads as “none”, not as a sentence cut short
    return value


# =================================================================================================
# The outbox: writing
# =================================================================================================


def enqueue(
    session: Session,
    *,
    case_id: str,
    key: str,
    audience: str,
    template: str,
    context: Mapping[str, Any],
    tags: list[str] | tuple[str, ...] | str | None = None,
    to_url: str | None = None,
    language: str = CHINESE,
) -> OutboxMessage:
    """Write a pending message in the caller's session, in the caller's transaction.

    ``key`` makes it idempotent: a replayed step (flow resumed, task retried) finds the message
    already written and gets that row back; nothing is inserted twice and no IntegrityError
    leaks into the caller's transaction. Staff messages go to ``tags`` (default: the template's),
    customer messages to ``to_url`` (see ``customer_url``). The text is rendered now, so it says
    what was true when the event happened, and a template mistake fails the step loudly.
    """
    if len(key) > _MAX_KEY:
        raise ValueError(f"outbox key longer than {_MAX_KEY} characters: {key!r}")
    staff_tags, channel_url, language = _addressing(audience, template, tags, to_url, language)
    subject, body = render(template, language, audience, **{"case_id": case_id, **context})
    message = OutboxMessage(
        key=key,
        case_id=case_id,
        audience=audience,
        tags=",".join(staff_tags),
        to_url=channel_url,
        language=language,
        subject=_clip(subject, _MAX_SUBJECT),
        body=_clip(body, _MAX_BODY),
        next_attempt_at=utcnow(),
    )
    # The case row the caller just added must exist before our foreign key points at it.
    session.flush()
    _insert_unless_key_exists(session, message)
    return session.exec(select(OutboxMessage).where(OutboxMessage.key == key)).one()


def customer_url(customer: Any) -> str:
    """The buyer's own channel, from ``settings.customer_notify_url``.

    ``customer`` is a mapping or an object (the platform's ``Customer``, or ``case.details
    ["customer"]``) with ``customer_id`` (or ``id``) and some of ``contact``, ``email``, ``phone``.
    The URL template may use ``{customer_id}``, ``{email}``, ``{phone}`` and ``{contact}`` (an
    explicit contact, else the email, else the phone), e.g. ``json://…/sandbox/messages/
    {customer_id}`` or ``mailto://shop:pw@smtp.example.com?to={contact}``.
    """
    url_template = get_settings().customer_notify_url
    email, phone = _attribute(customer, "email"), _attribute(customer, "phone")
    values = {
        "customer_id": _attribute(customer, "customer_id") or _attribute(customer, "id"),
        "email": email,
        "phone": phone,
        "contact": _attribute(customer, "contact") or email or phone,
    }
    needed = _fields(url_template)
    unknown = needed - set(values)
    if unknown:
        raise ValueError(f"customer_notify_url uses unknown placeholder(s) {sorted(unknown)}")
    missing = sorted(name for name in needed if not values[name])
    if missing:
        who = values["customer_id"] or "a customer"
        raise ValueError(f"{who} has no {', '.join(missing)} for customer_notify_url")
    # Quoted so a contact cannot change the URL's shape; '@' and '+' stay readable in emails.
    return url_template.format(**{k: quote(str(v or ""), safe="@+") for k, v in values.items()})


def _addressing(
    audience: str, template: str, tags: Any, to_url: str | None, language: str
) -> tuple[list[str], str, str]:
    if audience == STAFF:
        staff_tags = _tag_list(tags) or list(default_staff_tags(template))
        if not staff_tags:
            raise ValueError(f"staff message {template!r} needs tags: whom is it for?")
        return staff_tags, "", CHINESE  # staff read Chinese first, English alongside
    if audience == CUSTOMER:
        if not to_url:
            raise ValueError(f"customer message {template!r} needs to_url (see customer_url)")
        return [], to_url, normalize_language(language)
    raise ValueError(f"unknown audience {audience!r} (use 'staff' or 'customer')")


def _insert_unless_key_exists(session: Session, message: OutboxMessage) -> None:
    row = message.model_dump(exclude={"id"})
    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        # ON CONFLICT DO NOTHING: a concurrent writer of the same key waits for ours and then
        # does nothing, inside the caller's transaction, without aborting it.
        statement = insert(OutboxMessage.__table__).values(**row)
        session.execute(statement.on_conflict_do_nothing(index_elements=["key"]))
        return
    # Other databases: a savepoint keeps a duplicate from spoiling the caller's transaction.
    from sqlalchemy.exc import IntegrityError

    exists = session.exec(select(OutboxMessage.id).where(OutboxMessage.key == message.key)).first()
    if exists is None:
        try:
            with session.begin_nested():
                session.add(OutboxMessage(**row))
        except IntegrityError:
            pass


def _tag_list(tags: Any) -> list[str]:
    if not tags:
        return []
    if isinstance(tags, str):
        tags = tags.split(",")
    return [str(tag).strip() for tag in tags if str(tag).strip()]


def _attribute(thing: Any, name: str) -> Any:
    if isinstance(thing, Mapping):
        return thing.get(name)
    return getattr(thing, name, None)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# =================================================================================================
# The outbox: delivering
# =================================================================================================


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0  # back to pending, will be tried again
    dead: int = 0  # out of attempts this round (kept; see requeue_dead)


@dataclass(frozen=True)
class _Outcome:
    error: str = ""  # empty: delivered everywhere
    owed_tags: tuple[str, ...] = ()  # staff tags still to deliver to after a partial failure

    @property
    def delivered(self) -> bool:
        return not self.error


def deliver_pending(
    *, case_id: str | None = None, limit: int = 100, now: datetime | None = None
) -> DeliveryReport:
    """Send the messages that are due; never raises because a channel is down.

    Due: pending with ``next_attempt_at <= now``, or stuck 'sending' past its claim. Each message
    is claimed with a conditional UPDATE before sending, so two processes never send the same
    message; the claim, the sending and the result are separate short transactions, so no
    database lock is held while a channel is slow.
    """
    now = now or utcnow()
    settings = get_settings()
    staff_channels = _StaffChannels(Path(settings.apprise_config))
    report = DeliveryReport()
    # Staff tags whose channel failed in this round: their other messages wait for the next
    # round instead of each spending an attempt (and a connect timeout) on the same outage.
    down_tags: set[str] = set()
    for message_id, audience, tags in _due_messages(now, case_id, limit):
        if audience == STAFF and down_tags and set(_tag_list(tags)) <= down_tags:
            continue
        message = _claim(message_id, now)
        if message is None:
            continue  # another process got it first
        outcome = _send(message, staff_channels)
        _record(message, outcome, now, settings.outbox_max_attempts, report)
        if audience == STAFF and not outcome.delivered:
            down_tags |= set(outcome.owed_tags or _tag_list(message.tags))
    return report


def requeue_dead(case_id: str | None = None, *, now: datetime | None = None) -> int:
    """Give dead messages a fresh set of attempts (after a channel is fixed). Returns how many.

    ``last_error`` stays as a record of why they died until the next attempt overwrites it.
    """
    statement = update(OutboxMessage).where(col(OutboxMessage.status) == DEAD)
    if case_id is not None:
        statement = statement.where(col(OutboxMessage.case_id) == case_id)
    statement = statement.values(status=PENDING, attempts=0, next_attempt_at=now or utcnow())
    with session_scope() as session:
        return session.execute(statement.execution_options(synchronize_session=False)).rowcount


def retry_delay(attempts: int) -> timedelta:
    """30 s after the first failure, doubling each time, at most an hour."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LONGEST_RETRY)


def _due_messages(now: datetime, case_id: str | None, limit: int) -> list[tuple[int, str, str]]:
    """(id, audience, tags) of the messages due, oldest first."""
    query = (
        select(OutboxMessage.id, OutboxMessage.audience, OutboxMessage.tags)
        .where(col(OutboxMessage.status).in_((PENDING, SENDING)))
        .where(col(OutboxMessage.next_attempt_at) <= now)
        .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
        .limit(limit)
    )
    if case_id is not None:
        query = query.where(col(OutboxMessage.case_id) == case_id)
    with session_scope() as session:
        return [tuple(row) for row in session.exec(query).all()]


def _claim(message_id: int, now: datetime) -> OutboxMessage | None:
    """Take the message if it is still due; the claim itself moves it out of everyone's reach.

    Setting ``next_attempt_at`` to the claim's end does double duty: other processes no longer
    see the message as due, and a claim left behind by a dead process expires on its own.
    """
    statement = (
        update(OutboxMessage)
        .where(col(OutboxMessage.id) == message_id)
        .where(col(OutboxMessage.status).in_((PENDING, SENDING)))
        .where(col(OutboxMessage.next_attempt_at) <= now)
        .values(status=SENDING, next_attempt_at=now + CLAIM_TIMEOUT)
        .execution_options(synchronize_session=False)
    )
    with session_scope() as session:
        if session.execute(statement).rowcount != 1:
            return None
        return session.get(OutboxMessage, message_id)


def _record(
    message: OutboxMessage, outcome: _Outcome, now: datetime, max_attempts: int,
    report: DeliveryReport,
) -> None:
    attempts = message.attempts + 1
    if outcome.delivered:
        values: dict[str, Any] = {"status": SENT, "sent_at": now, "attempts": attempts, "last_error": ""}
        report.sent += 1
    elif attempts >= max_attempts:
        values = {"status": DEAD, "attempts": attempts, "last_error": outcome.error, "next_attempt_at": now}
        report.dead += 1
        log.error("outbox message %s (case %s) is dead after %d attempts: %s",
                  message.key, message.case_id, attempts, outcome.error)
    else:
        retry_at = now + retry_delay(attempts)
        values = {"status": PENDING, "attempts": attempts, "last_error": outcome.error,
                  "next_attempt_at": retry_at}
        report.failed += 1
        log.warning("outbox message %s (case %s) not delivered (attempt %d of %d), retry at %s: %s",
                    message.key, message.case_id, attempts, max_attempts, retry_at.isoformat(),
                    outcome.error)
    if outcome.owed_tags:
        values["tags"] = ",".join(outcome.owed_tags)  # the tags that already got it are done
    statement = (
        update(OutboxMessage)
        .where(col(OutboxMessage.id) == message.id)
        .where(col(OutboxMessage.status) == SENDING)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    with session_scope() as session:
        session.execute(statement)


def _send(message: OutboxMessage, staff_channels: _StaffChannels) -> _Outcome:
    try:
        if message.audience == STAFF:
            return _send_to_staff(message, staff_channels)
        return _send_to_customer(message)
    except Exception as exc:  # whatever a channel does, the caller carries on
        return _Outcome(error=_error_text(f"{type(exc).__name__}: {exc}"))


def _send_to_staff(message: OutboxMessage, staff_channels: _StaffChannels) -> _Outcome:
    """One notify per tag, so a retry after a partial failure only goes to the tags still owed."""
    tags = _tag_list(message.tags)
    if not tags:
        return _Outcome(error="staff message without tags")
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
        return _Outcome()
    delivered = [tag for tag in tags if tag not in failures]
    error = "; ".join(f"{tag}: {why}" for tag, why in failures.items())
    if delivered:
        error = f"delivered to {', '.join(delivered)}; failed {error}"
    return _Outcome(error=_error_text(error), owed_tags=tuple(failures) if delivered else ())


def _send_to_customer(message: OutboxMessage) -> _Outcome:
    channel = apprise.Apprise(asset=_asset())
    if not channel.add(message.to_url):
        scheme = message.to_url.split("://", 1)[0] if "://" in message.to_url else "?"
        return _Outcome(error=f"the buyer's channel URL is not valid (scheme {scheme!r})")
    with _apprise_warnings() as warnings:
        result = channel.notify(body=message.body, title=message.subject,
                                body_format=apprise.NotifyFormat.TEXT)
    if result:
        return _Outcome()
    return _Outcome(error=_error_text("; ".join(warnings) or "the buyer's channel refused the message"))


class _StaffChannels:
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
    return _clip(mask_text(error), _MAX_ERROR)


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
