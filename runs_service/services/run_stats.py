"""SPEC §3's per-run facts as SQL, for the routes that sort, page or aggregate many runs.

Each function returns a subquery keyed by `run_id` for the runs matching a scope
(conditions on `Run`), so a route reads any number of runs in a fixed number of
statements. The names and rules come from `definitions`; tests check that these
queries agree with its pure functions.

Building these statements costs far more than running them on an indexed page, so
routes build each shape once with bind parameters (`run_filters`) and reuse it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    Subquery,
    and_,
    bindparam,
    case,
    func,
    select,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from runs_service.models import Client, Run, RunMetric, ServerEvaluation, TrainingMode
from runs_service.services.definitions import (
    CENTRALIZED_HISTORY_FIELDS,
    CONFUSION_METRIC_NAMES,
    METRIC_ALIASES,
    SERVER_COUNT_FIELDS,
    SERVER_TO_HISTORY,
)

Scope = Sequence[ColumnElement[bool]]

# Score names of the list and analytics routes -> the history field each is the best of.
SCORE_FIELDS = {
    "accuracy": "val_acc",
    "precision": "val_precision",
    "recall": "val_recall",
    "f1": "val_f1",
    "auroc": "val_auroc",
}
SCORES = tuple(SCORE_FIELDS)
# Round 0 evaluates the model before any training; bests count training rounds only.
FIRST_TRAINING_ROUND = 1

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


def stored_metric_names(field: str) -> tuple[str, ...]:
    """The metric names stored for a history field, canonical name first."""
    return (field, *(alias for alias, canonical in METRIC_ALIASES.items() if canonical == field))


_SERVER_COLUMN_OF_FIELD = {field: column for column, field in SERVER_TO_HISTORY}
_HISTORY_NAMES = tuple(
    name for field in CENTRALIZED_HISTORY_FIELDS for name in stored_metric_names(field)
)


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


def _value_at_epoch(field: str) -> ColumnElement[float]:
    """A history field's value at one (run, step) group; the canonical name wins over an alias."""
    values = [
        func.max(case((RunMetric.metric_name == name, RunMetric.metric_value)))
        for name in stored_metric_names(field)
    ]
    return values[0] if len(values) == 1 else func.coalesce(*values)


def _run_level_points(scope: Scope, names: Sequence[str], *columns: Any) -> Select:
    """Select columns of the scoped runs' run-level points (no client) with these names."""
    return (
        select(*columns)
        .select_from(RunMetric)
        .join(Run, Run.id == RunMetric.run_id)
        .where(
            *scope,
            RunMetric.metric_name.in_(names),
            # client_key is 0 exactly when client_id is null; unlike `client_id IS NULL`
            # (which SQLite serves from the client_id index, i.e. nearly every row) it sits
            # in the point index (run_id, metric_name, step, client_key, round_key).
            RunMetric.client_key == 0,
        )
    )


def _scoped(entity: Any, scope: Scope, *columns: Any) -> Select:
    """Select columns of an entity's rows that belong to the scoped runs."""
    return select(*columns).select_from(entity).join(Run, Run.id == entity.run_id).where(*scope)


def best_scores(scope: Scope) -> Subquery:
    """run_id and the best validation accuracy, precision, recall, f1 and auroc of each run.

    Centralized runs: the best over epochs of their run-level val_* metrics.
    Federated runs: the best over training rounds of their server evaluations.
    """
    score_names = [name for field in SCORE_FIELDS.values() for name in stored_metric_names(field)]
    per_epoch = (
        _run_level_points(
            [*scope, Run.training_mode == TrainingMode.CENTRALIZED],
            score_names,
            RunMetric.run_id,
            *(_value_at_epoch(field).label(score) for score, field in SCORE_FIELDS.items()),
        )
        .group_by(RunMetric.run_id, RunMetric.step)
        .subquery("per_epoch")
    )
    centralized = select(
        per_epoch.c.run_id, *(func.max(per_epoch.c[score]).label(score) for score in SCORES)
    ).group_by(per_epoch.c.run_id)
    federated = (
        _scoped(
            ServerEvaluation,
            [*scope, Run.training_mode == TrainingMode.FEDERATED],
            ServerEvaluation.run_id,
            *(
                func.max(getattr(ServerEvaluation, _SERVER_COLUMN_OF_FIELD[field])).label(score)
                for score, field in SCORE_FIELDS.items()
            ),
        )
        .where(ServerEvaluation.round_number >= FIRST_TRAINING_ROUND)
        .group_by(ServerEvaluation.run_id)
    )
    return union_all(centralized, federated).subquery("best_scores")


def final_epoch_counts(scope: Scope) -> Subquery:
    """run_id and the confusion-matrix counts (val_cm_*) at a centralized run's final epoch.

    The final epoch is the highest step with a history metric; counts alone make no epoch.
    """
    final_step = (
        _run_level_points(
            scope, _HISTORY_NAMES, RunMetric.run_id, func.max(RunMetric.step).label("step")
        )
        .group_by(RunMetric.run_id)
        .subquery("final_step")
    )
    counts = (
        func.max(case((RunMetric.metric_name == name, RunMetric.metric_value))).label(name)
        for name in CONFUSION_METRIC_NAMES
    )
    # The scope is repeated here: planners do not carry it through final_step's grouping.
    return (
        _run_level_points(scope, CONFUSION_METRIC_NAMES, RunMetric.run_id, *counts)
        .join(
            final_step,
            and_(final_step.c.run_id == RunMetric.run_id, final_step.c.step == RunMetric.step),
        )
        .group_by(RunMetric.run_id)
        .subquery("final_epoch_counts")
    )


def federated_rounds(scope: Scope) -> Subquery:
    """run_id, evaluation count, training rounds, latest training round and its values."""
    is_training = ServerEvaluation.round_number >= FIRST_TRAINING_ROUND
    rounds = (
        _scoped(
            ServerEvaluation,
            scope,
            ServerEvaluation.run_id,
            func.count().label("evaluations"),
            func.count(case((is_training, 1))).label("num_rounds"),
            func.max(case((is_training, ServerEvaluation.round_number))).label("latest_round"),
        )
        .group_by(ServerEvaluation.run_id)
        .subquery("rounds")
    )
    latest = aliased(ServerEvaluation, name="latest")
    return (
        select(
            rounds,
            latest.accuracy.label("latest_accuracy"),
            *(getattr(latest, name).label(name) for name in SERVER_COUNT_FIELDS),
        )
        .outerjoin(
            latest,
            and_(latest.run_id == rounds.c.run_id, latest.round_number == rounds.c.latest_round),
        )
        .subquery("federated_rounds")
    )


def metric_counts(scope: Scope) -> Subquery:
    """run_id and the number of stored metric points of each run (client points included)."""
    return (
        _scoped(RunMetric, scope, RunMetric.run_id, func.count().label("metrics_count"))
        .group_by(RunMetric.run_id)
        .subquery("metric_counts")
    )


def client_counts(scope: Scope) -> Subquery:
    """run_id and the number of registered clients of each run."""
    return (
        _scoped(Client, scope, Client.run_id, func.count().label("registered_clients"))
        .group_by(Client.run_id)
        .subquery("client_counts")
    )
