"""Fixtures: an app from the factory on a throwaway database, its client and CLI runner.

Tests run on SQLite by default. With RUNS_TEST_DATABASE_URL pointing at a PostgreSQL
server, the session creates its own database there and drops it at the end.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import text

from runs_service import create_app
from runs_service.extensions import db
from tests.helpers import ADMIN_AUTH, AUTH, create_postgres_database, empty_tables, make_app


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a database that exists only for this test session, schema migrated."""
    server_url = os.environ.get("RUNS_TEST_DATABASE_URL")
    if server_url:
        url, drop = create_postgres_database(server_url)
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


@pytest.fixture
def app(database_url: str, tmp_path) -> Iterator[Flask]:
    application = make_app(database_url, tmp_path)
    yield application
    empty_tables(application)


@pytest.fixture
def app_with(database_url: str, tmp_path) -> Iterator[Callable[..., Flask]]:
    """Factory of apps with configuration overrides; each is cleaned up after the test."""
    created: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        application = make_app(database_url, tmp_path, **overrides)
        created.append(application)
        return application

    yield build
    for application in created:
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
def admin_auth() -> dict[str, str]:
    """Headers of an admin (the only scope that may delete runs)."""
    return dict(ADMIN_AUTH)


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
