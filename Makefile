# Everything runs from a virtualenv in .venv built from setup.cfg.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
export FLASK_APP := runs_service

.PHONY: serve test lint format migrate openapi clean

$(BIN)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

## serve: migrate, load demo data into an empty database, serve on http://127.0.0.1:8000
serve: $(BIN)/.installed
	$(BIN)/flask db upgrade
	$(BIN)/flask demo-data --if-empty
	exec $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

## test: the whole test suite (RUNS_TEST_DATABASE_URL=postgresql+psycopg://... for PostgreSQL)
test: $(BIN)/.installed
	$(BIN)/pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(BIN)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: $(BIN)/.installed
	$(BIN)/flask db upgrade

openapi: $(BIN)/.installed
	$(BIN)/flask openapi write --format=json openapi.json

clean:
	rm -rf $(VENV) *.egg-info
