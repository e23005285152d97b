# Two commands for a fresh machine:
#   make run    create .venv, install, load the demo on first start, serve on http://127.0.0.1:8501
#   make test   install what the tests need, run `make lint` (ruff + mypy), then the whole suite (writes no
#               tracked file)
# Both are idempotent: the install re-runs only when pyproject.toml or constraints.txt change.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8501
PIP_INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt
DEPS_HASH := $(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
APP_STAMP  := $(VENV)/.app-$(DEPS_HASH)
TEST_STAMP := $(VENV)/.test-$(DEPS_HASH)

.PHONY: run test lint test-postgres screenshots bench clean-data

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip setuptools wheel

$(APP_STAMP): | $(PY)
	$(PIP_INSTALL) -e .
	touch $@

$(TEST_STAMP): $(APP_STAMP)
	$(PIP_INSTALL) -e '.[test]'
	touch $@

run: $(APP_STAMP)
	$(PY) -m curation init
	$(PY) -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT)

test: lint
	@scripts/ensure-chromium.sh
	$(PY) -m pytest $(PYTEST_ARGS)

# ruff check and mypy, configured in pyproject.toml (per-module strictness there).
lint: $(TEST_STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

# Refresh the README's pictures in docs/screenshots (tracked files): only this target writes them,
# so `make test` leaves the work tree clean.
screenshots: $(TEST_STAMP)
	@scripts/ensure-chromium.sh
	E2E_SCREENSHOTS=1 $(PY) -m pytest tests/e2e/test_journeys.py tests/e2e/test_full_journey.py $(PYTEST_ARGS)

# The suite against a throwaway PostgreSQL cluster as well (what CI does).
test-postgres: $(TEST_STAMP)
	@dir=$$(mktemp -d) && chmod 755 $$dir && \
	url=$$(scripts/throwaway-postgres.sh start $$dir/cluster) && \
	trap "scripts/throwaway-postgres.sh stop $$dir/cluster; rm -rf $$dir" EXIT && \
	TEST_POSTGRES_URL=$$url $(MAKE) --no-print-directory test

bench: $(TEST_STAMP)
	for script in bench/*.py; do $(PY) $$script || exit 1; done

clean-data:
	rm -rf data/
