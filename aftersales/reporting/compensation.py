"""The monthly compensation export: every ledger line of a month, and the totals finance settles.

One workbook, two sheets:
- ``汇总 Summary`` (first, what finance opens on): what the shop bears, what others bear (buyer,
  carrier, supplier, platform …) and what the platform paid — the figure that reconciles with the
  platform's statement, the sum of the lines that record a platform refund under its reference —
  then totals by kind, bearer, process and responsible department; all as COUNTIFS/SUMIFS formulas
  over the detail sheet — so the figures follow if finance filters or corrects a line — next to the
  control totals this export computed in Decimal, and a difference cell that must read ¥0.00. The
  all-lines total adds every bearer's amounts: a check figure (shop + others), not the shop's cost.
- ``明细 Detail``: one row per ledger line, frozen header, autofilter, CNY format. A line that
  records a platform payment shows its amount again under ``平台实付 Platform paid``; informational
  lines (a cost the buyer bears, the seller's half of the outbound postage …) leave it empty.

Memory stays flat for any month: the lines are read with ``yield_per`` (a server-side cursor on
PostgreSQL, ``fetchmany`` batches on SQLite) and written in openpyxl's write-only mode; only the
per-key totals are kept. Totals are Decimal from the database's exact values; the cells carry the
same amounts as numbers.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.engine import Engine

from aftersales.domain.calendar import utcnow
from aftersales.domain.models import LedgerLine
from aftersales.domain.settings import get_settings
from aftersales.integrations.db import get_engine
from aftersales.integrations.excel import TITLE_FONT, SheetWriter, quote_sheet
from aftersales.reporting.months import Month

SUMMARY_SHEET = "汇总 Summary"
DETAIL_SHEET = "明细 Detail"
CURRENCY = "CNY"

# (header, width); the order is the detail sheet's column order — the formulas below name them.
DETAIL_COLUMNS = [
    ("日期 Date (Asia/Shanghai)", 18),
    ("案件 Case", 28),
    ("流程 Process", 14),
    ("订单 Order", 20),
    ("类型 Kind", 16),
    ("金额 Amount", 14),
    ("币种 Currency", 10),
    ("承担方 Bearer", 12),
    ("责任部门 Responsible dept.", 16),
    ("审批人 Approved by", 14),
    ("平台单号 Platform ref.", 22),
    ("备注 Note", 48),
    ("平台实付 Platform paid", 16),
]
COL = {"process": "C", "kind": "E", "amount": "F", "currency": "G", "bearer": "H", "department": "I", "platform_paid": "M"}
SHOP = "seller"  # the bearer that is the shop; every other bearer is "others"

KIND_LABELS = {
    "refund": "退款 refund", "postage": "运费 postage", "return_postage": "退货运费 return postage",
    "outbound_postage": "发货运费 outbound postage", "reshipment": "补发 re-shipment",
    "compensation": "补偿 compensation", "coupon": "优惠券 coupon", "goods": "赠品 goods",
    "price_difference": "差价 price difference", "repair": "维修 repair",
}
BEARER_LABELS = {"seller": "卖家 seller", "buyer": "买家 buyer", "carrier": "快递 carrier", "platform": "平台 platform",
                 "supplier": "供应商 supplier"}
PROCESS_LABELS = {
    "return": "退货 return", "exchange": "换货 exchange", "compensation": "补偿 compensation",
    "out_of_area": "快递超区 out of area", "repair": "返修 repair", "review": "中差评 review",
    "wrong_shipment": "错发货 wrong shipment", "dispute": "维权 dispute", "complaint": "投诉 complaint",
}
UNASSIGNED = "unassigned"  # written for an empty department: LibreOffice's COUNTIFS cannot match blanks
DEPARTMENT_LABELS = {UNASSIGNED: "未指定 unassigned", "quality": "质检 quality", "logistics": "物流 logistics",
                     "warehouse": "仓库 warehouse", "after_sales": "售后 after-sales", "finance": "财务 finance",
                     "agent": "客服 agent", "supervisor": "主管 supervisor"}
DIMENSIONS = [
    ("kind", "按类型 By kind", KIND_LABELS),
    ("bearer", "按承担方 By bearer", BEARER_LABELS),
    ("process", "按流程 By process", PROCESS_LABELS),
    ("department", "按责任部门 By responsible department", DEPARTMENT_LABELS),
]


@dataclass
class Totals:
    count: int = 0
    amount: Decimal = Decimal("0.00")

    def add(self, amount: Decimal) -> None:
        self.count += 1
        self.amount += amount


@dataclass
class ExportResult:
    path: Path
    month: str
    lines: int = 0
    total: Totals = field(default_factory=Totals)  # CNY lines, every bearer: a check figure, not the shop's cost
    shop: Totals = field(default_factory=Totals)  # CNY lines the shop bears (bearer seller)
    others: Totals = field(default_factory=Totals)  # CNY lines others bear (buyer, carrier, supplier, platform …)
    platform_paid: Totals = field(default_factory=Totals)  # CNY payments the platform confirmed: its statement
    by: dict[str, dict[str, Totals]] = field(default_factory=lambda: {d: defaultdict(Totals) for d, _, _ in DIMENSIONS})
    other_currencies: dict[str, Totals] = field(default_factory=lambda: defaultdict(Totals))

    def summary_rows(self) -> list[dict[str, Any]]:
        """The summary as table rows (for the Prefect table artifact)."""
        rows = [{"dimension": "total 合计", "key": key, "count": totals.count, "amount_cny": f"{totals.amount:.2f}"}
                for key, totals in (("shop bears 店铺承担", self.shop), ("others bear 他方承担", self.others),
                                    ("platform paid 平台实付", self.platform_paid), ("all lines 全部", self.total))]
        for dimension, _title, labels in DIMENSIONS:
            for key, totals in sorted(self.by[dimension].items()):
                rows.append({"dimension": dimension, "key": labels.get(key, key or "—"), "count": totals.count,
                             "amount_cny": f"{totals.amount:.2f}"})
        for currency, totals in sorted(self.other_currencies.items()):
            rows.append({"dimension": "currency", "key": currency, "count": totals.count, "amount_cny": f"({totals.amount:.2f} {currency})"})
        return rows


def ledger_rows(month: Month, engine: Engine | None = None, batch_size: int = 5000) -> Iterator[Any]:
    """The month's ledger lines in time order, streamed: never more than one batch in memory."""
    statement = (
        select(LedgerLine.created_at, LedgerLine.case_id, LedgerLine.process, LedgerLine.order_id, LedgerLine.kind,
               LedgerLine.amount, LedgerLine.currency, LedgerLine.bearer, LedgerLine.responsible_department,
               LedgerLine.approved_by, LedgerLine.platform_ref, LedgerLine.note, LedgerLine.platform_paid)
        .where(LedgerLine.created_at >= month.start(), LedgerLine.created_at < month.end())
        .order_by(LedgerLine.created_at, LedgerLine.id)
    )
    with (engine or get_engine()).connect() as connection:
        # yield_per: server-side cursor on PostgreSQL (stream_results), batched fetch on SQLite
        yield from connection.execution_options(yield_per=batch_size).execute(statement)


def export_compensation(month: Month, output: Path, *, engine: Engine | None = None,
                        generated_at: datetime | None = None) -> ExportResult:
    """Write the month's compensation workbook to ``output`` (atomically: a reader never sees half
    a file) and return its totals."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tz = get_settings().tz
    result = ExportResult(path=output, month=str(month))

    workbook = Workbook(write_only=True)
    # Excel and LibreOffice compute the formulas on opening (write-only files carry no cached values).
    workbook.calculation.fullCalcOnLoad = True
    summary = SheetWriter(workbook.create_sheet(SUMMARY_SHEET))  # first tab: what finance opens on
    detail = SheetWriter(workbook.create_sheet(DETAIL_SHEET))

    detail.columns([width for _, width in DETAIL_COLUMNS])
    _fit_to_width(detail.sheet)
    detail.sheet.freeze_panes = "A2"
    detail.header([label for label, _ in DETAIL_COLUMNS])
    for row in ledger_rows(month, engine):
        amount: Decimal = row.amount
        currency = row.currency or CURRENCY
        detail.append([
            detail.time(row.created_at, tz), detail.text(row.case_id), detail.text(row.process), detail.text(row.order_id),
            detail.text(row.kind), detail.money(amount), detail.text(currency), detail.text(row.bearer),
            detail.text(row.responsible_department or UNASSIGNED), detail.text(row.approved_by), detail.text(row.platform_ref),
            detail.text(row.note), detail.money(amount, slot=1) if row.platform_paid else None,
        ])
        result.lines += 1
        if currency != CURRENCY:
            result.other_currencies[currency].add(amount)  # not summed into CNY totals
            continue
        result.total.add(amount)
        (result.shop if row.bearer == SHOP else result.others).add(amount)
        if row.platform_paid:
            result.platform_paid.add(amount)
        result.by["kind"][row.kind].add(amount)
        result.by["bearer"][row.bearer].add(amount)
        result.by["process"][str(row.process)].add(amount)
        result.by["department"][row.responsible_department or UNASSIGNED].add(amount)
    last_row = max(detail.rows, 1)
    # Set after the rows: write-only mode writes the filter with the sheet's tail, at save.
    detail.sheet.auto_filter.ref = f"A1:{chr(ord('A') + len(DETAIL_COLUMNS) - 1)}{last_row}"

    _write_summary(summary, result, month, generated_at or utcnow(), tz)

    partial = output.with_name(f".{output.name}.partial")
    workbook.save(partial)
    os.replace(partial, output)
    return result


def _fit_to_width(sheet) -> None:
    """Printed (or PDF) landscape, all columns on one page wide, as many pages tall as needed."""
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = "9"  # A4
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0


def _write_summary(sheet: SheetWriter, result: ExportResult, month: Month, generated_at: datetime, tz) -> None:
    ref = quote_sheet(DETAIL_SHEET)
    amount_col = f"{ref}!${COL['amount']}:${COL['amount']}"
    currency_criterion = f'{ref}!${COL["currency"]}:${COL["currency"]},"{CURRENCY}"'
    sheet.columns([30, 32, 12, 18, 18, 18])  # widths and panes go before the first row (write-only)
    sheet.sheet.freeze_panes = "A5"
    _fit_to_width(sheet.sheet)
    sheet.append([sheet.bold(f"售后补偿月报 Compensation ledger {month} (Asia/Shanghai)", TITLE_FONT)])
    sheet.append(["生成时间 Generated", sheet.time(generated_at, tz), None, "笔数 Lines", result.lines])
    sheet.append(["金额单位 Currency", "CNY ¥", None, "核对 Check", "差额应为 ¥0.00 — difference must be ¥0.00"])
    sheet.append([])

    bearer_col = f"{ref}!${COL['bearer']}:${COL['bearer']}"
    paid_col = f"{ref}!${COL['platform_paid']}:${COL['platform_paid']}"
    sheet.header(["合计 Total", "说明 Label", "笔数 Count", "金额 Amount (formula)", "控制数 Control (export)", "差额 Difference"])
    headline = [
        # (label, explanation, COUNTIFS criteria, SUMIFS range and criteria, control)
        ("店铺承担 Shop bears", "承担方 bearer = seller", f'{bearer_col},"{SHOP}",{currency_criterion}',
         f'{amount_col},{bearer_col},"{SHOP}",{currency_criterion}', result.shop),
        ("他方承担 Others bear", "买家、快递、供应商… buyer, carrier, supplier…",
         f'{bearer_col},"<>{SHOP}",{currency_criterion}', f'{amount_col},{bearer_col},"<>{SHOP}",{currency_criterion}', result.others),
        ("平台实付 Platform paid", "对平台账单 vs. the platform's statement",
         f'{paid_col},"<>",{currency_criterion}', f"{paid_col},{currency_criterion}", result.platform_paid),
        ("全部 All CNY lines", "店铺 + 他方 shop + others (check)", currency_criterion,
         f"{amount_col},{currency_criterion}", result.total),
    ]
    for label, explanation, count_criteria, sum_arguments, control in headline:
        row = sheet.rows + 1
        sheet.append([
            sheet.bold(label), explanation,
            f"=COUNTIFS({count_criteria})",
            sheet.money_formula(f"=SUMIFS({sum_arguments})", bold=True),
            sheet.money(control.amount, bold=True),
            sheet.money_formula(f"=D{row}-E{row}", bold=True),
        ])
    for dimension, title, labels in DIMENSIONS:
        sheet.append([])
        sheet.header([title, "说明 Label", "笔数 Count", "金额 Amount (formula)", "控制数 Control (export)", "差额 Difference"])
        column = f"{ref}!${COL[dimension]}:${COL[dimension]}"
        for key, totals in sorted(result.by[dimension].items()):
            row = sheet.rows + 1
            # "="&A<n>: an exact match whatever the key holds ('<5' or '=x' are not operators then)
            criteria = f'{column},"="&$A{row},{currency_criterion}'
            sheet.append([
                sheet.text(key), labels.get(key, key),
                f"=COUNTIFS({criteria})",
                sheet.money_formula(f"=SUMIFS({amount_col},{criteria})"),
                sheet.money(totals.amount),
                sheet.money_formula(f"=D{row}-E{row}"),
            ])
    if result.other_currencies:
        sheet.append([])
        sheet.append([sheet.bold("其他币种（未计入合计）Other currencies, not in the totals")])
        for currency, totals in sorted(result.other_currencies.items()):
            sheet.append([sheet.text(currency), None, totals.count, f"{totals.amount:.2f}"])
