"""The migrations build the schema from nothing, and agree with the models."""

from __future__ import annotations

import os

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from runs_service.extensions import db
from runs_service.models.types import include_object_for
from tests.helpers import create_postgres_database, make_app


def test_models_and_migrations_agree(app):
    """No autogenerate drift: a model change without a revision fails here."""
    with app.app_context(), db.engine.connect() as connection:
        include_object = include_object_for(connection.dialect.name)
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": include_object}
        )
        assert compare_metadata(context, db.metadata) == []


def test_upgrade_builds_the_schema_from_nothing_and_downgrade_removes_it(
    database_url, tmp_path, is_postgres
):
    if is_postgres:
        url, drop = create_postgres_database(os.environ["RUNS_TEST_DATABASE_URL"])
    else:
        url, drop = "sqlite:///" + str(tmp_path / "fresh.db"), (lambda: None)
    app = make_app(url, tmp_path)
    try:
        with app.app_context():
            upgrade()
            tables = set(inspect(db.engine).get_table_names())
            assert {"runs", "clients", "run_metrics", "server_evaluations"} <= tables
            downgrade(revision="base")
            assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
            db.engine.dispose()
    finally:
        drop()
