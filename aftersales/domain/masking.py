"""Masking customer data: phones, addresses and emails never reach staff channels or logs.

Rulebook §4 (privacy, 001 §一(二)4 保密性原则): customer data is not disclosed without authority.
Staff see enough to recognise a buyer (``138****5678``, ``浙江省杭州市西湖区****``,
``z***@example.com``); the buyer's own messages are not masked.

Pure functions, no Prefect import (``domain`` never imports Prefect). ``install_log_masking``
only touches the standard ``logging`` module, by logger name.
"""

from __future__ import annotations

import logging
import re

MASK = "****"

# A mainland mobile number: 1, then 3-9, then nine digits; optionally +86 / 0086 / 86 in front
# and written in groups "138 1234 5678" or "138-1234-5678". The ASCII look-arounds keep us from
# cutting a piece out of a longer number (a tracking number, an order id); a Chinese character
# right before the number ("电话13812345678") must still count as a boundary.
_MOBILE = re.compile(
    r"(?<![0-9A-Za-z+])"
    r"(?:(?:\+|00)?86[\s-]?)?"
    r"1[3-9]\d(?:[\s-]?\d{4}){2}"
    r"(?![0-9A-Za-z])"
)
# The look-behind starts a match only where a run of address characters starts: without it a long
# run with no "@" after it is tried from every position (quadratic: a 1 MB line took minutes).
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_COUNTRY_CODE = re.compile(r"^(?:\+|00)86")
_CJK = re.compile(r"[\u4e00-\u9fff]")


# --- phones --------------------------------------------------------------------------------------


def mask_phone(phone: str | None) -> str:
    """``13812345678`` → ``138****5678``; ``+86 138-1234-5678`` → ``+86 138****5678``.

    Other numbers (landlines, foreign mobiles) keep their last four digits and, when long
    enough to stay anonymous, their first three.
    """
    if not phone:
        return ""
    text = str(phone).strip()
    country = "+86 " if _COUNTRY_CODE.match(text.replace(" ", "")) else ""
    digits = re.sub(r"\D", "", text)
    if country:
        digits = digits[2:] if digits.startswith("86") else digits[4:]  # +86… or 0086…
    elif len(digits) == 13 and digits.startswith("861"):
        country, digits = "+86 ", digits[2:]  # "8613812345678" written without the plus
    if len(digits) <= 4:
        return MASK
    head = digits[:3] if len(digits) >= 10 else ""
    return f"{country}{head}{MASK}{digits[-4:]}"


# --- emails --------------------------------------------------------------------------------------


def mask_email(email: str | None) -> str:
    """``zhang.san@example.com`` → ``z***@example.com`` (the domain says little about a person)."""
    if not email:
        return ""
    text = str(email).strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        return MASK
    return f"{local[0] if len(local) > 1 else ''}***@{domain}"


def mask_contact(contact: str | None) -> str:
    """A buyer's contact is either an email or a phone number."""
    if not contact:
        return ""
    return mask_email(contact) if "@" in str(contact) else mask_phone(contact)


# --- addresses -----------------------------------------------------------------------------------

# Province level: provinces, autonomous regions, SARs and the four municipalities (which are
# also their own city, so "北京市朝阳区…" has no separate city part).
_PROVINCE = r"(?:北京市|上海市|天津市|重庆市|[^\d\s]{2,7}?(?:省|自治区|特别行政区))"
# City and district names are short and hold no digits and no street words (路 road, 街 street,
# 巷/弄 lane, 号 number, 村 village), so a street ("文三路小区3幢") is never taken for a region.
_NAME = r"[^\d\s路街巷弄号村]"
_CITY = rf"{_NAME}{{1,10}}?(?:自治州|地区|盟|市)"
# District level: districts (not a 小区, a housing estate), counties, banners, county-level cities.
_DISTRICT = rf"{_NAME}{{1,8}}?(?:(?<!小)区|县|旗|市)"
_CN_DIVISIONS = re.compile(
    rf"^\s*(?P<province>{_PROVINCE})?\s*(?P<city>{_CITY})?\s*(?P<district>{_DISTRICT})?"
)

# English street lines: the house, the flat, the street; everything we drop before the town.
_STREET_WORDS = re.compile(
    r"\b(?:street|st|road|rd|avenue|ave|lane|ln|way|drive|dr|boulevard|blvd|parkway|pkwy|"
    r"court|ct|place|pl|square|sq|terrace|close|crescent|highway|hwy|"
    r"apt|apartment|flat|suite|unit|floor|fl|room|building|bldg|house|po box)\b\.?",
    re.IGNORECASE,
)


def mask_address(address: str | None) -> str:
    """Keep the region (province/city/district, or town/state/country), mask the rest.

    ``浙江省杭州市西湖区文三路 123 号 4 幢 501`` → ``浙江省杭州市西湖区****``;
    ``1600 Amphitheatre Pkwy, Mountain View, CA 94043, USA`` → ``****, Mountain View, CA, USA``.
    """
    if not address:
        return ""
    text = str(address).strip()
    if _CJK.search(text):
        return _mask_chinese_address(text)
    return _mask_english_address(text)


def _mask_chinese_address(text: str) -> str:
    match = _CN_DIVISIONS.match(text)
    region = "".join(part for part in match.groups() if part) if match else ""
    if not region:
        return MASK
    rest = text[match.end():].strip()
    return f"{region}{MASK}" if rest else region


def _mask_english_address(text: str) -> str:
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if len(parts) < 2:
        return MASK  # no town to keep: a lone line is all street
    # The first line is always the house/street; further lines are street too while they
    # start with a number ("221B Baker Street") or name a street/flat.
    index = 1
    while index < len(parts) - 1 and _is_street_line(parts[index]):
        index += 1
    region = [_drop_postcode(part) for part in parts[index:]]
    return ", ".join([MASK, *[part for part in region if part]])


def _is_street_line(part: str) -> bool:
    first_word = part.split()[0]
    return any(ch.isdigit() for ch in first_word) or bool(_STREET_WORDS.search(part))


def _drop_postcode(part: str) -> str:
    """``CA 94043`` → ``CA``; ``London NW1 6XE`` → ``London`` (postcodes narrow down a street)."""
    return " ".join(word for word in part.split() if not any(ch.isdigit() for ch in word))


# --- free text -----------------------------------------------------------------------------------


def mask_text(text: str | None) -> str:
    """Mask every mainland mobile number and email address found in free text.

    Emails go first, so ``13812345678@163.com`` becomes ``1***@163.com`` rather than a half
    masked phone in front of a visible domain. Already masked text is left as it is.
    """
    if not text:
        return "" if text is None else text
    masked = _EMAIL.sub(lambda m: mask_email(m.group(0)), str(text))
    return _MOBILE.sub(lambda m: mask_phone(m.group(0)), masked)


# --- logs ----------------------------------------------------------------------------------------


class MaskingFilter(logging.Filter):
    """Masks phones and emails in a log record's message, arguments and traceback.

    The record is rewritten in place (message formatted once, args dropped), so every handler
    after this filter (console, Prefect's API log handler) sees the masked text only.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it for logging's own error report
            return True
        record.msg = mask_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when set, so the traceback is printed masked too.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True


# Loggers that carry case data: Prefect's flow and task run loggers (shipped to the Prefect
# server by their own API handler, which does not pass through the root logger) and Apprise.
_MASKED_LOGGERS = (
    "prefect",
    "prefect.flow_runs",
    "prefect.task_runs",
    "prefect.extra",
    "prefect.workers",
    "apprise",
)


def install_log_masking() -> MaskingFilter:
    """Attach one ``MaskingFilter`` to the root handlers and the Prefect and Apprise loggers.

    Logger-level filters survive Prefect re-reading its logging config; handler-level filters
    also catch records that propagate from child loggers (httpx, our own modules). Call it after
    Prefect set up logging (importing ``prefect`` does) so its handlers exist. Idempotent.
    """
    masking = _installed_filter() or MaskingFilter()
    names = set(_MASKED_LOGGERS)
    names.update(
        name for name in logging.root.manager.loggerDict if name.startswith(("prefect.", "apprise."))
    )
    loggers = [logging.getLogger()] + [logging.getLogger(name) for name in sorted(names)]
    for logger in loggers:
        _add_once(logger, masking)
        for handler in logger.handlers:
            _add_once(handler, masking)
    return masking


def _installed_filter() -> MaskingFilter | None:
    for filterer in [logging.getLogger("prefect"), *logging.getLogger().handlers]:
        for existing in filterer.filters:
            if isinstance(existing, MaskingFilter):
                return existing
    return None


def _add_once(filterer: logging.Filterer, masking: MaskingFilter) -> None:
    if not any(isinstance(existing, MaskingFilter) for existing in filterer.filters):
        filterer.addFilter(masking)
