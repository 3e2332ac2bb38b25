"""Early warning (docs/rulebook.md §3; 002 §9.2): returns and complaints per SKU and per category against
thresholds learnt from history, pushed to the responsible department.

Windows are consecutive blocks of ``window_days`` (default 7) in Asia/Shanghai, aligned to Mondays,
so "the window" of a breach is a fixed thing: the check runs every hour on the window in progress
and alerts as soon as its count reaches the threshold, once per subject and window (``WarningAlert``
key ``sku:<SKU>:<window start>``). Threshold = max(floor, mean + k·stddev) of the counts in the
``history_windows`` windows before it (a window without cases counts 0, so a new SKU meets the floor).

Counted: return, exchange and complaint cases opened in the window, once per case per SKU and per
category. SKUs and product categories come from ``Case.details["items"]`` (the order lines the flows
store); complaints may carry ``details["category_code"]`` (002 §2.3.2: 1xxx product, 2xxx logistics,
3xxx payment, 4xxx after-sales service, 5xxx other) and ``details["sku"]``.
Routing: SKUs and product categories → quality; codes by their thousand (``CODE_DEPARTMENTS``).
"""

from __future__ import annotations

import logging
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import apprise
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from aftersales.domain.calendar import utcnow
from aftersales.domain.models import Case, Process, WarningAlert
from aftersales.domain.settings import get_settings
from aftersales.integrations.db import get_engine, session_scope
from aftersales.integrations.notify import render

log = logging.getLogger(__name__)

COUNTED = (Process.RETURN, Process.EXCHANGE, Process.COMPLAINT)
ANCHOR = date(2024, 1, 1)  # a Monday: windows start on Mondays when window_days is a multiple of 7
CODE_DEPARTMENTS = {"1": "quality", "2": "logistics", "3": "finance", "4": "supervisor", "5": "supervisor"}


def department_for(kind: str, subject: str) -> str:
    if kind == "category" and subject[:1] in CODE_DEPARTMENTS and subject.isdigit() and len(subject) == 4:
        return CODE_DEPARTMENTS[subject[0]]
    return "quality"  # a SKU or a product category: the goods themselves


@dataclass(frozen=True)
class Breach:
    kind: str
    subject: str
    window_start: datetime
    window_end: datetime
    count: int
    threshold: float
    mean: float
    stddev: float
    cases: tuple[str, ...] = ()  # the window's cases behind the count

    @property
    def severe(self) -> bool:
        """Far above its threshold (``emergency_warning_ratio`` times or more): an emergency (§3.1)."""
        return self.count >= self.threshold * get_settings().rules.emergency_warning_ratio

    @property
    def key(self) -> str:
        local_start = self.window_start.astimezone(get_settings().tz).date()
        return f"{self.kind}:{self.subject}:{local_start.isoformat()}"[:200]

    @property
    def department(self) -> str:
        return department_for(self.kind, self.subject)


def window_bounds(moment: datetime, window_days: int, offset: int = 0) -> tuple[datetime, datetime]:
    """The window ``moment`` falls in (offset 0), or the one ``offset`` windows earlier (-1, …)."""
    tz = get_settings().tz
    local_day = moment.astimezone(tz).date()
    index = (local_day - ANCHOR).days // window_days + offset
    start_day = ANCHOR + timedelta(days=index * window_days)
    start = datetime.combine(start_day, time(0), tzinfo=tz)
    end = datetime.combine(start_day + timedelta(days=window_days), time(0), tzinfo=tz)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def subjects_of(details: dict) -> set[tuple[str, str]]:
    # Reads the raw JSON column on purpose, not ``domain.details``: it counts one generic thing
    # (SKUs and categories) over rows of several processes streamed from SQL, and a row that would
    # not validate as its process's model (an old or partial one) must still be counted, not stop
    # the hourly check. Only ``items``' sku/category, ``sku`` and ``category_code`` are read.
    found: set[tuple[str, str]] = set()
    for item in (details or {}).get("items") or []:
        if item.get("sku"):
            found.add(("sku", str(item["sku"])))
        if item.get("category"):
            found.add(("category", str(item["category"])))
    if details and details.get("sku"):
        found.add(("sku", str(details["sku"])))
    if details and details.get("category_code"):
        found.add(("category", str(details["category_code"])))
    return found


def find_breaches(as_of: datetime | None = None, engine: Engine | None = None) -> list[Breach]:
    settings = get_settings()
    days, history, k, floor = (settings.early_warning_window_days, settings.early_warning_history_windows,
                               settings.early_warning_k, settings.early_warning_floor)
    moment = as_of or utcnow()
    current_start, current_end = window_bounds(moment, days)
    oldest_start, _ = window_bounds(moment, days, -history)
    starts = [window_bounds(moment, days, -i)[0] for i in range(history, 0, -1)] + [current_start]
    index_of = {start: i for i, start in enumerate(starts)}

    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * len(starts))
    current_cases: dict[tuple[str, str], list[str]] = defaultdict(list)
    query = select(Case.id, Case.opened_at, Case.details).where(
        Case.opened_at >= oldest_start, Case.opened_at < min(current_end, moment + timedelta(seconds=1)),
        Case.process.in_([p.value for p in COUNTED]))
    with (engine or get_engine()).connect() as db:
        for row in db.execution_options(yield_per=2000).execute(query):
            slot = index_of.get(window_bounds(row.opened_at, days)[0])
            if slot is None:
                continue
            for subject in subjects_of(row.details):
                counts[subject][slot] += 1
                if slot == len(starts) - 1:
                    current_cases[subject].append(row.id)

    breaches = []
    for (kind, subject), series in counts.items():
        current, earlier = series[-1], series[:-1]
        if not current:
            continue
        mean = statistics.fmean(earlier) if earlier else 0.0
        stddev = statistics.pstdev(earlier) if len(earlier) > 1 else 0.0
        threshold = max(float(floor), mean + k * stddev)
        if current >= threshold:
            breaches.append(Breach(kind, subject, current_start, current_end, current, round(threshold, 2), round(mean, 2), round(stddev, 2),
                                   tuple(current_cases[(kind, subject)])))
    return sorted(breaches, key=lambda b: (b.kind, b.subject))


def record_breaches(breaches: list[Breach]) -> list[WarningAlert]:
    """Store each breach once (by key); returns the alerts that are new."""
    new = []
    with session_scope() as session:
        for breach in breaches:
            if session.execute(select(WarningAlert.id).where(WarningAlert.key == breach.key)).first():
                continue
            alert = WarningAlert(key=breach.key, subject_kind=breach.kind, subject=breach.subject,
                                 window_start=breach.window_start, window_end=breach.window_end, count=breach.count,
                                 threshold=breach.threshold, department=breach.department)
            try:
                with session.begin_nested():
                    session.add(alert)
            except Exception:  # a concurrent run stored it first (unique key): announced once
                continue
            new.append(alert)
    return new


def deliver_alerts(breaches_by_key: dict[str, Breach] | None = None, max_attempts: int = 12) -> dict[str, int]:
    """Send pending alerts to their department's Apprise tag; a failed one is tried on the next run."""
    settings = get_settings()
    tz = settings.tz
    report = {"sent": 0, "failed": 0}
    with session_scope() as session:
        pending = list(session.execute(select(WarningAlert).where(WarningAlert.status == "pending",
                                                                  WarningAlert.attempts < max_attempts)).scalars())
    if not pending:
        return report
    channels = apprise.Apprise(asset=apprise.AppriseAsset(async_mode=False))
    config = apprise.AppriseConfig()
    config.add(str(Path(settings.apprise_config)))
    channels.add(config)
    for alert in pending:
        breach = (breaches_by_key or {}).get(alert.key)
        window = (f"{alert.window_start.astimezone(tz):%Y-%m-%d} – "
                  f"{(alert.window_end.astimezone(tz) - timedelta(days=1)):%Y-%m-%d}")
        subject, body = render(
            "early_warning", "zh-CN", "staff", case_id="", subject=alert.subject, count=alert.count,
            threshold=f"{alert.threshold:g}", window=window, department=alert.department,
            subject_label="商品" if alert.subject_kind == "sku" else "类目",
            subject_label_en="SKU" if alert.subject_kind == "sku" else "category",
            mean=f"{breach.mean:g}" if breach else "—", stddev=f"{breach.stddev:g}" if breach else "—",
        )
        try:
            ok = channels.notify(title=subject, body=body, tag=alert.department, body_format=apprise.NotifyFormat.TEXT)
            error = "" if ok else f"no channel accepted the alert for tag {alert.department!r}"
        except Exception as exc:  # a channel problem postpones the alert, never fails the run
            error = f"{type(exc).__name__}: {exc}"
        values = {"attempts": alert.attempts + 1, "last_error": error[:1000]}
        if not error:
            values.update(status="sent", sent_at=utcnow())
            report["sent"] += 1
        else:
            report["failed"] += 1
            log.warning("early-warning alert %s not delivered: %s", alert.key, error)
        with session_scope() as session:
            session.execute(update(WarningAlert).where(WarningAlert.id == alert.id).values(**values))
    return report


def check(as_of: datetime | None = None) -> dict:
    """Find breaches, store the new ones, deliver what is pending."""
    breaches = find_breaches(as_of)
    new = record_breaches(breaches)
    delivery = deliver_alerts({b.key: b for b in breaches})
    return {"breaches": [b.key for b in breaches], "new": [a.key for a in new], **delivery,
            "severe": [b for b in breaches if b.severe]}
