# Both targets do all their own set-up: a fresh clone needs only `make run` or `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run run-workers test test-sqlite test-postgres install tools bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# LibreOffice + poppler for the finance workbook's rendering test (tests only: `make run` stays quick).
tools:
	sh scripts/ensure-tools.sh

# Prefect server + UI (127.0.0.1:4200), sandbox platform, intake API, served flows, demo cases.
run: install
	$(VENV)/bin/aftersales dev

# The same with the flows on two Prefect workers (work pool `aftersales`) instead of serve, the Prefect
# server and the case database on PostgreSQL (AFTERSALES_DATABASE_URL, AFTERSALES_PREFECT_DATABASE_URL
# in .env; README "Past one machine: workers").
run-workers: install
	$(VENV)/bin/aftersales dev --workers 2

# The suite on a SQLite case database and on the local PostgreSQL (127.0.0.1:5432, database test),
# both legs at once; each leg's output in var/test-logs/. One leg: `make test-sqlite`, `make test-postgres`.
test: install tools
	bash scripts/test-legs.sh

test-sqlite: install tools
	$(VENV)/bin/pytest -q

test-postgres: install tools
	AFTERSALES_TEST_DB=postgres $(VENV)/bin/pytest -q

# Benchmarks (figures in the README): the 15-day tracker over 100,000 orders, the finance export over
# 1,000,000 lines, a flow-run process's cost (warm start against Prefect's cold start), N return
# cases at once to their first wait and through the deadline sweeper (against a bare Prefect floor),
# 10,000 suspended cases held (the UI's calls, the server's services, our claim, lists and restart).
bench: install
	$(PY) bench/tracker_bench.py --orders 100000
	$(PY) bench/export_bench.py
	$(PY) bench/resume_bench.py --cases 10
	$(PY) bench/cases_bench.py --cases 100 1000
	$(PY) bench/hold_bench.py --cases 10000 --db sqlite postgres

clean:
	rm -rf var .pytest_cache
