"""Monthly statistics (docs/rulebook.md §3; 000 §7.2, 002 §7.1), per process and per complaint level.

Definitions (also written into the workbook's ``口径 Definitions`` sheet):
- first response: case opened → the first event by a staff member (actor is a Staff id) other than
  the opening itself; cases *opened* in the month.
- handling time: opened → closed; cases *closed* in the month.
- satisfaction: mean score (1–5) of the answers *given* in the month; reply rate = answers given /
  satisfaction requests sent in the month (after close and by survey).
- complaint rate: complaint cases opened / all after-sales cases opened in the month. The
  denominator is cases, not orders: orders live on the shop platform, not in our database.
- outcomes of cases closed in the month: resolved / partly resolved / unresolved (``domain/outcomes.py``);
  withdrawn = closed with an outcome the rulebook leaves out of that split (a request withdrawn or
  lapsed, e.g. a return the buyer never shipped, ``closed_not_shipped``; a review reported as
  malicious), counted on their own; outcomes not listed count as "other".
- resolved rate: resolved / (resolved + partly resolved + unresolved) of the cases closed in the
  month; withdrawn and "other" cases are outside its denominator.
- repeat complaint rate: complaints opened in the month by a customer who had already complained
  earlier in the same month / complaints opened in the month.
- first response by channel (§1.11, enquiry tickets opened in the month): tickets, answered, the
  mean seconds from the channel's receipt to the first answer, and late answers — over the channel's
  limit (chat 30 s, phone 60 s, e-mail 4 h) or none by it; late rate = late / tickets whose first
  response is settled (answered, or its deadline passed).
- emergencies (§3.1): each emergency closed in the month with its post-incident review (cause,
  actions, prevention), its severity, how many customers it touched and how many updates they got.
- disputes (§1.8, read as symptoms of management gaps): disputes closed in the month, per
  responsible department and person — count, penalties given, root causes — from the responsibility
  recorded at each dispute's close; each dispute's findings on a line of its own.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from aftersales.domain.calendar import utcnow
from aftersales.domain.enquiry_rules import EnquiryChannel
from aftersales.domain.models import Case, CaseEvent, Process, Staff
from aftersales.domain.outcomes import Outcome, Result
from aftersales.domain.settings import get_settings
from aftersales.integrations.db import get_engine
from aftersales.integrations.excel import TITLE_FONT, SheetWriter
from aftersales.reporting.months import Month
from aftersales.reporting.satisfaction import ANSWERED, REQUESTED

RESOLVED, PARTLY, UNRESOLVED, OTHER, EXCLUDED = "resolved", "partly_resolved", "unresolved", "other", "excluded"


def outcome_class(outcome: str | None) -> str:
    """002 §7.1's result of a case outcome (``domain/outcomes.py``, the one list the flows close
    with); "other" only for a word that list does not have (a row written before it existed)."""
    try:
        return Outcome(outcome).result.value
    except ValueError:
        return OTHER


@dataclass
class GroupStats:
    opened: int = 0
    closed: int = 0
    first_response_hours: list[float] = field(default_factory=list)
    handling_hours: list[float] = field(default_factory=list)
    scores: list[int] = field(default_factory=list)
    requests: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    complaints: int = 0
    repeat_complaints: int = 0

    @staticmethod
    def _mean(values: list[float]) -> float | None:
        return round(sum(values) / len(values), 2) if values else None

    def row(self, all_opened: int | None = None) -> dict[str, Any]:
        split = self.outcomes
        decided = split[RESOLVED] + split[PARTLY] + split[UNRESOLVED]
        return {
            "opened": self.opened,
            "closed": self.closed,
            "avg_first_response_h": self._mean(self.first_response_hours),
            "avg_handling_h": self._mean(self.handling_hours),
            "satisfaction_avg": self._mean([float(s) for s in self.scores]),
            "satisfaction_answers": len(self.scores),
            "reply_rate": round(len(self.scores) / self.requests, 4) if self.requests else None,
            "complaints": self.complaints,
            "complaint_rate": round(self.complaints / all_opened, 4) if all_opened else None,
            "repeat_complaint_rate": round(self.repeat_complaints / self.complaints, 4) if self.complaints else None,
            "resolved": split[RESOLVED],
            "partly_resolved": split[PARTLY],
            "unresolved": split[UNRESOLVED],
            "withdrawn": split[EXCLUDED],
            "other": split[OTHER],
            "resolved_rate": round(split[RESOLVED] / decided, 4) if decided else None,
        }


RESPONSIBILITY = "dispute.responsibility"  # the closing event of tasks/dispute.py:record_closing
NO_PENALTY = {"", "无", "none", "无处罚", "-"}


@dataclass(frozen=True)
class DisputeFinding:
    """One dispute's close (§1.8): the result, who was responsible, the penalty and the root cause."""
    case_id: str
    order_id: str
    closed_at: datetime
    result: str
    department: str
    person: str
    penalty: str
    root_cause: str
    root_cause_detail: str

    @property
    def penalised(self) -> bool:
        return self.penalty.strip().lower() not in NO_PENALTY


@dataclass
class ChannelResponse:
    """§1.11: the first responses of one channel's tickets opened in the month."""
    tickets: int = 0
    seconds: list[float] = field(default_factory=list)
    settled: int = 0
    late: int = 0

    def row(self) -> dict[str, Any]:
        return {"tickets": self.tickets, "answered": len(self.seconds),
                "avg_response_s": round(sum(self.seconds) / len(self.seconds), 1) if self.seconds else None,
                "late": self.late, "late_rate": round(self.late / self.settled, 4) if self.settled else None}


@dataclass
class MonthlyStatistics:
    month: str
    groups: dict[str, GroupStats]
    disputes: list[DisputeFinding] = field(default_factory=list)
    channels: dict[str, ChannelResponse] = field(default_factory=dict)
    emergencies: list[dict[str, Any]] = field(default_factory=list)

    def first_responses(self) -> list[dict[str, Any]]:
        """One row per channel that had tickets, in the channels' order."""
        return [{"channel": channel.value, **self.channels[channel.value].row()} for channel in EnquiryChannel if channel.value in self.channels]

    def responsibility(self) -> list[dict[str, Any]]:
        """Disputes per responsible department and person: count, penalties, root causes."""
        by_owner: dict[tuple[str, str], list[DisputeFinding]] = defaultdict(list)
        for finding in self.disputes:
            by_owner[(finding.department, finding.person)].append(finding)
        rows = []
        for (department, person), findings in sorted(by_owner.items(), key=lambda item: (-len(item[1]), item[0])):
            causes = Counter(f.root_cause for f in findings)
            rows.append({"department": department, "person": person, "disputes": len(findings),
                         "penalised": sum(f.penalised for f in findings),
                         "penalties": "; ".join(f.penalty for f in findings if f.penalised),
                         "root_causes": ", ".join(f"{cause} ×{n}" for cause, n in sorted(causes.items(), key=lambda c: (-c[1], c[0])))})
        return rows

    def rows(self) -> list[dict[str, Any]]:
        """One row per group: all, process:<name>, level:<n>. Complaint rate of a group is its
        complaints over *all* cases opened (the group's share of the month)."""
        total = self.groups["all"].opened
        return [{"group": name, **stats.row(total)} for name, stats in self.groups.items()]


def _groups(process: str, level: int | None) -> list[str]:
    names = ["all", f"process:{process}"]
    if level is not None:
        names.append(f"level:{level}")
    return names


def monthly_statistics(month: Month, engine: Engine | None = None) -> MonthlyStatistics:
    start, end = month.start(), month.end()
    groups: dict[str, GroupStats] = defaultdict(GroupStats)
    groups["all"]  # always present, first
    engine = engine or get_engine()
    staff = select(Staff.id)
    with engine.connect() as db:
        # cases opened in the month, with their first staff action (one query, grouped in SQL)
        first_staff = (
            select(CaseEvent.case_id, func.min(CaseEvent.at).label("first_at"))
            .join(Case, Case.id == CaseEvent.case_id)
            .where(Case.opened_at >= start, Case.opened_at < end, CaseEvent.actor.in_(staff), CaseEvent.key != "opened")
            .group_by(CaseEvent.case_id)
            .subquery()
        )
        opened = (
            select(Case.id, Case.process, Case.level, Case.customer_id, Case.opened_at, first_staff.c.first_at)
            .outerjoin(first_staff, first_staff.c.case_id == Case.id)
            .where(Case.opened_at >= start, Case.opened_at < end)
            .order_by(Case.opened_at, Case.id)
        )
        complained: set[str] = set()
        for row in db.execution_options(yield_per=2000).execute(opened):
            first_at = _aware(row.first_at)
            for name in _groups(row.process, row.level):
                stats = groups[name]
                stats.opened += 1
                if first_at is not None:
                    stats.first_response_hours.append(_hours(row.opened_at, first_at))
                if row.process == Process.COMPLAINT:
                    stats.complaints += 1
                    if row.customer_id in complained:
                        stats.repeat_complaints += 1
            if row.process == Process.COMPLAINT:
                complained.add(row.customer_id)

        closed = select(Case.process, Case.level, Case.outcome, Case.opened_at, Case.closed_at).where(
            Case.closed_at >= start, Case.closed_at < end)
        for row in db.execution_options(yield_per=2000).execute(closed):
            for name in _groups(row.process, row.level):
                stats = groups[name]
                stats.closed += 1
                stats.handling_hours.append(_hours(row.opened_at, row.closed_at))
                stats.outcomes[outcome_class(row.outcome)] += 1

        satisfaction = (
            select(CaseEvent.action, CaseEvent.details, Case.process, Case.level)
            .join(Case, Case.id == CaseEvent.case_id)
            .where(CaseEvent.at >= start, CaseEvent.at < end, CaseEvent.action.in_([ANSWERED, REQUESTED]))
        )
        for row in db.execution_options(yield_per=2000).execute(satisfaction):
            for name in _groups(row.process, row.level):
                if row.action == ANSWERED:
                    groups[name].scores.append(int((row.details or {}).get("score", 0)))
                else:
                    groups[name].requests += 1
        findings = (
            select(Case.id, Case.order_id, Case.closed_at, Case.outcome, CaseEvent.details)
            .join(CaseEvent, (CaseEvent.case_id == Case.id) & (CaseEvent.action == RESPONSIBILITY))
            .where(Case.process == Process.DISPUTE, Case.closed_at >= start, Case.closed_at < end)
            .order_by(Case.closed_at, Case.id)
        )
        disputes = [_finding(row) for row in db.execute(findings)]
        channels: dict[str, ChannelResponse] = defaultdict(ChannelResponse)
        tickets = select(Case.details).where(Case.process == Process.ENQUIRY, Case.opened_at >= start, Case.opened_at < end)
        for (details,) in db.execution_options(yield_per=2000).execute(tickets):
            ticket = details if isinstance(details, dict) else {}
            figures = channels[str(ticket.get("channel", ""))]
            figures.tickets += 1
            if ticket.get("response_seconds") is not None:
                figures.seconds.append(float(ticket["response_seconds"]))
            if ticket.get("first_response_breached") is not None:
                figures.settled += 1
                figures.late += bool(ticket["first_response_breached"])
        incidents = (select(Case.id, Case.opened_at, Case.closed_at, Case.details)
                     .where(Case.process == Process.EMERGENCY, Case.closed_at >= start, Case.closed_at < end).order_by(Case.closed_at, Case.id))
        emergencies = [_emergency(row) for row in db.execute(incidents)]
    ordered = {"all": groups["all"]}
    ordered.update({k: groups[k] for k in sorted(groups) if k != "all"})
    return MonthlyStatistics(str(month), ordered, disputes, dict(channels), emergencies)


def _emergency(row) -> dict[str, Any]:
    details = row.details if isinstance(row.details, dict) else {}
    review = details.get("review") or {}
    return {"case_id": row.id, "title": details.get("title", ""), "severity": details.get("severity"),
            "opened_at": _aware(row.opened_at), "closed_at": _aware(row.closed_at), "customers": len(details.get("customers") or []),
            "updates": details.get("updates_sent", 0), "cause": review.get("cause", ""), "actions": review.get("actions", ""),
            "prevention": review.get("prevention", "")}


def _finding(row) -> DisputeFinding:
    closing = row.details or {}
    return DisputeFinding(
        case_id=row.id, order_id=row.order_id, closed_at=_aware(row.closed_at), result=str(closing.get("result") or row.outcome or ""),
        department=str(closing.get("responsible_department", "")), person=str(closing.get("responsible_person", "")),
        penalty=str(closing.get("penalty", "")), root_cause=str(closing.get("root_cause", "")),
        root_cause_detail=str(closing.get("root_cause_detail", "")))


def _aware(moment: datetime | str | None) -> datetime | None:
    """min() over the column keeps its type on SQLAlchemy 2, but be safe: times are stored in UTC."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _hours(start: datetime, end: datetime) -> float:
    return max((end - start).total_seconds(), 0.0) / 3600


COLUMNS = [
    ("group", "分组 Group", 22), ("opened", "新开案件 Opened", 12), ("closed", "结案 Closed", 10),
    ("avg_first_response_h", "平均首次响应(小时) Avg first response (h)", 18),
    ("avg_handling_h", "平均处理时长(小时) Avg handling (h)", 18),
    ("satisfaction_avg", "满意度均分 Satisfaction (1–5)", 14), ("satisfaction_answers", "评分数 Answers", 10),
    ("reply_rate", "回复率 Reply rate", 12), ("complaints", "投诉 Complaints", 10),
    ("complaint_rate", "投诉率 Complaint rate", 12), ("repeat_complaint_rate", "重复投诉率 Repeat complaint rate", 14),
    ("resolved", "已解决 Resolved", 10), ("partly_resolved", "部分解决 Partly", 10), ("unresolved", "未解决 Unresolved", 10),
    ("withdrawn", "撤回 Withdrawn", 10), ("other", "其他 Other", 8), ("resolved_rate", "解决率 Resolved rate", 12),
]
RATES = {"reply_rate", "complaint_rate", "repeat_complaint_rate", "resolved_rate"}
RESPONSIBILITY_COLUMNS = [
    ("department", "责任部门 Department", 18), ("person", "责任人 Person", 16), ("disputes", "维权数 Disputes", 10),
    ("penalised", "处罚数 Penalised", 10), ("penalties", "处罚/考核 Penalties", 40), ("root_causes", "根本原因 Root causes", 40),
]
CHANNEL_COLUMNS = [
    ("channel", "渠道 Channel", 16), ("tickets", "工单 Tickets", 10), ("answered", "已首次响应 Answered", 12),
    ("avg_response_s", "平均首次响应(秒) Avg first response (s)", 18), ("late", "超时 Late", 10), ("late_rate", "超时率 Late rate", 12),
]
EMERGENCY_COLUMNS = [
    ("case_id", "事件 Emergency", 26), ("title", "标题 Title", 30), ("severity", "严重程度 Severity", 10),
    ("opened_at", "发生 Opened (Asia/Shanghai)", 20), ("closed_at", "结案 Closed (Asia/Shanghai)", 20), ("customers", "受影响客户 Customers", 10),
    ("updates", "通报次数 Updates", 10), ("cause", "原因 Cause", 40), ("actions", "措施 Actions", 40), ("prevention", "预防 Prevention", 40),
]
FINDING_COLUMNS = [
    ("case_id", "案件 Case", 24), ("order_id", "订单 Order", 18), ("closed_at", "结案时间 Closed (Asia/Shanghai)", 24), ("result", "结果 Result", 12),
    ("department", "责任部门 Department", 16), ("person", "责任人 Person", 14), ("penalty", "处罚/考核 Penalty", 30),
    ("root_cause", "根本原因 Root cause", 16), ("root_cause_detail", "管理漏洞 Management gap", 50),
]


def to_markdown(stats: MonthlyStatistics) -> str:
    lines = [f"# 月度售后统计 Monthly after-sales statistics {stats.month} (Asia/Shanghai)", "",
             "| " + " | ".join(label for _, label, _ in COLUMNS) + " |",
             "|" + "---|" * len(COLUMNS)]
    for row in stats.rows():
        cells = []
        for key, _label, _width in COLUMNS:
            value = row[key]
            cells.append("—" if value is None else f"{value:.1%}" if key in RATES else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## 首次响应 First response by channel (§1.11)", ""]
    if stats.channels:
        lines += ["| " + " | ".join(label for _, label, _ in CHANNEL_COLUMNS) + " |", "|" + "---|" * len(CHANNEL_COLUMNS)]
        lines += ["| " + " | ".join("—" if row[key] is None else f"{row[key]:.1%}" if key == "late_rate" else str(row[key])
                                    for key, _, _ in CHANNEL_COLUMNS) + " |" for row in stats.first_responses()]
    else:
        lines.append("本月无咨询工单 No enquiry ticket this month.")
    lines += ["", f"## 突发事件复盘 Emergencies reviewed ({len(stats.emergencies)} closed)", ""]
    lines += [f"- {e['case_id']} {e['title']} (severity {e['severity']}, {e['customers']} customers, {e['updates']} updates): "
              f"cause {e['cause']}; actions {e['actions']}; prevention {e['prevention']}" for e in stats.emergencies] or ["本月无 None this month."]
    lines += ["", f"## 维权责任 Disputes by responsibility ({len(stats.disputes)} closed)", ""]
    if stats.disputes:
        lines += ["| " + " | ".join(label for _, label, _ in RESPONSIBILITY_COLUMNS) + " |", "|" + "---|" * len(RESPONSIBILITY_COLUMNS)]
        lines += ["| " + " | ".join(str(row[key]) or "—" for key, _, _ in RESPONSIBILITY_COLUMNS) + " |" for row in stats.responsibility()]
    else:
        lines.append("本月无结案维权 No dispute closed this month.")
    lines += ["", "Definitions: complaint rate = complaint cases / all cases opened in the month (orders are not in "
              "our database); outcomes mapped as in `aftersales/domain/outcomes.py`; withdrawn = closed outside the "
              "resolved / partly / unresolved split (e.g. a return the buyer never shipped), not in the resolved rate's "
              "denominator; repeat = "
              "a complaint from a customer who already complained that month."]
    return "\n".join(lines)


def write_statistics_workbook(stats: MonthlyStatistics, output: Path, generated_at: datetime | None = None) -> Path:
    workbook = Workbook(write_only=True)
    sheet = SheetWriter(workbook.create_sheet("统计 Statistics"))
    sheet.columns([width for _, _, width in COLUMNS])
    sheet.sheet.freeze_panes = "B4"
    tz = get_settings().tz
    sheet.append([sheet.bold(f"月度售后统计 Monthly statistics {stats.month} (Asia/Shanghai)", TITLE_FONT), None, None,
                  "生成时间 Generated", sheet.time(generated_at or utcnow(), tz)])
    sheet.append([])
    sheet.header([label for _, label, _ in COLUMNS])
    for row in stats.rows():
        sheet.append([sheet.percent(row[key]) if key in RATES else (sheet.text(row[key]) if key == "group" else row[key])
                      for key, _, _ in COLUMNS])
    sheet.sheet.auto_filter.ref = f"A3:{chr(ord('A') + len(COLUMNS) - 1)}{sheet.rows}"
    first = SheetWriter(workbook.create_sheet("首响 First response"))
    first.columns([width for _, _, width in CHANNEL_COLUMNS])
    first.header([label for _, label, _ in CHANNEL_COLUMNS])
    for row in stats.first_responses():
        first.append([first.percent(row[key]) if key == "late_rate" else first.text(row[key]) if key == "channel" else row[key]
                      for key, _, _ in CHANNEL_COLUMNS])
    incidents = SheetWriter(workbook.create_sheet("应急 Emergencies"))
    incidents.columns([width for _, _, width in EMERGENCY_COLUMNS])
    incidents.header([label for _, label, _ in EMERGENCY_COLUMNS])
    for incident in stats.emergencies:
        incidents.append([incidents.time(incident[key], tz) if key in ("opened_at", "closed_at") else
                          incident[key] if key in ("severity", "customers", "updates") else incidents.text(incident[key])
                          for key, _, _ in EMERGENCY_COLUMNS])
    responsibility = SheetWriter(workbook.create_sheet("维权责任 Disputes"))
    responsibility.columns([width for _, _, width in RESPONSIBILITY_COLUMNS])
    responsibility.header([label for _, label, _ in RESPONSIBILITY_COLUMNS])
    for row in stats.responsibility():
        responsibility.append([row[key] if key in ("disputes", "penalised") else responsibility.text(row[key]) for key, _, _ in RESPONSIBILITY_COLUMNS])
    findings = SheetWriter(workbook.create_sheet("维权明细 Dispute findings"))
    findings.columns([width for _, _, width in FINDING_COLUMNS])
    findings.header([label for _, label, _ in FINDING_COLUMNS])
    for finding in stats.disputes:
        findings.append([findings.time(finding.closed_at, tz) if key == "closed_at" else findings.text(getattr(finding, key))
                         for key, _, _ in FINDING_COLUMNS])
    notes = SheetWriter(workbook.create_sheet("口径 Definitions"))
    notes.columns([110])
    for line in (__doc__ or "").strip().splitlines():
        notes.append([notes.text(line.strip())])
    notes.append([notes.text("outcome mapping: " + "; ".join(
        f"{'withdrawn (excluded)' if r is Result.EXCLUDED else r.value}: {', '.join(sorted(o.value for o in Outcome if o.result is r))}"
        for r in Result))])
    output.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(output)
    return output
