"""Readiness: can the database answer, and does it hold the schema?"""

from __future__ import annotations

from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect, select

from runs_service.errors import UPGRADE_COMMAND, database_problem
from runs_service.extensions import db
from runs_service.models import Run


def check_database() -> None:
    """Read nothing from the runs table; a database error propagates and becomes a 503.

    A database without the schema cannot serve either, so this fails on it too.
    """
    db.session.execute(select(Run.id).limit(0))


def schema_problem() -> str | None:
    """Why commands cannot run on the configured database yet (a sentence), or None."""
    try:
        tables = set(inspect(db.engine).get_table_names())
    except sa_exc.DBAPIError as error:
        problem = database_problem(error)
        if problem is not None:
            return problem
        first_line = str(getattr(error, "orig", error)).strip().splitlines()[0]
        return f"Cannot reach the database of RUNS_DATABASE_URL: {first_line}"
    if Run.__tablename__ not in tables:
        return f"The database has no tables yet: run `{UPGRADE_COMMAND}` first."
    return None
