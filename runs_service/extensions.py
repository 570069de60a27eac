"""Extension objects, bound to the application in create_app."""

from __future__ import annotations

import sqlite3

from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

from runs_service.config import SQLITE_BUSY_TIMEOUT_SECONDS
from runs_service.errors import http_exception_response

# Stable constraint names keep Alembic revisions identical on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class RunsApi(Api):
    """flask-smorest's Api with the service's error shape (headers and messages kept)."""

    def handle_http_exception(self, error):
        return http_exception_response(error)


db = SQLAlchemy(model_class=Base)
# Batch mode lets later revisions alter SQLite tables (it recreates them).
migrate = Migrate(compare_type=True, render_as_batch=True)
api = RunsApi()


@event.listens_for(Engine, "connect")
def _configure_sqlite(dbapi_connection, connection_record) -> None:
    """Give every SQLite connection foreign keys (for cascades), WAL and a busy timeout."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
    # WAL lets readers proceed while one gunicorn worker writes; memory databases ignore it.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
