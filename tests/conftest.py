"""Fixtures: an app from the factory on a throwaway database, its client and CLI runner.

Tests run on SQLite by default. With RUNS_TEST_DATABASE_URL pointing at a PostgreSQL
server, the session creates its own database there and drops it at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import create_engine, make_url, text

from runs_service import create_app
from runs_service.extensions import db

WRITER_TOKEN = "test-writer-token"
AUTH = {"Authorization": f"Bearer {WRITER_TOKEN}"}


def _create_postgres_database(server_url: str) -> tuple[str, Callable[[], None]]:
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


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a database that exists only for this test session, schema migrated."""
    server_url = os.environ.get("RUNS_TEST_DATABASE_URL")
    if server_url:
        url, drop = _create_postgres_database(server_url)
    else:
        url = "sqlite:///" + str(tmp_path_factory.mktemp("db") / "runs.db")

        def drop() -> None:
            return None

    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        db.engine.dispose()
    try:
        yield url
    finally:
        drop()


@pytest.fixture
def is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgresql")


def make_app(database_url: str, tmp_path, **overrides: Any) -> Flask:
    """An app on the session database with a writer token configured."""
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "RUNS_API_TOKENS": (WRITER_TOKEN,),
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


@pytest.fixture
def app(database_url: str, tmp_path) -> Iterator[Flask]:
    application = make_app(database_url, tmp_path)
    yield application
    empty_tables(application)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


@pytest.fixture
def auth() -> dict[str, str]:
    """Headers of an authenticated writer."""
    return dict(AUTH)


@pytest.fixture
def create_run(client: FlaskClient) -> Callable[..., dict[str, Any]]:
    """Create a run through the API and return its record."""

    def create(training_mode: str = "centralized", **fields: Any) -> dict[str, Any]:
        response = client.post(
            "/api/runs", json={"training_mode": training_mode, **fields}, headers=AUTH
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return create


@pytest.fixture
def row_counts(app: Flask) -> Callable[[], dict[str, int]]:
    """How many rows each table holds, to prove a rejected request changed nothing."""

    def counts() -> dict[str, int]:
        with app.app_context():
            return {
                table.name: db.session.execute(
                    text(f"SELECT count(*) FROM {table.name}")
                ).scalar_one()
                for table in db.metadata.sorted_tables
            }

    return counts


class StatementCounter:
    """Counts the SQL statements the application sends while active."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.statements.append(statement)

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_statements(app: Flask):
    """Context manager factory: `with count_statements() as counter: ...; counter.count`."""
    from contextlib import contextmanager

    from sqlalchemy import event

    @contextmanager
    def counting() -> Iterator[StatementCounter]:
        counter = StatementCounter()
        with app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", counter)
        try:
            yield counter
        finally:
            event.remove(engine, "before_cursor_execute", counter)

    return counting
