"""SQL building blocks for the routes that filter, sort and aggregate many runs.

The per-run facts themselves (bests, final counts, federated facts) are stored in
models.RunSummary at write time by services.summaries; this module holds the run
filters and the one SQL expression that cannot be stored: duration, which PATCH
changes. Statements are built once with bind parameters and reused, because
building them costs more than running them on an indexed page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import ColumnElement, Float, bindparam
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from runs_service.models import Run

# Run filters by name; each compares a column with the bind parameter of that name.
RUN_FILTERS: dict[str, Callable[[], ColumnElement[bool]]] = {
    "status": lambda: Run.status == bindparam("status"),
    "training_mode": lambda: Run.training_mode == bindparam("training_mode"),
    "started_after": lambda: Run.start_time >= bindparam("started_after"),
    "started_before": lambda: Run.start_time < bindparam("started_before"),
}


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
