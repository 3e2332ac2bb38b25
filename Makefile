# Both targets do all their own set-up: a fresh clone needs only `make run` or `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test test-sqlite test-postgres install bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# Prefect server + UI (127.0.0.1:4200), sandbox platform, intake API, served flows, demo cases.
run: install
	$(VENV)/bin/aftersales dev

# The suite on a SQLite case database, then on the local PostgreSQL (127.0.0.1:5432, database test).
test: install test-sqlite test-postgres

test-sqlite: install
	$(VENV)/bin/pytest -q

test-postgres: install
	AFTERSALES_TEST_DB=postgres $(VENV)/bin/pytest -q

clean:
	rm -rf var .pytest_cache
