"""Message templates: the catalog (``integrations/templates/*.yml``), two languages, rendering
from masked context for staff and plain context for the buyer."""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from aftersales.domain.calendar import shop_time
from aftersales.domain.masking import mask_address, mask_contact, mask_email, mask_phone, mask_text
from aftersales.domain.settings import get_settings


TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates"
TEMPLATES_FILE = TEMPLATES_DIR / "messages.yml"  # the shared ones; each process may add <process>.yml
STAFF, CUSTOMER = "staff", "customer"
AUDIENCES = (STAFF, CUSTOMER)
CHINESE, ENGLISH = "zh-CN", "en"
LANGUAGES = (CHINESE, ENGLISH)


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
        needed |= fields_of(text.subject) | fields_of(text.body)
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
    missing = sorted((fields_of(text.subject) | fields_of(text.body)) - set(values))
    if missing:
        raise TemplateError(
            f"message template {template.id!r} ({audience}, {language}) needs "
            + ", ".join(repr(name) for name in missing)
            + " — not given"
        )
    in_language = {name: _phrase(catalog, name, value, language) for name, value in values.items()}
    return _Text(text.subject.format_map(in_language), text.body.format_map(in_language))


def fields_of(text: str) -> set[str]:
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
        return shop_time(value)
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if value is None or (isinstance(value, str) and not value.strip()):
        return "—"  # an empty field reads as “none”, not as a sentence cut short
    return value


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
