"""§1.9 post-delivery order tracking: what a parcel's tracking says the shop should do.

Pure: given a parcel's carrier tracking (Kuaidi100 states) and the
time, return the findings. The tracker flow acts on each finding once.

Kuaidi100's detailed values for state 2 (疑难) used here — check them against the provider's current
table before going live: 201 overdue, 202 no update, 203 refused/returned, 204 delivery exception,
205 not collected from locker/station, 206 cannot contact, 207 out of area, 208 stranded, 209 damaged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

SIGNED, REFUSED, PROBLEM = 3, 14, 2
SIGNED_BY_SOMEONE_ELSE = "303"


class Action(StrEnum):
    OPEN_OUT_OF_AREA = "open_out_of_area"  # §1.4 case
    OPEN_COMPLAINT = "open_complaint"  # §1.10 case (logistics: damage in transit)
    OPEN_REFUSAL_RETURN = "open_refusal_return"  # §1.1 refusal at delivery
    CONTACT_BUYER = "contact_buyer"  # §1.9 proactive message to the buyer, logistics told
    STOP_WATCHING = "stop_watching"  # 15 days after the signature nothing more is expected


@dataclass(frozen=True)
class Finding:
    action: Action
    key: str  # acted on once per order and key
    problem: str  # in the receiving process's words, e.g. out_of_area / stranded / blind_area
    detail: str


@dataclass(frozen=True)
class ParcelView:
    """The tracking facts the rules need (newest event first)."""

    state: int
    signed_at: datetime | None
    last_event_at: datetime | None
    codes: tuple[str, ...]  # detailed status codes of every event, newest first
    contexts: tuple[str, ...]


def assess(parcel: ParcelView, now: datetime, watch_days: int, no_update_days: int) -> list[Finding]:
    findings: list[Finding] = []
    codes, text = set(parcel.codes), " ".join(parcel.contexts)
    if "207" in codes or "盲区" in text or "无网点" in text:
        problem = "blind_area" if ("盲区" in text or "无网点" in text) and "207" not in codes else "out_of_area"
        findings.append(Finding(Action.OPEN_OUT_OF_AREA, f"out-of-area:{problem}", problem, "快递超区/盲区 parcel outside the outlet's area"))
    if "208" in codes:
        findings.append(Finding(Action.OPEN_OUT_OF_AREA, "out-of-area:stranded", "stranded", "网点暂停，包裹滞留 stranded at a suspended outlet"))
    if "209" in codes:
        findings.append(Finding(Action.OPEN_COMPLAINT, "complaint:damaged", "damaged", "运输破损 damaged in transit"))
    if parcel.state == REFUSED or "203" in codes or str(REFUSED) in codes:
        findings.append(Finding(Action.OPEN_REFUSAL_RETURN, "return:refused", "refused", "买家拒收 refused at the door"))
    if SIGNED_BY_SOMEONE_ELSE in codes:
        findings.append(Finding(Action.CONTACT_BUYER, "contact:signed-by-other", "signed_by_other", "他人代签，请买家确认 signed by someone else: ask the buyer"))
    for code, what in (("201", "超时未签收 overdue"), ("204", "派件异常 delivery exception"), ("205", "驿站/快递柜超时未取 not collected"), ("206", "无法联系收件人 cannot reach the buyer")):
        if code in codes:
            findings.append(Finding(Action.CONTACT_BUYER, f"contact:{code}", code, what))
    stale = parcel.last_event_at is not None and now - parcel.last_event_at > timedelta(days=no_update_days)
    case_opened = any(f.action is not Action.CONTACT_BUYER for f in findings)  # the case contacts the buyer itself
    if parcel.state not in (SIGNED, 4) and (stale or "202" in codes) and not case_opened:
        findings.append(Finding(Action.CONTACT_BUYER, "contact:no-update", "no_update", f"物流超过 {no_update_days} 天未更新 no tracking update for {no_update_days} days"))
    if parcel.signed_at is not None and now - parcel.signed_at > timedelta(days=watch_days):
        findings.append(Finding(Action.STOP_WATCHING, "stop", "done", f"签收已满 {watch_days} 天 {watch_days} days after the signature"))
    return findings
