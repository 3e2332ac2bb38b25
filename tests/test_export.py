"""Finance exports and reporting against a real SQLite case database (no Prefect server): the
compensation workbook (sheets, formats, formulas, totals to the cent, hostile text), its rendering
by LibreOffice, the CLI, the download endpoint, satisfaction links, statistics and early warning."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from aftersales.domain.models import Case, CaseEvent, LedgerLine, OutboxMessage, Staff, WarningAlert
from aftersales.reporting.compensation import DETAIL_SHEET, SUMMARY_SHEET, export_compensation
from aftersales.reporting.months import BadMonth, Month

ROOT = Path(__file__).resolve().parents[1]
SHANGHAI = timezone(timedelta(hours=8))
HOSTILE = ['=HYPERLINK("http://evil.example","点我")', "+86 138", "-2+3", "@SUM(A1:A9)", "=1+1", "\t=cmd|' /C calc'!A0"]


def _clear_caches() -> None:
    from aftersales.domain.settings import get_settings
    from aftersales.integrations.db import get_engine

    get_settings.cache_clear()
    get_engine.cache_clear()


@pytest.fixture
def db(tmp_path, monkeypatch):
    """A fresh, migrated SQLite case database and exports folder for one test."""
    monkeypatch.setenv("AFTERSALES_DATABASE_URL", f"sqlite:///{tmp_path / 'cases.db'}")
    monkeypatch.setenv("AFTERSALES_EXPORTS_DIR", str(tmp_path / "exports"))
    monkeypatch.setenv("AFTERSALES_API_KEY", "unit-api-key")
    monkeypatch.setenv("AFTERSALES_API_PUBLIC_URL", "https://shop.example/api")
    monkeypatch.delenv("AFTERSALES_SATISFACTION_SECRET", raising=False)
    _clear_caches()
    from aftersales.integrations.db import migrate, session_scope

    migrate()
    yield session_scope
    _clear_caches()


def add_case(session, case_id: str, *, process: str = "return", customer: str = "C1", opened: datetime | None = None,
             closed: datetime | None = None, outcome: str | None = None, level: int | None = None,
             details: dict | None = None) -> Case:
    case = Case(id=case_id, process=process, order_id=f"O-{case_id}", customer_id=customer, requested_by="buyer",
                opened_at=opened or datetime(2026, 11, 5, tzinfo=timezone.utc), level=level,
                status="closed" if closed else "open", closed_at=closed, outcome=outcome, details=details or {})
    session.add(case)
    session.flush()
    return case


def add_line(session, case: Case, key: str, amount: str, created: datetime, kind: str = "refund", bearer: str = "seller",
             note: str = "", department: str = "", currency: str = "CNY") -> None:
    session.add(LedgerLine(idempotency_key=key, case_id=case.id, process=case.process, order_id=case.order_id, kind=kind,
                           amount=Decimal(amount), currency=currency, bearer=bearer, approved_by="S002",
                           platform_ref=f"RF-{key}", note=note, responsible_department=department, created_at=created))


@pytest.fixture
def ledger(db):
    """November 2026 (Asia/Shanghai) with amounts that trip binary floats, edges of the month,
    hostile notes, an empty department and a foreign-currency line; returns the expected totals."""
    inside = datetime(2026, 11, 10, 3, 0, tzinfo=timezone.utc)
    expected = {"total": Decimal("0"), "count": 0, "kind": {}, "bearer": {}, "department": {}}

    def count(amount: str, kind: str, bearer: str, department: str) -> None:
        value = Decimal(amount)
        expected["total"] += value
        expected["count"] += 1
        for name, key in (("kind", kind), ("bearer", bearer), ("department", department or "unassigned")):
            expected[name][key] = expected[name].get(key, Decimal("0")) + value

    with db() as session:
        case = add_case(session, "return-O1")
        other = add_case(session, "complaint-O2", process="complaint")
        # 0.10 + 0.20 ≠ 0.30 in binary floats; 300 of them must still total exactly
        for i in range(300):
            amount = ("0.10", "0.20", "0.30")[i % 3]
            kind, bearer, department = (("refund", "seller", "quality"), ("return_postage", "buyer", ""),
                                        ("compensation", "platform", "logistics"))[i % 3]
            add_line(session, case if i % 2 else other, f"k{i}", amount, inside + timedelta(minutes=i), kind, bearer,
                     department=department)
            count(amount, kind, bearer, department)
        # the month's first and last minute in Shanghai are in; the next month's first minute is not
        add_line(session, case, "first", "1234567.89", datetime(2026, 10, 31, 16, 0, tzinfo=timezone.utc), department="quality")
        count("1234567.89", "refund", "seller", "quality")
        add_line(session, case, "last", "99.99", datetime(2026, 11, 30, 15, 59, tzinfo=timezone.utc), department="quality")
        count("99.99", "refund", "seller", "quality")
        add_line(session, case, "december", "5000.00", datetime(2026, 11, 30, 16, 0, tzinfo=timezone.utc))
        add_line(session, case, "october", "7000.00", datetime(2026, 10, 31, 15, 59, tzinfo=timezone.utc))
        for i, text in enumerate(HOSTILE):
            add_line(session, case, f"hostile{i}", "1.01", inside + timedelta(days=1, minutes=i), kind="compensation",
                     bearer="seller", note=text, department="after_sales")
            count("1.01", "compensation", "seller", "after_sales")
        add_line(session, case, "usd", "3.00", inside, currency="USD")
    return expected


def test_compensation_workbook_sheets_formats_and_totals(ledger, tmp_path):
    output = tmp_path / "compensation-2026-11.xlsx"
    result = export_compensation(Month.parse("2026-11"), output)
    assert result.total.amount == ledger["total"] and result.total.count == ledger["count"]
    assert result.lines == ledger["count"] + 1  # the USD line is listed, not summed

    book = openpyxl.load_workbook(output)
    assert book.sheetnames == [SUMMARY_SHEET, DETAIL_SHEET]
    detail = book[DETAIL_SHEET]
    headers = [cell.value for cell in detail[1]]
    assert headers[0] == "日期 Date (Asia/Shanghai)" and "金额 Amount" in headers and "备注 Note" in headers
    assert all(re.search(r"[\u4e00-\u9fff]", h) and re.search(r"[A-Za-z]", h) for h in headers)  # Chinese + English
    assert detail.freeze_panes == "A2"
    assert detail.auto_filter.ref == f"A1:M{result.lines + 1}"  # M: 平台实付 Platform paid
    assert detail.column_dimensions["B"].width >= 20 and detail.column_dimensions["L"].width >= 40

    rows = list(detail.iter_rows(min_row=2))
    assert len(rows) == result.lines
    amounts = [row[5] for row in rows]
    assert {cell.number_format for cell in amounts} == {"¥#,##0.00"}
    assert all(cell.data_type == "n" for cell in amounts)
    # the cells add up to the ledger's Decimal total to the cent (each float read back is exact)
    cny = sum(Decimal(str(row[5].value)) for row in rows if row[6].value == "CNY")
    assert cny == ledger["total"]
    # times are Shanghai wall-clock: the first line is 2026-11-01 00:00 there
    assert rows[0][0].value == datetime(2026, 11, 1, 0, 0) and rows[0][0].number_format == "yyyy-mm-dd hh:mm"
    assert rows[-1][0].value.month == 11

    notes = {row[11].value: row[11] for row in rows if row[11].value}
    for text in HOSTILE:
        cell = notes[text]  # verbatim, as text: never a formula
        assert cell.data_type == "s" and cell.quotePrefix, text
    raw = _sheet_xml(output, DETAIL_SHEET)
    assert "<f>" not in raw  # no formula anywhere in the detail sheet

    summary = book[SUMMARY_SHEET]
    cells = {cell.coordinate: cell for row in summary.iter_rows() for cell in row}
    total_row = next(c.row for c in cells.values() if c.value == "全部 All CNY lines")
    amount, control, difference = cells[f"D{total_row}"], cells[f"E{total_row}"], cells[f"F{total_row}"]
    assert amount.value == "=SUMIFS('明细 Detail'!$F:$F,'明细 Detail'!$G:$G,\"CNY\")"
    assert amount.number_format == "¥#,##0.00" and control.number_format == "¥#,##0.00"
    assert Decimal(str(control.value)) == ledger["total"]
    assert difference.value == f"=D{total_row}-E{total_row}"
    # every per-key row: COUNTIFS/SUMIFS over the detail column, control total as computed here
    by_key = {}
    for row in summary.iter_rows(min_row=total_row + 1):
        if row[3].value and str(row[3].value).startswith("=SUMIFS"):
            by_key.setdefault(row[0].value, []).append((row[3].value, Decimal(str(row[4].value))))
    assert by_key["refund"][0][1] == ledger["kind"]["refund"] and "'明细 Detail'!$E:$E" in by_key["refund"][0][0]
    assert by_key["seller"][0][1] == ledger["bearer"]["seller"] and "$H:$H" in by_key["seller"][0][0]
    assert by_key["unassigned"][0][1] == ledger["department"]["unassigned"] and "$I:$I" in by_key["unassigned"][0][0]
    assert by_key["return"][0][1] + by_key["complaint"][0][1] == ledger["total"]
    # the formulas agree with the detail rows: evaluate them the way a spreadsheet would
    assert _sumifs(rows, 4, "refund") == ledger["kind"]["refund"]
    assert _sumifs(rows, 8, "unassigned") == ledger["department"]["unassigned"]


def _sumifs(rows, column: int, key: str) -> Decimal:
    return sum((Decimal(str(r[5].value)) for r in rows if r[column].value == key and r[6].value == "CNY"), Decimal("0"))


def _sheet_xml(path: Path, title: str) -> str:
    import zipfile

    book = openpyxl.load_workbook(path, read_only=True)
    index = book.sheetnames.index(title) + 1
    book.close()
    with zipfile.ZipFile(path) as archive:
        return archive.read(f"xl/worksheets/sheet{index}.xml").decode()


def test_months_are_shanghai_months_and_bad_months_are_refused():
    november = Month.parse("2026-11")
    assert november.start() == datetime(2026, 10, 31, 16, 0, tzinfo=timezone.utc)
    assert november.end() == datetime(2026, 11, 30, 16, 0, tzinfo=timezone.utc)
    assert Month.previous(datetime(2026, 12, 1, 6, 0, tzinfo=SHANGHAI)) == november
    assert Month.previous(datetime(2026, 1, 1, 6, 0, tzinfo=SHANGHAI)) == Month(2025, 12)
    # 1 Dec 06:00 in Shanghai is still 30 Nov in UTC: the month is judged in Shanghai
    assert Month.previous(datetime(2026, 11, 30, 22, 0, tzinfo=timezone.utc)) == november
    for bad in ("2026-13", "2026-1", "26-11", "2026/11", "", "2026-00", "november"):
        with pytest.raises(BadMonth):
            Month.parse(bad)


def test_an_empty_month_gives_a_valid_workbook(db, tmp_path):
    result = export_compensation(Month.parse("2020-02"), tmp_path / "empty.xlsx")
    assert result.lines == 0 and result.total.amount == Decimal("0")
    book = openpyxl.load_workbook(tmp_path / "empty.xlsx")
    assert book[DETAIL_SHEET].max_row == 1


def test_the_summary_separates_what_the_shop_bears_and_what_the_platform_paid(db, tmp_path):
    """The reported defect: a free-shipping no-reason return refunded 122.00 at the platform (the
    buyer's 6.00 half of the outbound postage deducted) must read 122.00 on its refund line, and the
    summary must not add what the buyer (or a carrier) bears to the shop's costs."""
    at = datetime(2026, 11, 12, 2, 0, tzinfo=timezone.utc)
    lines = [  # (key, kind, amount, bearer, platform_ref, platform_paid)
        ("refund", "refund", "122.00", "seller", "RF00000001", True),
        ("out-buyer", "outbound_postage", "6.00", "buyer", "", False),  # deducted from RF00000001: informational
        ("out-seller", "outbound_postage", "6.00", "seller", "", False),
        ("back-buyer", "return_postage", "10.00", "buyer", "", False),
        ("carrier-cash", "compensation", "20.00", "carrier", "RF00000002", True),  # paid by the platform, borne by the carrier
        ("reship", "reshipment", "35.00", "seller", "RS00000001", False),  # goods, no money through the platform
    ]
    with db() as session:
        case = add_case(session, "return-FREE")
        for i, (key, kind, amount, bearer, ref, paid) in enumerate(lines):
            session.add(LedgerLine(idempotency_key=key, case_id=case.id, process=case.process, order_id=case.order_id, kind=kind,
                                   amount=Decimal(amount), bearer=bearer, approved_by="S004", platform_ref=ref,
                                   platform_paid=paid, created_at=at + timedelta(minutes=i)))
        add_line(session, case, "usd", "3.00", at, currency="USD")  # listed, never summed into CNY totals
    output = tmp_path / "free.xlsx"
    result = export_compensation(Month.parse("2026-11"), output)
    assert (result.shop.amount, result.shop.count) == (Decimal("163.00"), 3)  # 122 + 6 + 35: not the buyer's 16
    assert (result.others.amount, result.others.count) == (Decimal("36.00"), 3)
    assert (result.platform_paid.amount, result.platform_paid.count) == (Decimal("142.00"), 2)
    assert result.total.amount == result.shop.amount + result.others.amount == Decimal("199.00")

    book = openpyxl.load_workbook(output)
    detail = list(book[DETAIL_SHEET].iter_rows(min_row=1))
    assert detail[0][12].value == "平台实付 Platform paid"
    by_key = {row[10].value or row[4].value: row for row in detail[1:] if row[6].value == "CNY"}
    assert by_key["RF00000001"][5].value == 122 and by_key["RF00000001"][12].value == 122
    assert by_key["RF00000001"][12].number_format == "¥#,##0.00" and by_key["RF00000001"][12].data_type == "n"
    assert by_key["RF00000002"][12].value == 20
    assert all(row[12].value is None for key, row in by_key.items() if not key.startswith("RF"))

    summary = {row[0].value: row for row in book[SUMMARY_SHEET].iter_rows() if isinstance(row[0].value, str)}
    detail_ref = "'明细 Detail'!"
    cny = f'{detail_ref}$G:$G,"CNY"'
    expected = {
        "店铺承担 Shop bears": (f'=SUMIFS({detail_ref}$F:$F,{detail_ref}$H:$H,"seller",{cny})',
                              f'=COUNTIFS({detail_ref}$H:$H,"seller",{cny})', result.shop),
        "他方承担 Others bear": (f'=SUMIFS({detail_ref}$F:$F,{detail_ref}$H:$H,"<>seller",{cny})',
                               f'=COUNTIFS({detail_ref}$H:$H,"<>seller",{cny})', result.others),
        "平台实付 Platform paid": (f"=SUMIFS({detail_ref}$M:$M,{cny})", f'=COUNTIFS({detail_ref}$M:$M,"<>",{cny})',
                                 result.platform_paid),
    }
    for label, (sum_formula, count_formula, control) in expected.items():
        row = summary[label]
        assert (row[2].value, row[3].value) == (count_formula, sum_formula), label
        assert Decimal(str(row[4].value)) == control.amount and row[4].number_format == "¥#,##0.00", label
        assert row[5].value == f"=D{row[0].row}-E{row[0].row}", label
    # the formulas, evaluated over the detail rows: the same figures, so every difference is ¥0.00
    rows = detail[1:]
    cny_rows = [r for r in rows if r[6].value == "CNY"]
    assert sum(Decimal(str(r[5].value)) for r in cny_rows if r[7].value == "seller") == result.shop.amount
    assert sum(Decimal(str(r[5].value)) for r in cny_rows if r[7].value != "seller") == result.others.amount
    assert sum(Decimal(str(r[12].value)) for r in cny_rows if r[12].value is not None) == result.platform_paid.amount
    # the all-lines figure stays, as a check (shop + others), below the three that finance settles
    assert summary["全部 All CNY lines"][0].row > summary["平台实付 Platform paid"][0].row
    assert Decimal(str(summary["全部 All CNY lines"][4].value)) == result.total.amount


def test_ledger_lines_written_before_the_platform_paid_column_stay_uncertified(tmp_path, monkeypatch):
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from aftersales.integrations.db import MIGRATIONS, get_engine, migrate

    url = f"sqlite:///{tmp_path / 'old.db'}"
    monkeypatch.setenv("AFTERSALES_DATABASE_URL", url)
    _clear_caches()
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "0003_order_tracking")
    engine = sa.create_engine(url)  # SQLite without the app's pragmas: no foreign-key check for this bare row
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO ledger_line (idempotency_key, case_id, process, order_id, kind, amount, currency, bearer,"
                             " responsible_department, approved_by, platform_ref, note, created_at) VALUES ('old', 'return-OLD',"
                             " 'return', 'O-OLD', 'refund', '128.00', 'CNY', 'seller', '', 'S004', 'RF1', '', '2026-11-02 00:00:00')"))
    engine.dispose()
    migrate(url)
    with get_engine().connect() as conn:
        assert conn.execute(sa.text("SELECT platform_paid FROM ledger_line WHERE idempotency_key = 'old'")).scalar_one() in (0, False)
    _clear_caches()


@pytest.mark.skipif(not (shutil.which("soffice") and shutil.which("pdftotext")),
                    reason="LibreOffice/pdftotext missing: run scripts/ensure-tools.sh")
def test_libreoffice_renders_the_totals(ledger, tmp_path):
    output = tmp_path / "compensation-2026-11.xlsx"
    export_compensation(Month.parse("2026-11"), output)
    profile = tmp_path / "lo-profile"  # a private profile: parallel runs do not share a lock
    subprocess.run(["soffice", f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to", "pdf",
                    "--outdir", str(tmp_path), str(output)], check=True, capture_output=True, timeout=180)
    text = subprocess.run(["pdftotext", "-layout", str(output.with_suffix(".pdf")), "-"], check=True,
                          capture_output=True, text=True).stdout
    grand = f"¥{ledger['total']:,.2f}"
    # the formula's result (computed by LibreOffice) and the control total both show the total
    total_line = next(line for line in text.splitlines() if "All CNY lines" in line)
    assert total_line.count(grand) == 2 and "¥0.00" in total_line, total_line
    for kind in ("refund", "return_postage", "compensation"):
        line = next(line for line in text.splitlines() if line.strip().startswith(kind + " "))
        assert line.count(f"¥{ledger['kind'][kind]:,.2f}") == 2, line
    line = next(line for line in text.splitlines() if line.strip().startswith("unassigned "))
    assert line.count(f"¥{ledger['department']['unassigned']:,.2f}") == 2, line
    assert '=HYPERLINK("http://evil.example","点我")' in text and "@SUM(A1:A9)" in text  # shown as text


def test_cli_exports_a_month_and_refuses_a_bad_one(ledger, tmp_path):
    env = {**os.environ, "PREFECT_API_URL": ""}
    target = tmp_path / "finance.xlsx"
    done = subprocess.run([sys.executable, "-m", "aftersales.deployments.cli", "export", "compensation", "--month", "2026-11",
                           "--output", str(target)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
    assert f"{ledger['total']:,.2f}" in done.stdout and target.is_file()
    assert openpyxl.load_workbook(target).sheetnames == [SUMMARY_SHEET, DETAIL_SHEET]

    bad = subprocess.run([sys.executable, "-m", "aftersales.deployments.cli", "export", "compensation", "--month", "2026-13"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no such month" in bad.stdout + bad.stderr


def test_download_needs_the_key_and_cannot_leave_the_exports_folder(ledger, tmp_path):
    from aftersales.api.app import create_app
    from aftersales.domain.settings import get_settings

    export_compensation(Month.parse("2026-11"), get_settings().exports_dir / "compensation-2026-11.xlsx")
    (tmp_path / "secret.xlsx").write_bytes(b"not for you")
    client = TestClient(create_app())
    key = {"X-Api-Key": "unit-api-key"}
    assert client.get("/exports/compensation-2026-11.xlsx").status_code == 401
    assert client.get("/exports/compensation-2026-11.xlsx", headers={"X-Api-Key": "wrong"}).status_code == 401
    ok = client.get("/exports/compensation-2026-11.xlsx", headers=key)
    assert ok.status_code == 200 and ok.content[:2] == b"PK"
    assert "spreadsheetml" in ok.headers["content-type"] and "compensation-2026-11.xlsx" in ok.headers["content-disposition"]
    for attempt in ("../secret.xlsx", "..%2Fsecret.xlsx", "%2e%2e%2fsecret.xlsx", "..", ".hidden.xlsx",
                    "cases.db", "missing.xlsx", "..%5Csecret.xlsx"):
        response = client.get(f"/exports/{attempt}", headers=key)
        assert response.status_code == 404, (attempt, response.status_code)
        assert b"not for you" not in response.content


# --- satisfaction ------------------------------------------------------------------------------


def _closed_case(session, case_id: str, closed: datetime | None = None, customer: str = "C1") -> Case:
    return add_case(session, case_id, customer=customer, closed=closed or datetime(2026, 11, 20, tzinfo=timezone.utc),
                    outcome="refunded", details={"customer": {"customer_id": customer, "name": "韩梅梅", "phone": "13812345678",
                                                              "language": "en" if customer.endswith("E") else "zh-CN"}})


def test_satisfaction_links_are_signed_and_answered_once(db):
    from aftersales.api.app import create_app
    from aftersales.domain.details import details_of
    from aftersales.reporting import satisfaction

    with db() as session:
        case = _closed_case(session, "return-S1")
        satisfaction.request_after_close(session, case)
        satisfaction.request_after_close(session, case)  # a replayed close asks once
        open_case = add_case(session, "return-S2", details={"customer": {"customer_id": "C2", "phone": "1"}})
    with db() as session:
        messages = list(session.exec(select(OutboxMessage).where(OutboxMessage.case_id == "return-S1")))
    assert len(messages) == 1 and messages[0].audience == "customer"
    link = re.search(r"https://shop\.example/api/satisfaction/(\S+)", messages[0].body)
    assert link, messages[0].body
    token = link.group(1)
    assert satisfaction.read_token(token) == "return-S1"

    client = TestClient(create_app())
    forged = satisfaction.make_token("return-S1")[:-2] + "xx"
    other = token.split(".")[0] + "." + satisfaction.make_token("return-S2").split(".")[1]  # signature of another case
    # the signed link is the credential: no API key (every other route still wants one)
    assert client.get("/health").status_code == 401 and client.get("/cases/return-S1").status_code == 401
    for bad in (forged, other, "garbage", "a.b"):
        assert client.post(f"/satisfaction/{bad}", json={"score": 5}).status_code == 403
        refused = client.get(f"/satisfaction/{bad}")
        assert refused.status_code == 403 and "链接无效" in refused.text
    assert client.post(f"/satisfaction/{token}", json={"score": 6}).status_code == 422
    assert client.post(f"/satisfaction/{satisfaction.make_token(open_case.id)}", json={"score": 3}).status_code == 409
    assert client.get(f"/satisfaction/{satisfaction.make_token(open_case.id)}").status_code == 409
    shown = client.get(f"/satisfaction/{token}")
    assert shown.status_code == 200 and 'name="score"' in shown.text and "韩梅梅" not in shown.text
    # the page's own form: no score is refused on the page, nothing recorded
    unscored = client.post(f"/satisfaction/{token}", data={"comment": "x"})
    assert unscored.status_code == 422 and "请选择 1–5 分" in unscored.text
    first = client.post(f"/satisfaction/{token}", data={"score": "4", "comment": "快 <b>"})
    assert first.status_code == 201 and "感谢您的评价" in first.text
    again = client.post(f"/satisfaction/{token}", json={"score": 1})
    assert again.status_code == 409  # one answer per case
    repeated = client.post(f"/satisfaction/{token}", data={"score": "1"})
    assert repeated.status_code == 409 and "您已评价过" in repeated.text and "4 分" in repeated.text
    assert "您已评价过" in client.get(f"/satisfaction/{token}").text
    with db() as session:
        case = session.get(Case, "return-S1")
        answers = list(session.exec(select(CaseEvent).where(CaseEvent.case_id == "return-S1", CaseEvent.action == "satisfaction.answered")))
    assert details_of(case).satisfaction.score == 4 and [a.details["score"] for a in answers] == [4]
    assert answers[0].details["comment"] == "快 <b>" and answers[0].actor == "buyer"


def test_a_buyer_without_a_channel_does_not_stop_the_close(db):
    from aftersales.reporting import satisfaction

    with db() as session:
        case = add_case(session, "return-N1", closed=datetime(2026, 11, 20, tzinfo=timezone.utc), outcome="refunded",
                        details={"customer": {"name": "无联系方式"}})  # customer_url cannot be built
        satisfaction.request_after_close(session, case)
        session.add(CaseEvent(case_id=case.id, key="after", actor="system", action="still.works"))
    with db() as session:
        assert session.exec(select(CaseEvent).where(CaseEvent.case_id == "return-N1", CaseEvent.key == "after")).one()


def test_quarterly_survey_asks_unscored_buyers_once(db):
    from aftersales.flows.satisfaction import previous_quarter
    from aftersales.reporting import satisfaction

    label, start, end = previous_quarter(datetime(2027, 1, 1, 10, 0, tzinfo=SHANGHAI))
    assert label == "2026Q4"
    with db() as session:
        _closed_case(session, "return-Q1")
        _closed_case(session, "return-Q2E", customer="C2E")
        _closed_case(session, "return-Q3", closed=datetime(2026, 9, 30, 15, 0, tzinfo=timezone.utc))  # Q3 in Shanghai
        add_case(session, "return-Q4")  # still open
    with db() as session:
        scored = session.get(Case, "return-Q1")
    satisfaction.request_after_close  # noqa: B018 (the close-time request is tested above)
    from aftersales.reporting.satisfaction import make_token, record_answer

    record_answer(make_token(scored.id), 5)
    assert satisfaction.survey(label, start, end) == {"asked": 1, "skipped": 0}
    assert satisfaction.survey(label, start, end) == {"asked": 0, "skipped": 1}  # a re-run asks nobody twice
    with db() as session:
        asked = list(session.exec(select(OutboxMessage).where(OutboxMessage.key.like("%satisfaction-survey-2026Q4%"))))
    assert [m.case_id for m in asked] == ["return-Q2E"]
    assert "2026Q4" in asked[0].body and asked[0].language == "en" and "rate" in asked[0].body


# --- statistics -----------------------------------------------------------------------------------


def test_monthly_statistics(db, tmp_path):
    from aftersales.reporting.statistics import monthly_statistics, to_markdown, write_statistics_workbook

    t0 = datetime(2026, 11, 3, 1, 0, tzinfo=timezone.utc)
    with db() as session:
        session.add(Staff(id="S001", name="王小明", role="agent", totp_secret="X"))
        a = add_case(session, "return-A", opened=t0, closed=t0 + timedelta(hours=10), outcome="refunded")
        b = add_case(session, "return-B", opened=t0, closed=t0 + timedelta(hours=30), outcome="partly_refunded")
        add_case(session, "return-C", opened=t0, closed=t0 + timedelta(hours=2), outcome="refused")
        add_case(session, "complaint-1", process="complaint", customer="K1", level=1, opened=t0)
        add_case(session, "complaint-2", process="complaint", customer="K1", level=2, opened=t0 + timedelta(days=3))
        add_case(session, "complaint-3", process="complaint", customer="K2", level=2, opened=t0 + timedelta(days=4))
        add_case(session, "return-old", opened=t0 - timedelta(days=40))
        for case, hours in ((a, 1), (b, 3)):
            session.add(CaseEvent(case_id=case.id, key="opened", actor="S001", action="case.opened", at=case.opened_at))
            session.add(CaseEvent(case_id=case.id, key="buyer-note", actor="buyer", action="note", at=case.opened_at + timedelta(minutes=5)))
            session.add(CaseEvent(case_id=case.id, key="review", actor="S001", action="wait.accepted", at=case.opened_at + timedelta(hours=hours)))
        for case, score in ((a, 5), (b, 2)):
            session.add(CaseEvent(case_id=case.id, key="satisfaction-request", actor="system", action="satisfaction.requested", at=t0 + timedelta(days=2)))
            session.add(CaseEvent(case_id=case.id, key="satisfaction-answer", actor="buyer", action="satisfaction.answered",
                                  at=t0 + timedelta(days=3), details={"score": score}))
    stats = monthly_statistics(Month.parse("2026-11"))
    rows = {row["group"]: row for row in stats.rows()}
    everything = rows["all"]
    assert everything["opened"] == 6 and everything["closed"] == 3
    assert everything["avg_first_response_h"] == 2.0  # (1 h + 3 h) / 2; the buyer's note does not count
    assert everything["avg_handling_h"] == 14.0  # (10 + 30 + 2) / 3
    assert everything["satisfaction_avg"] == 3.5 and everything["reply_rate"] == 1.0
    assert (everything["resolved"], everything["partly_resolved"], everything["unresolved"]) == (1, 1, 1)
    assert everything["complaints"] == 3 and everything["complaint_rate"] == 0.5
    assert everything["repeat_complaint_rate"] == round(1 / 3, 4)
    assert rows["process:complaint"]["complaints"] == 3 and rows["level:2"]["opened"] == 2
    assert rows["level:2"]["repeat_complaint_rate"] == 0.5
    markdown = to_markdown(stats)
    assert "| all | 6 | 3 | 2.0 | 14.0 | 3.5 |" in markdown
    book = openpyxl.load_workbook(write_statistics_workbook(stats, tmp_path / "statistics.xlsx"))
    sheet = book["统计 Statistics"]
    assert sheet["A4"].value == "all" and sheet["B4"].value == 6
    assert sheet["J4"].number_format == "0.0%" and sheet["J4"].value == 0.5
    assert "口径 Definitions" in book.sheetnames


# One month of cases, every process, written out by hand: (case id, process, customer, complaint
# level, opened, closed, outcome, the result 002 §7.1 gives that outcome as this test reads the
# rulebook — not looked up in domain/outcomes.py). November 2026 in Shanghai is
# [31 Oct 16:00 UTC, 30 Nov 16:00 UTC).
NOV = datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc)
NOV_START, NOV_END = datetime(2026, 10, 31, 16, 0, tzinfo=timezone.utc), datetime(2026, 11, 30, 16, 0, tzinfo=timezone.utc)


def _d(days: float, hours: float = 0) -> datetime:
    return NOV + timedelta(days=days, hours=hours)


MONTH_CASES = [
    ("return-R1", "return", "B1", None, _d(0), _d(0, 10), "refunded", "resolved"),
    ("return-R2", "return", "B2", None, _d(1), _d(3), "closed_not_shipped", "withdrawn"),  # the buyer never shipped
    ("return-R3", "return", "B3", None, datetime(2026, 10, 31, 15, 45, tzinfo=timezone.utc), _d(2), "refused", "unresolved"),  # opened in October
    ("return-R5", "return", "B5", None, NOV_START, datetime(2026, 11, 30, 15, 45, tzinfo=timezone.utc), "refunded_automatically", "resolved"),
    ("return-R6", "return", "B6", None, _d(4), _d(4, 1), "legacy_word", "other"),  # a word from before the vocabulary
    ("return-R4", "return", "B4", None, NOV_END, NOV_END + timedelta(days=1), "refunded", "resolved"),  # December
    ("exchange-E1", "exchange", "B7", None, _d(2), _d(4, 6), "exchanged", "resolved"),
    ("exchange-E2", "exchange", "B8", None, _d(5), None, None, None),
    ("compensation-C1", "compensation", "B9", None, _d(3), _d(3, 5), "compensated", "resolved"),
    ("compensation-C2", "compensation", "B10", None, _d(3, 2), _d(6), "declined_no_answer", "unresolved"),
    ("out_of_area-X1", "out_of_area", "B11", None, _d(4), _d(5), "carrier_switched", "resolved"),
    ("repair-P1", "repair", "B12", None, _d(6), _d(20), "repaired", "resolved"),
    ("repair-P2", "repair", "B13", None, _d(7), _d(8), "repair_withdrawn", "withdrawn"),
    ("review-V1", "review", "B14", None, _d(8), _d(9), "no_offer_made", "partly_resolved"),
    ("review-V2", "review", "B15", None, _d(8, 1), _d(8, 3), "reported_malicious", "withdrawn"),
    ("wrong_shipment-W1", "wrong_shipment", "B16", None, _d(9), _d(10), "reshipped_correct_items", "resolved"),
    ("wrong_shipment-W2", "wrong_shipment", "B17", None, _d(9, 1), _d(9, 4), "corrected_before_dispatch", "resolved"),
    ("wrong_shipment-W3", "wrong_shipment", "B18", None, _d(10), _d(11), "refunded_wrong_items", "resolved"),
    ("dispute-D1", "dispute", "B19", None, _d(11), _d(15), "rejected", "unresolved"),
    ("dispute-D2", "dispute", "B20", None, _d(12), _d(13), "withdrawn", "withdrawn"),
    ("complaint-K0", "complaint", "K1", 1, datetime(2026, 10, 20, 2, 0, tzinfo=timezone.utc), _d(1), "resolved", "resolved"),  # October
    ("complaint-K1", "complaint", "K1", 1, _d(1), _d(2), "resolved", "resolved"),  # K1's October complaint is another month
    ("complaint-K2", "complaint", "K1", 2, _d(14), _d(16), "partly_resolved", "partly_resolved"),  # repeat
    ("complaint-K3", "complaint", "K2", 2, _d(14, 1), None, None, None),
    ("complaint-K4", "complaint", "K2", 3, _d(20), NOV_END + timedelta(days=2), "unresolved", "unresolved"),  # repeat, closed in December
    ("complaint-K5", "complaint", "K1", 3, _d(21), _d(22), "unresolved", "unresolved"),  # repeat
    ("tracking-T1", "tracking", "B21", None, _d(15), _d(15, 0.5), "buyer_contacted", "resolved"),
    ("enquiry-Q1", "enquiry", "B22", None, _d(16), _d(16, 2), "answered", "resolved"),
    ("enquiry-Q2", "enquiry", "B23", None, _d(17), _d(17, 1), "converted", "withdrawn"),  # counted as the return it became
    ("emergency-M1", "emergency", "", None, _d(18), _d(19), "resolved", "resolved"),
]
# events: (case id, actor, key, hours after the case opened); S001/S002 are staff, S999 is not
MONTH_EVENTS = [
    ("return-R1", "S001", "opened", 0), ("return-R1", "buyer", "buyer-note", 0.25), ("return-R1", "S001", "review", 1),
    ("return-R1", "S002", "refund", 5),
    ("exchange-E1", "system", "reminder", 0.25), ("exchange-E1", "S002", "review", 2.5),
    ("compensation-C1", "S001", "approval", 0.75),
    ("wrong_shipment-W1", "buyer", "photos", 0.5),  # a buyer's note only: no first response
    ("wrong_shipment-W2", "S002", "stop-dispatch", 0.25),
    ("dispute-D1", "S001", "evidence", 24),
    ("complaint-K1", "S002", "opened", 0), ("complaint-K1", "S002", "call", 3.5),
    ("complaint-K2", "S001", "call", 1.5),
    ("complaint-K3", "S999", "call", 0.5),  # not a staff id
    ("complaint-K4", "S001", "call", 12 * 24),  # answered in December: still this case's first response
    ("return-R3", "S001", "review", 24),  # opened in October: not this month's
    ("return-R4", "S001", "review", 1),  # opened in December
]
# satisfaction: (case id, action, at, score)
MONTH_SATISFACTION = [
    ("return-R1", "satisfaction.requested", _d(1), None), ("return-R1", "satisfaction.answered", _d(2), 5),
    ("return-R3", "satisfaction.requested", _d(2, 1), None), ("return-R3", "satisfaction.answered", _d(3), 4),
    ("compensation-C1", "satisfaction.requested", _d(4), None), ("compensation-C1", "satisfaction.answered", _d(5), 4),
    ("wrong_shipment-W1", "satisfaction.requested", _d(10, 1), None), ("wrong_shipment-W1", "satisfaction.answered", _d(11), 2),
    ("review-V1", "satisfaction.requested", _d(9, 1), None),  # never answered
    ("complaint-K0", "satisfaction.requested", datetime(2026, 10, 31, 15, 0, tzinfo=timezone.utc), None),  # October
    ("complaint-K1", "satisfaction.requested", _d(2, 1), None), ("complaint-K1", "satisfaction.answered", _d(3), 3),
    ("complaint-K2", "satisfaction.requested", _d(16, 1), None),
    ("complaint-K2", "satisfaction.answered", NOV_END + timedelta(hours=1), 1),  # answered in December
    ("complaint-K5", "satisfaction.requested", _d(22, 1), None), ("complaint-K5", "satisfaction.answered", _d(23), 1),
    ("tracking-T1", "satisfaction.requested", _d(16), None), ("tracking-T1", "satisfaction.answered", _d(17), 5),
]
STATISTICS_HEADERS = {
    "分组 Group": "group", "新开案件 Opened": "opened", "结案 Closed": "closed",
    "平均首次响应(小时) Avg first response (h)": "avg_first_response_h", "平均处理时长(小时) Avg handling (h)": "avg_handling_h",
    "满意度均分 Satisfaction (1–5)": "satisfaction_avg", "评分数 Answers": "satisfaction_answers", "回复率 Reply rate": "reply_rate",
    "投诉 Complaints": "complaints", "投诉率 Complaint rate": "complaint_rate", "重复投诉率 Repeat complaint rate": "repeat_complaint_rate",
    "已解决 Resolved": "resolved", "部分解决 Partly": "partly_resolved", "未解决 Unresolved": "unresolved",
    "撤回 Withdrawn": "withdrawn", "其他 Other": "other", "解决率 Resolved rate": "resolved_rate",
}
STATISTICS_RATES = {"reply_rate", "complaint_rate", "repeat_complaint_rate", "resolved_rate"}


def _expected_month_rows() -> list[dict]:
    """Every figure of every row, recomputed from MONTH_* the way the 口径 Definitions sheet says."""
    def inside(moment: datetime | None) -> bool:
        return moment is not None and NOV_START <= moment < NOV_END

    def hours(start: datetime, end: datetime) -> float:
        return (end - start).total_seconds() / 3600

    def mean(values: list) -> float | None:
        return round(sum(values) / len(values), 2) if values else None

    def share(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    cases = {c[0]: c for c in MONTH_CASES}
    figures: dict[str, dict] = {}

    def groups(case_id: str) -> list[dict]:
        _id, process, _customer, level, *_ = cases[case_id]
        names = ["all", f"process:{process}"] + ([f"level:{level}"] if level is not None else [])
        return [figures.setdefault(name, {"opened": 0, "closed": 0, "first": [], "handling": [], "scores": [], "requests": 0,
                                          "complaints": 0, "repeats": 0, "results": []}) for name in names]

    figures.setdefault("all", groups("return-R1")[0])
    staff = {"S001", "S002"}
    complaints_in_month = sorted((c for c in MONTH_CASES if c[1] == "complaint" and inside(c[4])), key=lambda c: (c[4], c[0]))
    repeats = {c[0] for i, c in enumerate(complaints_in_month) if any(earlier[2] == c[2] for earlier in complaints_in_month[:i])}
    for case_id, process, _customer, _level, opened, closed, _outcome, result in MONTH_CASES:
        if inside(opened):
            staff_times = [opened + timedelta(hours=h) for cid, actor, key, h in MONTH_EVENTS
                           if cid == case_id and actor in staff and key != "opened"]
            for group in groups(case_id):
                group["opened"] += 1
                if staff_times:
                    group["first"].append(hours(opened, min(staff_times)))
                if process == "complaint":
                    group["complaints"] += 1
                    group["repeats"] += case_id in repeats
        if inside(closed):
            for group in groups(case_id):
                group["closed"] += 1
                group["handling"].append(hours(opened, closed))
                group["results"].append(result)
    for case_id, action, at, score in MONTH_SATISFACTION:
        if inside(at):
            for group in groups(case_id):
                if action == "satisfaction.answered":
                    group["scores"].append(score)
                else:
                    group["requests"] += 1
    all_opened = figures["all"]["opened"]
    rows = []
    for name in ["all"] + sorted(n for n in figures if n != "all"):
        f = figures[name]
        counted = {r: f["results"].count(r) for r in ("resolved", "partly_resolved", "unresolved", "withdrawn", "other")}
        rows.append({
            "group": name, "opened": f["opened"], "closed": f["closed"],
            "avg_first_response_h": mean(f["first"]), "avg_handling_h": mean(f["handling"]),
            "satisfaction_avg": mean(f["scores"]), "satisfaction_answers": len(f["scores"]),
            "reply_rate": share(len(f["scores"]), f["requests"]),
            "complaints": f["complaints"], "complaint_rate": share(f["complaints"], all_opened),
            "repeat_complaint_rate": share(f["repeats"], f["complaints"]),
            **counted,
            "resolved_rate": share(counted["resolved"], counted["resolved"] + counted["partly_resolved"] + counted["unresolved"]),
        })
    return rows


def test_monthly_statistics_every_figure_recomputed_from_the_cases(db, tmp_path):
    """Issue 16: every figure of every row (all, process:<p>, level:<n>) recomputed here from the
    cases and events inserted, and compared to stats.rows(), to every cell of the 统计 Statistics
    sheet and to the markdown table. Withdrawn cases (a return the buyer never shipped, a repair
    withdrawn, a malicious review, a dispute withdrawn) have a column of their own and stay out of
    the resolved rate; the wrong shipment's outcomes count as resolved."""
    from aftersales.domain.models import Process
    from aftersales.reporting.statistics import monthly_statistics, to_markdown, write_statistics_workbook

    assert {c[1] for c in MONTH_CASES} == {p.value for p in Process}  # every process is in the month
    cases = {c[0]: c for c in MONTH_CASES}
    with db() as session:
        session.add(Staff(id="S001", name="王小明", role="agent", totp_secret="X"))
        session.add(Staff(id="S002", name="李雷", role="supervisor", totp_secret="Y"))
        for case_id, process, customer, level, opened, closed, outcome, _result in MONTH_CASES:
            add_case(session, case_id, process=process, customer=customer, level=level, opened=opened, closed=closed, outcome=outcome)
        for case_id, actor, key, after in MONTH_EVENTS:
            session.add(CaseEvent(case_id=case_id, key=key, actor=actor, action="case.opened" if key == "opened" else "note",
                                  at=cases[case_id][4] + timedelta(hours=after)))
        for i, (case_id, action, at, score) in enumerate(MONTH_SATISFACTION):
            session.add(CaseEvent(case_id=case_id, key=f"satisfaction-{i}", actor="buyer" if score else "system", action=action, at=at,
                                  details={"score": score} if score else {}))
    expected = _expected_month_rows()
    everything = expected[0]
    # the figures the issue was about, spelled out: 5 withdrawn (a converted ticket too), 3 wrong shipments resolved, 1 "other"
    assert (everything["withdrawn"], everything["other"], _row_of(expected, "process:wrong_shipment")["resolved"]) == (5, 1, 3)
    assert [everything[k] for k in ("closed", "resolved", "partly_resolved", "unresolved")] == [26, 14, 2, 4]
    assert everything["resolved_rate"] == round(14 / (14 + 2 + 4), 4)  # withdrawn and other are outside it

    stats = monthly_statistics(Month.parse("2026-11"))
    assert stats.rows() == expected

    book = openpyxl.load_workbook(write_statistics_workbook(stats, tmp_path / "statistics.xlsx"))
    sheet = book["统计 Statistics"]
    headers = [cell.value for cell in sheet[3]]
    assert all(re.search(r"[\u4e00-\u9fff]", h) and re.search(r"[A-Za-z]", h) for h in headers)  # Chinese + English
    assert sorted(headers) == sorted(STATISTICS_HEADERS)  # one column per figure, the withdrawn one included
    keys = [STATISTICS_HEADERS[h] for h in headers]
    assert set(keys) == set(everything)  # the sheet shows whatever a row has
    lines = list(sheet.iter_rows(min_row=4))
    assert len(lines) == len(expected) and sheet.max_row == 3 + len(expected)
    for line, want in zip(lines, expected):
        for key, cell in zip(keys, line):
            assert cell.value == want[key], (want["group"], key, cell.value, want[key])
            if key in STATISTICS_RATES:
                assert cell.value is None or cell.number_format == "0.0%", (want["group"], key)
            elif key not in ("group", "avg_first_response_h", "avg_handling_h", "satisfaction_avg"):
                assert isinstance(cell.value, int), (want["group"], key, cell.value)
    definitions = "\n".join(str(row[0]) for row in book["口径 Definitions"].iter_rows(values_only=True))
    assert "withdrawn" in definitions and "closed_not_shipped" in definitions and "outside its denominator" in definitions

    markdown = to_markdown(stats).splitlines()
    assert "| " + " | ".join(headers) + " |" in markdown
    for want in expected:
        cells = ["—" if want[k] is None else f"{want[k]:.1%}" if k in STATISTICS_RATES else str(want[k]) for k in keys]
        assert "| " + " | ".join(cells) + " |" in markdown, want["group"]


def _row_of(rows: list[dict], group: str) -> dict:
    return next(row for row in rows if row["group"] == group)


def test_monthly_statistics_show_who_was_responsible_for_the_disputes(db, tmp_path):
    """§1.8: each closed dispute's findings on a line, and per department and person the count,
    the penalties and the root causes — recomputed here from the rows and compared to the workbook."""
    from aftersales.reporting.statistics import monthly_statistics, to_markdown, write_statistics_workbook

    t0 = datetime(2026, 11, 3, 1, 0, tzinfo=timezone.utc)
    closings = {
        "dispute-1": (t0 + timedelta(days=1), {"result": "refunded", "responsible_department": "warehouse", "responsible_person": "S005",
                                               "penalty": "扣绩效 5 分", "root_cause": "packing_shipping", "root_cause_detail": "漏检"}),
        "dispute-2": (t0 + timedelta(days=2), {"result": "settled", "responsible_department": "warehouse", "responsible_person": "S005",
                                               "penalty": "警告", "root_cause": "packing_shipping", "root_cause_detail": "包装破损"}),
        "dispute-3": (t0 + timedelta(days=3), {"result": "rejected", "responsible_department": "none", "responsible_person": "—",
                                               "penalty": "无", "root_cause": "buyer", "root_cause_detail": "恶意索赔"}),
        "dispute-4": (t0 + timedelta(days=4), {"result": "refunded", "responsible_department": "operations", "responsible_person": "S009",
                                               "penalty": "培训", "root_cause": "description", "root_cause_detail": "尺码表错误"}),
        "dispute-old": (t0 - timedelta(days=10), {"result": "settled", "responsible_department": "warehouse", "responsible_person": "S005",
                                                  "penalty": "警告", "root_cause": "carrier", "root_cause_detail": "十月"}),
    }
    with db() as session:
        for case_id, (closed, closing) in closings.items():
            add_case(session, case_id, process="dispute", opened=closed - timedelta(days=5), closed=closed, outcome=closing["result"],
                     details={"closing": closing})
            session.add(CaseEvent(case_id=case_id, key="closing", actor="S006", action="dispute.responsibility", at=closed, details=closing))
        add_case(session, "dispute-open", process="dispute", opened=t0)  # not closed: no findings yet
    stats = monthly_statistics(Month.parse("2026-11"))
    november = {k: v for k, v in closings.items() if k != "dispute-old"}
    assert [f.case_id for f in stats.disputes] == sorted(november)
    expected = {}
    for _closed, closing in november.values():
        owner = expected.setdefault((closing["responsible_department"], closing["responsible_person"]), {"n": 0, "penalties": [], "causes": []})
        owner["n"] += 1
        owner["causes"].append(closing["root_cause"])
        if closing["penalty"] not in ("无",):
            owner["penalties"].append(closing["penalty"])
    rows = {(r["department"], r["person"]): r for r in stats.responsibility()}
    assert set(rows) == set(expected)
    for owner, want in expected.items():
        assert rows[owner]["disputes"] == want["n"] and rows[owner]["penalised"] == len(want["penalties"])
        assert rows[owner]["penalties"] == "; ".join(want["penalties"])
    assert rows[("warehouse", "S005")]["root_causes"] == "packing_shipping ×2"
    assert stats.responsibility()[0]["department"] == "warehouse"  # most disputes first
    assert "| warehouse | S005 | 2 | 2 | 扣绩效 5 分; 警告 | packing_shipping ×2 |" in to_markdown(stats)

    book = openpyxl.load_workbook(write_statistics_workbook(stats, tmp_path / "statistics.xlsx"))
    sheet = [list(r) for r in book["维权责任 Disputes"].iter_rows(min_row=2, values_only=True)]
    assert {(r[0], r[1]): (r[2], r[3], r[4] or "") for r in sheet} == {
        owner: (want["n"], len(want["penalties"]), "; ".join(want["penalties"])) for owner, want in expected.items()}
    lines = [list(r) for r in book["维权明细 Dispute findings"].iter_rows(min_row=2, values_only=True)]
    assert [(r[0], r[4], r[5], r[6], r[7], r[8]) for r in lines] == [
        (case_id, c["responsible_department"], c["responsible_person"], c["penalty"], c["root_cause"], c["root_cause_detail"])
        for case_id, (_closed, c) in sorted(november.items())]
    assert lines[0][2] == datetime(2026, 11, 4, 9, 0)  # closed 4 Nov 01:00 UTC: 09:00 in Shanghai, the zone in the header


# --- early warning ----------------------------------------------------------------------------------


def test_early_warning_alerts_once_per_breach(db, tmp_path, monkeypatch):
    from tests.support.receivers import start_http_receiver

    from aftersales.reporting import early_warning

    url, received, stop = start_http_receiver()
    config = tmp_path / "apprise.yml"
    receiver = url.replace("http://", "json://")
    config.write_text("urls:\n" + "".join(f"  - {receiver}/staff/{tag}:\n      - tag: {tag}\n" for tag in ("quality", "logistics")))
    monkeypatch.setenv("AFTERSALES_APPRISE_CONFIG", str(config))
    _clear_caches()
    now = datetime(2026, 11, 19, 4, 0, tzinfo=timezone.utc)  # Thursday; the window began Monday 16 Nov (Shanghai)
    start, end = early_warning.window_bounds(now, 7)
    assert start == datetime(2026, 11, 15, 16, 0, tzinfo=timezone.utc) and end - start == timedelta(days=7)
    try:
        with db() as session:
            n = 0

            def returns(count: int, at: datetime, sku: str, category: str = "apparel") -> None:
                nonlocal n
                for _ in range(count):
                    n += 1
                    add_case(session, f"return-W{n}", opened=at, details={"items": [{"sku": sku, "category": category}]})

            for week in range(1, 9):  # history: 2 or 3 a week for the shirt, 0–1 for the mug
                returns(2 + week % 2, start - timedelta(days=7 * week) + timedelta(hours=5), "SKU-SHIRT")
                returns(week % 2, start - timedelta(days=7 * week) + timedelta(hours=6), "SKU-MUG", "kitchen")
            returns(9, start + timedelta(hours=3), "SKU-SHIRT")  # this week: far above mean + 3σ
            returns(4, start + timedelta(hours=4), "SKU-MUG", "kitchen")  # above its history, below the floor of 5
            for i in range(6):  # logistics complaints (2xxx) go to the logistics department
                add_case(session, f"complaint-L{i}", process="complaint", opened=start + timedelta(hours=i),
                         details={"category_code": "2003"})
        first = early_warning.check(now)
        assert set(first["new"]) == {"sku:SKU-SHIRT:2026-11-16", "category:apparel:2026-11-16", "category:2003:2026-11-16"}
        assert first["sent"] == 3
        again = early_warning.check(now + timedelta(hours=1))
        assert again["new"] == [] and again["sent"] == 0  # once per breach and window
        with db() as session:
            alerts = {a.key: a for a in session.exec(select(WarningAlert))}
        assert alerts["category:2003:2026-11-16"].department == "logistics"
        assert alerts["sku:SKU-SHIRT:2026-11-16"].department == "quality" and alerts["sku:SKU-SHIRT:2026-11-16"].count == 9
        assert all(a.status == "sent" for a in alerts.values())
        paths = sorted(r.path for r in received)
        assert paths == ["/staff/logistics", "/staff/quality", "/staff/quality"]
        assert any("SKU-SHIRT" in (r.json or {}).get("message", "") + (r.json or {}).get("title", "") for r in received)
        # a count equal to the threshold "reaches" it (alerts fire at count >= threshold), it does not "exceed" it
        bodies = [(r.json or {}).get("message", "") for r in received]
        assert all("已达到预警阈值" in body and "超过阈值" not in body for body in bodies), bodies
    finally:
        stop()


def test_every_outcome_the_flows_close_with_counts_as_one_of_the_three_results(db):
    """002 §7.1: the statistics count every outcome a flow can write (domain/outcomes.py); the
    wrong shipment's and the review's outcomes once counted as "other"."""
    from aftersales.domain.outcomes import LABEL, RESULT, Outcome
    from aftersales.integrations import case_store
    from aftersales.reporting.statistics import outcome_class

    assert set(RESULT) == set(Outcome) == set(LABEL)
    assert outcome_class("reshipped_correct_items") == outcome_class("corrected_before_dispatch") == "resolved"
    assert outcome_class("closed_not_shipped") == "excluded"  # the buyer let the request lapse: no problem left open
    assert outcome_class("something-else") == "other"
    t0 = datetime(2026, 11, 3, 1, 0, tzinfo=timezone.utc)
    with db() as session:
        add_case(session, "wrong-shipment-X", process="wrong_shipment", opened=t0)
        with pytest.raises(ValueError):
            case_store.close_case(session, "wrong-shipment-X", "sort_of_done")
        assert case_store.close_case(session, "wrong-shipment-X", "reshipped_correct_items").outcome == "reshipped_correct_items"


@pytest.mark.parametrize(("process", "foreign", "own"), [
    ("repair", "settled", "repaired"),  # a dispute's word
    ("repair", "refunded", "repair_withdrawn"),  # a return's (and a dispute's)
    ("exchange", "refunded_automatically", "exchanged"),  # §1.2: an unconfirmed receipt no longer refunds an exchange
    ("wrong_shipment", "reshipped", "reshipped_correct_items"),  # the return's short-shipment word
    ("tracking", "resolved", "buyer_contacted"),  # a complaint's
    ("dispute", "refunded_wrong_items", "refunded"),
])
def test_a_case_closed_with_another_process_word_is_refused_and_stays_open(db, process, foreign, own):
    """domain/outcomes.OUTCOMES: each process closes with its own words; another process's word is
    refused naming the process and its words, and the case is left as it was."""
    from aftersales.integrations import case_store

    case_id = f"{process}-W"
    with db() as session:
        add_case(session, case_id, process=process)
    with pytest.raises(ValueError, match=rf"{process} case cannot close as '{foreign}'.*{process} closes with: .*{own}"):
        with db() as session:
            case_store.close_case(session, case_id, foreign)
    with db() as session:
        case = session.get(Case, case_id)
        assert (case.status, case.outcome, case.closed_at) == ("open", None, None)
        assert case_store.close_case(session, case_id, own).outcome == own
    with db() as session:
        assert session.get(Case, case_id).status == "closed"


def test_the_status_migration_says_for_whom_a_case_waits(db, tmp_path):
    """0005: a case stored as "waiting" becomes wait_buyer (its open wait is the buyer's) or wait_seller."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from aftersales.integrations.db import MIGRATIONS, get_engine

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", f"sqlite:///{tmp_path / 'cases.db'}")
    t0 = datetime(2026, 11, 3, 1, 0, tzinfo=timezone.utc)
    with db() as session:
        for case_id in ("return-B", "return-S"):
            add_case(session, case_id, opened=t0)
    command.downgrade(cfg, "0004_ledger_platform_paid")
    with get_engine().begin() as connection:
        connection.execute(text("""UPDATE "case" SET status = 'waiting'"""))
        connection.execute(text("""INSERT INTO wait (case_id, key, step, form, flow_run_id, addressed_to, deadline, default_action,
                                   default_input, status, notice, opened_at, decision, reason) VALUES ('return-B', 'buyer-shipment-1',
                                   'buyer-shipment', 'BuyerShipment', '00000000-0000-0000-0000-000000000000', 'buyer', '2026-11-10 00:00:00',
                                   'close', '{}', 'open', '', '2026-11-03 01:00:00', '{}', '')"""))
    command.upgrade(cfg, "head")
    with get_engine().begin() as connection:
        statuses = dict(connection.execute(text('SELECT id, status FROM "case" ORDER BY id')).all())
    assert statuses == {"return-B": "wait_buyer", "return-S": "wait_seller"}
