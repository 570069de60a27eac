"""Column types and schema helpers shared by the models."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime, Index
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

# JSONB on PostgreSQL: comparable (upserts detect "unchanged") and compact.
JSONDocument = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC timestamps on every database; naive values are taken as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        # SQLite has no time zones and hands back naive values that were stored as UTC.
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def duration_minutes(start: datetime | None, end: datetime | None) -> float | None:
    """Duration (SPEC §3): end minus start in minutes to 2 places, None when either is missing."""
    if start is None or end is None:
        return None
    return round((_as_utc(end) - _as_utc(start)).total_seconds() / 60, 2)


def only_on(dialect: str, index: Index) -> Index:
    """An index that exists on one kind of database only: created there, compared there."""
    index.info["only_on"] = dialect
    return index.ddl_if(dialect=dialect)


def include_object_for(dialect: str) -> Callable[..., bool]:
    """Alembic's include_object hook for `dialect`: skips items made for another database."""

    def include_object(item, name, type_, reflected, compare_to) -> bool:
        return getattr(item, "info", {}).get("only_on", dialect) == dialect

    return include_object
