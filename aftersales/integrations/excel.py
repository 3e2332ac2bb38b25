"""Excel workbooks finance can use as they are (openpyxl, write-only/streaming mode).

Write-only mode keeps memory flat whatever the row count: each appended row is serialised at once.
The helpers here make the cells finance needs without a WriteOnlyCell per value (the slow path):
plain strings and numbers are appended as they are, and only cells that need a style (money,
dates, headers) or protection (text that would become a formula) get a cell object — styled cells
are reused row after row, which is safe because ``append`` writes the row before it returns.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

CNY_FORMAT = "¥#,##0.00"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
PERCENT_FORMAT = "0.0%"
# A spreadsheet treats text starting with these as a formula (or, for tab/CR, hides it in CSV
# exports); customers' text must never run as one (OWASP "CSV injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

HEADER_FONT = Font(bold=True, color="FFFFFF")
HEADER_FILL = PatternFill("solid", fgColor="305496")
TITLE_FONT = Font(bold=True, size=13)
BOLD = Font(bold=True)


def clean_text(value: str) -> str:
    """Drop control characters XML cannot carry (openpyxl would refuse the whole row)."""
    return ILLEGAL_CHARACTERS_RE.sub("", value)


class SheetWriter:
    """Appends rows to a write-only sheet, turning values into the cells finance needs."""

    def __init__(self, sheet: WriteOnlyWorksheet):
        self.sheet = sheet
        self.rows = 0
        # reused row after row: one time cell per row, one money cell per row and slot
        self._money: dict[tuple[bool, int], WriteOnlyCell] = {}
        self._time = self._styled(number_format=DATETIME_FORMAT)

    def _styled(self, **style: Any) -> WriteOnlyCell:
        cell = WriteOnlyCell(self.sheet)
        for name, value in style.items():
            setattr(cell, name, value)
        return cell

    def columns(self, widths: list[float]) -> None:
        """Column widths, in characters; must come before the first row (write-only mode)."""
        for index, width in enumerate(widths, 1):
            self.sheet.column_dimensions[get_column_letter(index)].width = width

    # --- cells -------------------------------------------------------------------------------

    def text(self, value: Any) -> Any:
        """A string that stays text: never a formula, whatever the customer typed."""
        if value is None or value == "":
            return None
        text = clean_text(str(value))
        if text.startswith(FORMULA_TRIGGERS):
            # data_type 's' writes an inline string (no <f>), and quotePrefix keeps it text when
            # someone edits the cell in Excel/LibreOffice; the value itself is unchanged.
            cell = WriteOnlyCell(self.sheet)
            cell.value = text
            cell.data_type = "s"
            cell.quotePrefix = True
            return cell
        return text

    def money(self, amount: Decimal | None, bold: bool = False, slot: int = 0) -> Any:
        """A number with the CNY format. openpyxl writes Decimal via float text (%.16g): exact
        for the ledger's ≤14 significant digits; sums are checked against Decimal totals.
        A row with several money cells gives each its own ``slot`` (the cells are reused)."""
        if amount is None:
            return None
        cell = self._money.get((bold, slot))
        if cell is None:
            cell = self._money[(bold, slot)] = self._styled(number_format=CNY_FORMAT, font=BOLD) if bold else self._styled(number_format=CNY_FORMAT)
        cell.value = Decimal(amount)
        return cell

    def money_formula(self, formula: str, bold: bool = False) -> WriteOnlyCell:
        cell = self._styled(number_format=CNY_FORMAT, font=BOLD) if bold else self._styled(number_format=CNY_FORMAT)
        cell.value = formula
        return cell

    def time(self, moment: datetime | None, tz) -> Any:
        """Excel has no time zones: local wall-clock time (the header names the zone)."""
        if moment is None:
            return None
        self._time.value = moment.astimezone(tz).replace(tzinfo=None)
        return self._time

    def percent(self, share: float | None) -> Any:
        if share is None:
            return None
        cell = self._styled(number_format=PERCENT_FORMAT)  # several per row: a cell each
        cell.value = share
        return cell

    def bold(self, value: Any, font: Font = BOLD) -> WriteOnlyCell:
        cell = WriteOnlyCell(self.sheet)
        cell.value = clean_text(value) if isinstance(value, str) else value
        if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
            cell.data_type, cell.quotePrefix = "s", True
        cell.font = font
        return cell

    def header_cell(self, label: str) -> WriteOnlyCell:
        cell = WriteOnlyCell(self.sheet)
        cell.value = label
        cell.font = HEADER_FONT
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(vertical="center", wrap_text=True)
        return cell

    # --- rows --------------------------------------------------------------------------------

    def header(self, labels: list[str]) -> None:
        self.append([self.header_cell(label) for label in labels])

    def append(self, row: list[Any]) -> None:
        self.sheet.append(row)
        self.rows += 1


def quote_sheet(name: str) -> str:
    """A sheet name as a formula reference: 'Name with spaces' (quotes doubled)."""
    return "'" + name.replace("'", "''") + "'"
