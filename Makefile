# Evenflow: `make run` starts the service, `make test` runs the whole suite.
# Both install into ./.venv first (Python 3.11+ and a C compiler-free pip install are enough).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install run test test-faults test-fast bench bench-quick lint fmt typecheck check clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

# The service; with no DATABASE_URL it runs on an embedded PostgreSQL kept in ./.localpg/.
run: install
	$(PY) -m controller serve

# Everything, against a throwaway PostgreSQL the test session starts itself.
test: install
	REQUIRE_POSTGRES=1 $(PY) -m pytest -m "not faults"

# The long fault-injection tests (database stopped under load, kill -9 of the service, ...).
test-faults: install
	REQUIRE_POSTGRES=1 $(PY) -m pytest -m faults

# Only the in-memory tests: a quick loop while editing.
test-fast: install
	$(PY) -m pytest -m "not postgres and not faults" -q

bench: install
	$(PY) -m bench

bench-quick: install
	$(PY) -m bench --quick

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: install
	$(VENV)/bin/mypy

check: lint typecheck test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
