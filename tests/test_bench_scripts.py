"""The benchmarks (bench/) are not run by the suite, so nothing else notices when a change to shared
code breaks one: bench/hold_bench.py failed at import for a day after bench/cases_bench.py renamed
a helper it used. Each script must at least load."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize("script", sorted(path.stem for path in BENCH.glob("*.py")))
def test_a_benchmark_script_loads(script):
    module = importlib.import_module(f"bench.{script}")
    assert callable(module.main)
