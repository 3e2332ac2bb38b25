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

By job: ``templates.py`` (catalog, languages, rendering), ``outbox.py`` (writing and delivering the
outbox), ``channels.py`` (Apprise: staff tags, the buyer's channel, Apprise's log), ``taobao.py``
(a Taobao/Tmall buyer's channel: the refund's messages).
"""

from aftersales.integrations.notify.templates import (
    TEMPLATES_DIR,
    TEMPLATES_FILE,
    STAFF,
    CUSTOMER,
    AUDIENCES,
    CHINESE,
    ENGLISH,
    LANGUAGES,
    TemplateError,
    MessageTemplate,
    preload,
    template_ids,
    default_staff_tags,
    placeholders,
    normalize_language,
    render,
    mask_customer_data,
    flow_run_link,
    fields_of,
    clip,
)
from aftersales.integrations.notify.outbox import (
    PENDING,
    SENDING,
    SENT,
    DEAD,
    CLAIM_TIMEOUT,
    FIRST_RETRY,
    LONGEST_RETRY,
    enqueue,
    buyer_url,
    customer_url,
    DeliveryReport,
    deliver_pending,
    requeue_dead,
    retry_delay,
)
from aftersales.integrations.notify.channels import (
    MAX_ERROR,
    tag_list,
    Outcome,
    send,
    StaffChannels,
)

__all__ = [
    "TEMPLATES_DIR",
    "TEMPLATES_FILE",
    "STAFF",
    "CUSTOMER",
    "AUDIENCES",
    "CHINESE",
    "ENGLISH",
    "LANGUAGES",
    "TemplateError",
    "MessageTemplate",
    "preload",
    "template_ids",
    "default_staff_tags",
    "placeholders",
    "normalize_language",
    "render",
    "mask_customer_data",
    "flow_run_link",
    "fields_of",
    "clip",
    "PENDING",
    "SENDING",
    "SENT",
    "DEAD",
    "CLAIM_TIMEOUT",
    "FIRST_RETRY",
    "LONGEST_RETRY",
    "enqueue",
    "buyer_url",
    "customer_url",
    "DeliveryReport",
    "deliver_pending",
    "requeue_dead",
    "retry_delay",
    "MAX_ERROR",
    "tag_list",
    "Outcome",
    "send",
    "StaffChannels",
]
