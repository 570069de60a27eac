"""Helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from flask import Flask
from sqlalchemy import create_engine, make_url, text

from runs_service import create_app
from runs_service.extensions import db

WRITER_TOKEN = "test-writer-token"
AUTH = {"Authorization": f"Bearer {WRITER_TOKEN}"}
READER_TOKEN = "test-reader-token"
READER_AUTH = {"Authorization": f"Bearer {READER_TOKEN}"}
ADMIN_TOKEN = "test-admin-token"
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def make_app(database_url: str, tmp_path, **overrides: Any) -> Flask:
    """An app on the session database with a reader, a writer and an admin token."""
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "RUNS_READ_TOKENS": (READER_TOKEN,),
        "RUNS_API_TOKENS": (WRITER_TOKEN,),
        "RUNS_ADMIN_TOKENS": (ADMIN_TOKEN,),
        "RUNS_RESULTS_DIR": str(tmp_path / "results"),
        **overrides,
    }
    return create_app(config)


def empty_tables(app: Flask) -> None:
    """Delete every row so the next test starts from an empty database."""
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as connection:
            for table in reversed(db.metadata.sorted_tables):
                connection.execute(table.delete())
        db.engine.dispose()


def create_postgres_database(server_url: str) -> tuple[str, Callable[[], None]]:
    """A fresh database on the server of server_url, and how to drop it."""
    name = f"runs_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    url = make_url(server_url).set(database=name)
    return url.render_as_string(hide_password=False), drop


def points(step: int, **values: float) -> list[dict]:
    """Metric points of one 0-indexed step."""
    return [
        {"metric_name": name, "metric_value": value, "step": step} for name, value in values.items()
    ]


def log_metrics(client, auth, run_id: int, batch: list[dict]) -> None:
    """POST a metric batch through the API and insist it was accepted."""
    response = client.post(f"/api/runs/{run_id}/metrics", json={"metrics": batch}, headers=auth)
    assert response.status_code == 200, response.get_json()


def log_evaluations(client, auth, run_id: int, evaluations: list[dict]) -> None:
    """POST server evaluations through the API and insist they were accepted."""
    response = client.post(
        f"/api/runs/{run_id}/server-evaluations", json={"evaluations": evaluations}, headers=auth
    )
    assert response.status_code == 200, response.get_json()
