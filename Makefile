# Evenflow: `make run` starts the service, `make test` runs the whole suite.
# Both install into ./.venv first (Python 3.11+ and a C compiler-free pip install are enough):
# `make run` only what the service needs, the other targets the development tools as well.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --quiet --quiet --disable-pip-version-check
STAMP  := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: install install-dev run test test-faults test-fast bench bench-quick lint fmt typecheck check clean container-tools browser

# What running needs (`make run`, the `evenflow` command).
install: $(STAMP)

# ... and the tools of the tests, benchmarks, linters and type checker (`.[dev]`).
install-dev: $(DEV_STAMP)

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required")'
	@$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	@echo "installing what the service needs into $(VENV)"
	@$(PIP) -e .
	@touch $@

$(DEV_STAMP): $(STAMP) pyproject.toml
	@echo "installing the development tools into $(VENV)"
	@$(PIP) -e '.[dev]'
	@touch $@

# The service; with no DATABASE_URL it runs on an embedded PostgreSQL kept in ./.localpg/.
run: install
	@$(PY) -m controller serve

# Everything, against a throwaway PostgreSQL the test session starts itself.
test: install-dev container-tools browser
	REQUIRE_POSTGRES=1 $(PY) -m pytest -m "not faults"

# The container tests run podman (with runc, and catatonit as the containers' init) on an
# image of Debian's static busybox: installed when missing and root, as the bench installs
# wrk; without them those tests are skipped (unless REQUIRE_PODMAN=1, as in CI).
CONTAINER_TOOLS := podman runc catatonit busybox-static
container-tools:
	@missing=""; for p in $(CONTAINER_TOOLS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing$$missing (apt-get install)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y --no-install-recommends $$missing >/dev/null 2>&1 || \
		{ apt-get update >/dev/null && apt-get install -y --no-install-recommends $$missing >/dev/null; }; \
	elif [ -n "$$missing" ]; then \
		echo "the container tests need$$missing (apt-get install as root); they are skipped" >&2; \
	fi

# The dashboard's browser tests and bench drive Debian's chromium through Playwright (never
# `playwright install`, which downloads browsers): installed when missing and root.
browser:
	@if ! dpkg -s chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium (apt-get install)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || \
		{ apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; }; \
	elif ! dpkg -s chromium >/dev/null 2>&1; then \
		echo "the dashboard's browser tests need chromium (apt-get install as root); they are skipped" >&2; \
	fi

# The long fault-injection tests (database stopped under load, kill -9 of the service, ...).
test-faults: install-dev container-tools
	REQUIRE_POSTGRES=1 $(PY) -m pytest -m faults

# Only the in-memory tests: a quick loop while editing.
test-fast: install-dev
	$(PY) -m pytest -m "not postgres and not faults" -q

bench: install-dev container-tools browser
	$(PY) -m bench

bench-quick: install-dev container-tools browser
	$(PY) -m bench --quick

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

fmt: install-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: install-dev
	$(VENV)/bin/mypy

check: lint typecheck test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
