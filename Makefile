# Everything runs from a virtualenv in .venv built from setup.cfg.
# The first Python >= 3.11 on PATH, by version (override: make PYTHON=/path/to/python3.x).
ifndef PYTHON
PYTHON := $(shell for candidate in python3.13 python3.12 python3.11 python3; do \
	command -v $$candidate >/dev/null 2>&1 \
	&& $$candidate -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$candidate; break; }; done)
endif
VENV ?= .venv
BIN := $(VENV)/bin
OPENAPI_FILE ?= instance/openapi.json
export FLASK_APP := runs_service

.PHONY: serve test lint format migrate openapi clean

# The virtualenv itself; each stamp below installs one set of extras into it.
$(BIN)/.created:
	@if [ -x $(BIN)/python ] && $(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then \
		echo "Using the existing $(VENV) ($$($(BIN)/python --version))."; \
	elif [ -z "$(PYTHON)" ]; then \
		echo "runs_service needs Python 3.11 or newer: none of python3.13, python3.12," \
			"python3.11, python3 on PATH is. Install one, or run make PYTHON=/path/to/python3.x." >&2; \
		exit 1; \
	else \
		echo "Creating $(VENV) with $(PYTHON) ($$($(PYTHON) --version))."; \
		$(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet --upgrade pip; \
	fi
	touch $@

# What serving needs, nothing more.
$(BIN)/.installed-serve: setup.cfg pyproject.toml $(BIN)/.created
	$(BIN)/pip install --quiet -e .
	touch $@

# The test suite's extras.
$(BIN)/.installed-test: setup.cfg pyproject.toml $(BIN)/.installed-serve
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# Everything for development (tests and linters).
$(BIN)/.installed: setup.cfg pyproject.toml $(BIN)/.installed-test
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

## serve: migrate, load demo data into an empty database, serve on http://127.0.0.1:8000
serve: $(BIN)/.installed-serve
	$(BIN)/flask db upgrade
	$(BIN)/flask demo-data --if-empty
	exec $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

## test: the whole test suite (RUNS_TEST_DATABASE_URL=postgresql+psycopg://... for PostgreSQL)
test: $(BIN)/.installed-test
	$(BIN)/pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(BIN)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: $(BIN)/.installed-serve
	$(BIN)/flask db upgrade

## openapi: write the OpenAPI document to $(OPENAPI_FILE) (instance/ is not tracked)
openapi: $(BIN)/.installed-serve
	$(BIN)/flask openapi write --format=json $(OPENAPI_FILE)

clean:
	rm -rf $(VENV) *.egg-info
