"""INSERT … ON CONFLICT for SQLite and PostgreSQL, with inserted/updated/unchanged counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from runs_service.models.types import utc_now


@dataclass(frozen=True)
class BatchResult:
    """What a batch write did."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: BatchResult) -> BatchResult:
        return BatchResult(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
        )


def dialect_insert(session: Session, table: Table):
    """The dialect's own insert, which knows ON CONFLICT."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"upserts are not implemented for {dialect}")


def upsert(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    key_columns: Sequence[str],
    value_columns: Sequence[str],
) -> BatchResult:
    """Insert rows, overwrite those whose values changed, and count what happened.

    The update only fires when a value differs, so unchanged rows return nothing;
    `updated_at` is null on a fresh insert, which tells inserted from updated
    without reading first (no check-then-insert race).
    """
    if not rows:
        return BatchResult()
    insert = dialect_insert(session, table)
    excluded = insert.excluded
    changed = or_(*(table.c[name].is_distinct_from(excluded[name]) for name in value_columns))
    statement = insert.on_conflict_do_update(
        index_elements=list(key_columns),
        set_={**{name: excluded[name] for name in value_columns}, "updated_at": utc_now()},
        where=changed,
    ).returning(table.c.updated_at)
    written = session.execute(statement, list(rows)).scalars().all()
    inserted = sum(1 for updated_at in written if updated_at is None)
    updated = len(written) - inserted
    return BatchResult(inserted, updated, len(rows) - len(written))
