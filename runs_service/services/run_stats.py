"""SQL building blocks for the routes that filter, sort and aggregate many runs.

The per-run facts themselves (bests, final counts, federated facts) are stored in
models.RunSummary at write time by services.summaries; this module holds the run
filters and the one SQL expression that cannot be stored: duration, which PATCH
changes. Statements are built once with bind parameters and reused, because
building them costs more than running them on an indexed page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import ColumnElement, Float, String, bindparam, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from runs_service.models import Run, RunTag

# The escape character of the search's LIKE pattern ("/" reads the same on every database).
LIKE_ESCAPE = "/"


def _runs_with_every_tag() -> ColumnElement[bool]:
    """Runs carrying every tag of the bind parameter `tags` (`tag_count` of them, distinct)."""
    return Run.id.in_(
        select(RunTag.run_id)
        .where(RunTag.tag.in_(bindparam("tags", expanding=True)))
        .group_by(RunTag.run_id)
        .having(func.count() == bindparam("tag_count"))
    )


def _search() -> ColumnElement[bool]:
    """run_description or external_id contains `search` (a LIKE pattern), ignoring case."""
    pattern = func.lower(bindparam("search", type_=String()))
    return or_(
        func.lower(Run.run_description).like(pattern, escape=LIKE_ESCAPE),
        func.lower(Run.external_id).like(pattern, escape=LIKE_ESCAPE),
    )


# Run filters by name; each compares a column with the bind parameter of that name.
RUN_FILTERS: dict[str, Callable[[], ColumnElement[bool]]] = {
    "status": lambda: Run.status == bindparam("status"),
    "training_mode": lambda: Run.training_mode == bindparam("training_mode"),
    "started_after": lambda: Run.start_time >= bindparam("started_after"),
    "started_before": lambda: Run.start_time < bindparam("started_before"),
    "statuses": lambda: Run.status.in_(bindparam("statuses", expanding=True)),
    "training_modes": lambda: Run.training_mode.in_(bindparam("training_modes", expanding=True)),
    "experiment": lambda: Run.experiment == bindparam("experiment"),
    "tags": _runs_with_every_tag,
    "search": _search,
}


def tag_params(tags: Iterable[str] | None) -> dict[str, object]:
    """The bind parameters of the tags filter, or none when no tag is asked for."""
    distinct = sorted(set(tags or ()))
    return {"tags": distinct, "tag_count": len(distinct)} if distinct else {}


def search_params(text: str | None) -> dict[str, str]:
    """The bind parameter of the search filter: text as a substring LIKE pattern."""
    if not text:
        return {}
    escaped = "".join(
        LIKE_ESCAPE + character if character in ("%", "_", LIKE_ESCAPE) else character
        for character in text
    )
    return {"search": f"%{escaped}%"}


def filter_names(params: dict[str, object]) -> frozenset[str]:
    """The filters a set of bind parameters turns on (tag_count belongs to tags)."""
    return frozenset(name for name in params if name in RUN_FILTERS)


class _CommaJoined(FunctionElement):
    """Text values of a group joined by commas (group_concat / string_agg)."""

    type = String()
    inherit_cache = True


def comma_joined(column: ColumnElement[str]) -> ColumnElement[str]:
    return _CommaJoined(column)


@compiles(_CommaJoined)
def _comma_joined_standard(element: _CommaJoined, compiler: SQLCompiler, **kw) -> str:
    (column,) = (compiler.process(argument, **kw) for argument in element.clauses)
    return f"string_agg({column}, ',')"


@compiles(_CommaJoined, "sqlite")
def _comma_joined_sqlite(element: _CommaJoined, compiler: SQLCompiler, **kw) -> str:
    (column,) = (compiler.process(argument, **kw) for argument in element.clauses)
    return f"group_concat({column}, ',')"


def run_tag_list() -> ColumnElement[str]:
    """A run's tags joined by commas (tags hold none), or null: one indexed lookup per row."""
    return select(comma_joined(RunTag.tag)).where(RunTag.run_id == Run.id).scalar_subquery()


def split_tags(joined: str | None) -> list[str]:
    return sorted(joined.split(",")) if joined else []


def run_filters(names: Iterable[str]) -> list[ColumnElement[bool]]:
    """The conditions of the named filters; started_after is inclusive, started_before not."""
    return [RUN_FILTERS[name]() for name in sorted(names)]


class _DurationSeconds(FunctionElement):
    type = Float()
    inherit_cache = True


def duration_seconds(start: ColumnElement, end: ColumnElement) -> ColumnElement[float]:
    """end - start in seconds as a float, null when either is null, on SQLite and PostgreSQL."""
    return _DurationSeconds(start, end)


@compiles(_DurationSeconds)
def _duration_seconds_standard(element: _DurationSeconds, compiler: SQLCompiler, **kw) -> str:
    start, end = (compiler.process(argument, **kw) for argument in element.clauses)
    return f"CAST(EXTRACT(EPOCH FROM ({end} - {start})) AS DOUBLE PRECISION)"


@compiles(_DurationSeconds, "sqlite")
def _duration_seconds_sqlite(element: _DurationSeconds, compiler: SQLCompiler, **kw) -> str:
    start, end = (compiler.process(argument, **kw) for argument in element.clauses)
    # julianday works in whole milliseconds; rounding to them keeps equal durations equal
    # (and sortable as ties) whatever float noise the subtraction leaves.
    return f"(round((julianday({end}) - julianday({start})) * 86400000) / 1000.0)"
