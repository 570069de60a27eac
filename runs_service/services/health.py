"""Readiness: can the database answer?"""

from __future__ import annotations

from sqlalchemy import text

from runs_service.extensions import db


def check_database() -> None:
    """Run a trivial query; a database error propagates and becomes a 503."""
    db.session.execute(text("SELECT 1"))
