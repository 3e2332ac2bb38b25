"""Benchmark: the monthly compensation export of 1,000,000 ledger lines, next to the floor.

  .venv/bin/python bench/export_bench.py [--lines 1000000]

1. Generates the lines into a temporary SQLite case database (migrated schema, batches of 20,000).
2. In a fresh subprocess: ``export_compensation`` (streaming read with yield_per, write-only
   workbook, summary with formulas) — wall time and peak RSS (VmHWM).
3. In another fresh subprocess, the floor: a bare openpyxl write-only loop appending the same
   rows (plain values, no styles) from a plain sqlite3 cursor.
Peak RSS (VmHWM) of a subprocess includes the interpreter and imports; the baseline of each is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MONTH = "2026-11"


def generate(db: Path, lines: int, batch: int = 20_000) -> None:
    os.environ["AFTERSALES_DATABASE_URL"] = f"sqlite:///{db}"
    sys.path.insert(0, str(ROOT))
    from aftersales.integrations.db import migrate

    migrate()
    rng = random.Random(7)
    start = datetime(2026, 10, 31, 16, 0, tzinfo=timezone.utc)  # 2026-11-01 00:00 Asia/Shanghai
    span = 30 * 24 * 3600
    connection = sqlite3.connect(db)
    cases = 50_000
    connection.executemany(
        "INSERT INTO \"case\" (id, process, order_id, customer_id, status, stage, requested_by, reason, amount, currency, details, opened_at, updated_at) "
        "VALUES (?, 'return', ?, ?, 'closed', 'closed', 'buyer', '', '0.00', 'CNY', '{}', ?, ?)",
        [(f"return-O{i:08d}", f"O{i:08d}", f"C{i % 9000:05d}", start.strftime("%Y-%m-%d %H:%M:%S.%f"), start.strftime("%Y-%m-%d %H:%M:%S.%f")) for i in range(cases)])
    kinds = [("refund", "seller", "quality"), ("return_postage", "buyer", ""), ("compensation", "seller", "after_sales"),
             ("reshipment", "seller", "warehouse"), ("postage", "carrier", "logistics")]
    notes = ["尺码不合适 wrong size", "外箱破损 damaged box", "=HYPERLINK(\"x\")", "", "补偿运费 postage refund"]
    for first in range(0, lines, batch):
        rows = []
        for i in range(first, min(first + batch, lines)):
            case = i % cases
            kind, bearer, department = kinds[i % len(kinds)]
            created = start + timedelta(seconds=span * i // lines)
            rows.append((f"bench-{i}", f"return-O{case:08d}", "return", f"O{case:08d}", kind,
                         f"{rng.randint(1, 99999) / 100:.2f}", "CNY", bearer, department, "S002", f"RF{i:010d}",
                         notes[i % len(notes)], created.strftime("%Y-%m-%d %H:%M:%S.%f")))  # as SQLAlchemy stores it
        connection.executemany(
            "INSERT INTO ledger_line (idempotency_key, case_id, process, order_id, kind, amount, currency, bearer, "
            "responsible_department, approved_by, platform_ref, note, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        connection.commit()
    connection.close()


def peak_rss_kb() -> int:
    """This process's peak RSS. /proc's VmHWM starts afresh with exec; ru_maxrss would carry the
    parent's peak over (Linux keeps it across fork + exec), hiding the child's own figure."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(mode: str, db: Path, output: Path) -> None:
    """Runs in a subprocess: one measurement."""
    if mode == "export":
        os.environ["AFTERSALES_DATABASE_URL"] = f"sqlite:///{db}"
        sys.path.insert(0, str(ROOT))
        from aftersales.reporting.compensation import export_compensation
        from aftersales.reporting.months import Month

        baseline = peak_rss_kb()
        began = time.perf_counter()
        result = export_compensation(Month.parse(MONTH), output)
        lines, total = result.lines, f"{result.total.amount:.2f}"
    else:
        from openpyxl import Workbook

        baseline = peak_rss_kb()
        began = time.perf_counter()
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("floor")
        connection = sqlite3.connect(db)
        cursor = connection.execute(
            "SELECT created_at, case_id, process, order_id, kind, amount, currency, bearer, responsible_department, "
            "approved_by, platform_ref, note FROM ledger_line ORDER BY created_at, id")
        lines = 0
        while rows := cursor.fetchmany(5000):
            for row in rows:
                sheet.append(row)
                lines += 1
        workbook.save(output)
        total = "-"
    elapsed = time.perf_counter() - began
    peak = peak_rss_kb()
    print(json.dumps({"mode": mode, "lines": lines, "seconds": round(elapsed, 1), "peak_rss_mb": round(peak / 1024, 1),
                      "baseline_rss_mb": round(baseline / 1024, 1), "file_mb": round(output.stat().st_size / 2**20, 1),
                      "total": total}))


def measure(mode: str, db: Path, output: Path) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", mode, "--db", str(db), "--output", str(output)],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--child")
    parser.add_argument("--db", type=Path)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.db, args.output)
        return
    with tempfile.TemporaryDirectory(prefix="export-bench-") as tmp:
        db = Path(tmp) / "bench.db"
        began = time.perf_counter()
        generate(db, args.lines)
        print(f"generated {args.lines:,} ledger lines in {time.perf_counter() - began:.1f} s")
        for mode in ("export", "floor"):
            figures = measure(mode, db, Path(tmp) / f"{mode}.xlsx")
            label = "export_compensation" if mode == "export" else "bare openpyxl write-only (floor)"
            print(f"{label:34} {figures['lines']:>9,} lines  {figures['seconds']:>7.1f} s  peak RSS "
                  f"{figures['peak_rss_mb']:.0f} MB (interpreter+imports {figures['baseline_rss_mb']:.0f} MB)  "
                  f"file {figures['file_mb']} MB  total {figures['total']}")


if __name__ == "__main__":
    main()
