"""The outbox: a message is written with ``enqueue`` in the same transaction as the case event
that caused it, and ``deliver_pending`` sends what is due, at least once, with backoff; a message
that runs out of attempts is kept as 'dead' and can be requeued."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import update
from sqlmodel import Session, col, select

from aftersales.domain.calendar import utcnow
from aftersales.domain.models import OutboxMessage
from aftersales.domain.settings import get_settings
from aftersales.integrations.db import session_scope
from aftersales.integrations.notify.channels import Outcome, StaffChannels, send, tag_list
from aftersales.integrations.notify.taobao import refund_url
from aftersales.integrations.notify.templates import CHINESE, CUSTOMER, STAFF, clip, default_staff_tags, fields_of, normalize_language, render

log = logging.getLogger(__name__)

PENDING, SENDING, SENT, DEAD = "pending", "sending", "sent", "dead"
# A claimed message is ours for this long; a process that dies while sending gives it back
# when the claim runs out.
CLAIM_TIMEOUT = timedelta(minutes=10)
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)

# Column sizes of OutboxMessage.
_MAX_KEY, _MAX_SUBJECT, _MAX_BODY = 160, 300, 4000


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
    or with ``to_url`` to one person's own channel; customer messages to ``to_url`` (see
    ``customer_url``). The text is rendered now, so it says
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
        subject=clip(subject, _MAX_SUBJECT),
        body=clip(body, _MAX_BODY),
        next_attempt_at=utcnow(),
    )
    # The case row the caller just added must exist before our foreign key points at it.
    session.flush()
    _insert_unless_key_exists(session, message)
    return session.exec(select(OutboxMessage).where(OutboxMessage.key == key)).one()


def buyer_url(details: Any) -> str:
    """A case's buyer channel, from its details: on the refund for a refund applied for on
    Taobao/Tmall (``platform_refund_id``; TOP encrypts the buyer's phone and the refund's messages
    are where they read the seller), else ``customer_url`` of its customer."""
    refund_id = getattr(details, "platform_refund_id", None)
    return refund_url(refund_id) if refund_id else customer_url(getattr(details, "customer", None) or {})


def customer_url(customer: Any) -> str:
    """The buyer's own channel, from ``settings.customer_notify_url``.

    ``customer`` is a mapping or an object (the platform's ``Customer``, or a case's
    ``details.Customer``) with ``customer_id`` (or ``id``) and some of ``contact``, ``email``, ``phone``.
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
    needed = fields_of(url_template)
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
    if audience == STAFF and to_url:
        return [], to_url, CHINESE  # one person's own channel (their approval link)
    if audience == STAFF:
        staff_tags = tag_list(tags) or list(default_staff_tags(template))
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


def _attribute(thing: Any, name: str) -> Any:
    if isinstance(thing, Mapping):
        return thing.get(name)
    return getattr(thing, name, None)


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0  # back to pending, will be tried again
    dead: int = 0  # out of attempts this round (kept; see requeue_dead)


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
    staff_channels = StaffChannels(Path(settings.apprise_config))
    report = DeliveryReport()
    # Staff tags whose channel failed in this round: their other messages wait for the next
    # round instead of each spending an attempt (and a connect timeout) on the same outage.
    down_tags: set[str] = set()
    for message_id, audience, tags in _due_messages(now, case_id, limit):
        if audience == STAFF and down_tags and tag_list(tags) and set(tag_list(tags)) <= down_tags:
            continue
        message = _claim(message_id, now)
        if message is None:
            continue  # another process got it first
        outcome = send(message, staff_channels)
        _record(message, outcome, now, settings.outbox_max_attempts, report)
        if audience == STAFF and not outcome.delivered:
            down_tags |= set(outcome.owed_tags or tag_list(message.tags))
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
    message: OutboxMessage, outcome: Outcome, now: datetime, max_attempts: int,
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
