"""What `wsgi:app` loads: no migration machinery, and no PostgreSQL driver on SQLite.

Every gunicorn process holds what the served application imported; Alembic and
Flask-Migrate (11 MB) serve only `flask db …`, and psycopg (9 MB) only PostgreSQL
(BENCHMARKS.md, memory). The import runs in a fresh interpreter, as gunicorn's does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROBE = (
    "import json, sys, wsgi; "
    "print(json.dumps({name: name in sys.modules "
    "for name in ('alembic', 'flask_migrate', 'psycopg')}))"
)


def loaded_by_wsgi(database_url: str) -> dict[str, bool]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("RUNS_")}
    env["RUNS_DATABASE_URL"] = database_url
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_served_app_leaves_out_alembic_and_psycopg_on_sqlite(tmp_path):
    loaded = loaded_by_wsgi(f"sqlite:///{tmp_path / 'runs.db'}")
    assert loaded == {"alembic": False, "flask_migrate": False, "psycopg": False}


def test_the_served_app_leaves_out_alembic_on_postgresql(database_url, is_postgres):
    if not is_postgres:
        pytest.skip("PostgreSQL's driver")
    loaded = loaded_by_wsgi(database_url)
    assert loaded == {"alembic": False, "flask_migrate": False, "psycopg": True}


def test_the_app_for_commands_still_migrates(app):
    # create_app() (what `flask --app runs_service` builds) keeps `flask db …`.
    assert "migrate" in app.extensions
    assert "db" in app.cli.commands
