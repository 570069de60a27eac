"""Centralized vs federated analytics behind GET /api/runs/analytics/summary."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Subquery,
    and_,
    bindparam,
    case,
    func,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from runs_service.catalogue import (
    ALL_STATUSES,
    ANALYTICS_VALUES,
    DEFAULT_TOP_N,
    HISTORY_FIELDS,
    METRIC_ALIASES,
    SCORE_KEYS,
    SCORE_METRICS,
    SERVER_SERIES_NAMES,
)
from runs_service.errors import InvalidInput
from runs_service.extensions import db
from runs_service.models import MetricSummary, Run, RunStatus, RunSummary, TrainingMode
from runs_service.models.metric_summary import is_run_level
from runs_service.models.types import utc_now
from runs_service.services import rollups, run_stats
from runs_service.services.definitions import (
    difference,
    duration_minutes,
    round4,
    success_rate,
)

FOUR_PLACES = Decimal("0.0001")
STATUS_CHOICES = (*(status.value for status in RunStatus), ALL_STATUSES)
# (ModeMetrics key, score whose stored best it averages); the comparison drops "avg_".
_AVERAGED_SCORES = tuple((f"avg_{score}", score) for score in SCORE_KEYS)


@functools.cache
def _status_counts_query(filters: frozenset[str]) -> Select:
    return select(Run.status, func.count()).where(*_scan_filters(filters)).group_by(Run.status)


def _best(score: str) -> ColumnElement[float]:
    return getattr(RunSummary, f"best_{score}")


# History names an epoch is made of (SPEC §3: an epoch has at least one of them).
_EPOCH_NAMES = (*HISTORY_FIELDS, *METRIC_ALIASES)
_FINAL_SOURCE_NAMES = (*_EPOCH_NAMES, *SERVER_SERIES_NAMES)


def _finals(filters: frozenset[str]) -> Subquery:
    """Each matching run's final value of every score (SPEC §3), from its series summaries.

    The final epoch is the highest last step of the run's history series (centralized)
    or of its server series (federated; a training round, so at least 1); a score's
    final value is its series' last value when that is at the final epoch, else null.
    The canonical trainer name wins over its alias (val_acc over val_accuracy).
    """
    summaries = (
        select(
            MetricSummary.run_id,
            MetricSummary.metric_name,
            MetricSummary.last_step,
            MetricSummary.last_value,
            Run.training_mode,
        )
        .join(Run, Run.id == MetricSummary.run_id)
        .where(
            is_run_level(MetricSummary.client_key),
            MetricSummary.metric_name.in_(_FINAL_SOURCE_NAMES),
            *run_stats.run_filters(filters),
        )
        .subquery("series")
    )
    federated = summaries.c.training_mode == TrainingMode.FEDERATED
    history_step = func.max(
        case(
            (
                and_(~federated, summaries.c.metric_name.in_(_EPOCH_NAMES)),
                summaries.c.last_step,
            ),
            (
                and_(federated, summaries.c.metric_name.in_(SERVER_SERIES_NAMES)),
                summaries.c.last_step,
            ),
        )
    )
    final_steps = (
        select(summaries.c.run_id, history_step.label("final_step"))
        .group_by(summaries.c.run_id)
        .subquery("final_steps")
    )
    series = summaries.alias("final_series")
    at_final = and_(
        series.c.last_step == final_steps.c.final_step,
        ~(and_(series.c.training_mode == TrainingMode.FEDERATED, final_steps.c.final_step < 1)),
    )

    def final_of(name: str) -> ColumnElement[float]:
        return func.max(case((and_(series.c.metric_name == name, at_final), series.c.last_value)))

    columns = []
    for metric in SCORE_METRICS:
        names = (metric.history_name, *metric.aliases)
        centralized = func.coalesce(*map(final_of, names)) if len(names) > 1 else final_of(names[0])
        columns.append(
            case(
                (
                    func.max(series.c.training_mode) == TrainingMode.FEDERATED,
                    final_of(metric.series_name),
                ),
                else_=centralized,
            ).label(metric.key)
        )
    return (
        select(series.c.run_id, *columns)
        .join(final_steps, final_steps.c.run_id == series.c.run_id)
        .group_by(series.c.run_id)
        .subquery("finals")
    )


def _value_of(value: str, score: str, finals: Subquery | None) -> ColumnElement[float]:
    """A run's best (RunSummary) or final (finals) value of a score."""
    if finals is None:
        return _best(score)
    return finals.c[score]


@functools.cache
def _mode_metrics_query(filters: frozenset[str], value: str = "best") -> Select:
    finals = _finals(filters) if value == "final" else None
    query = select(
        Run.training_mode,
        func.count().label("count"),
        *(func.avg(_value_of(value, score, finals)).label(key) for key, score in _AVERAGED_SCORES),
        func.max(_value_of(value, "accuracy", finals)).label("max_accuracy"),
        func.avg(run_stats.duration_seconds(Run.start_time, Run.end_time)).label(
            "avg_duration_seconds"
        ),
    ).outerjoin(RunSummary, RunSummary.run_id == Run.id)
    if finals is not None:
        query = query.outerjoin(finals, finals.c.run_id == Run.id)
    return query.where(*_scan_filters(filters)).group_by(Run.training_mode)


class _Unindexed(FunctionElement):
    """A column SQLite must not look up by index (`+column`): the column itself elsewhere."""

    type = String()
    inherit_cache = True


@compiles(_Unindexed)
def _unindexed_standard(element: _Unindexed, compiler: SQLCompiler, **kw) -> str:
    return compiler.process(element.clauses.clauses[0], **kw)


@compiles(_Unindexed, "sqlite")
def _unindexed_sqlite(element: _Unindexed, compiler: SQLCompiler, **kw) -> str:
    return "+" + compiler.process(element.clauses.clauses[0], **kw)


# Run filters SQLite must not start from: the runs of one status, one mode or the last
# `days` are most runs, so starting there reads nearly all of them.
_UNINDEXED_FILTERS = {
    "status": lambda: _Unindexed(Run.status) == bindparam("status", type_=Run.status.type),
    "training_mode": lambda: (
        _Unindexed(Run.training_mode) == bindparam("training_mode", type_=Run.training_mode.type)
    ),
    "started_after": lambda: (
        _Unindexed(Run.start_time) >= bindparam("started_after", type_=Run.start_time.type)
    ),
}

# Filters under which the top runs walk the best index past the runs that do not match
# rather than sort every run that does (which grows with the number of runs). The runs
# of the last `days`: the walk reads about top_n × (all runs ÷ runs of those days) rows.
_COARSE_FILTERS = {
    **_UNINDEXED_FILTERS,
    # The summary's copy of the mode leads the per-mode best indexes (BEST_INDEXED): the
    # walk reads that mode's runs only.
    "training_mode": lambda: (
        RunSummary.training_mode == bindparam("training_mode", type_=RunSummary.training_mode.type)
    ),
}


def _scan_filters(filters: frozenset[str]) -> list[ColumnElement[bool]]:
    """The run filters of a statement that reads every matching run. With an experiment,
    SQLite starts from the experiment's runs (ix_runs_experiment_start_time) rather than
    from a status's, which it picks with statistics and without, then reads nearly every
    run (at 100,000 runs, in process: 0.34-0.58x the time; BENCHMARKS.md)."""
    if "experiment" not in filters:
        return run_stats.run_filters(filters)
    return [
        (_UNINDEXED_FILTERS.get(name) or run_stats.RUN_FILTERS[name])() for name in sorted(filters)
    ]


def _top_runs_filters(filters: frozenset[str]) -> list[ColumnElement[bool]]:
    """The run filters of the top runs. Under status, training_mode and days only, SQLite
    is kept from starting at a runs index (which has it sort every match: 98 ms at 100,000
    runs, statistics or not); PostgreSQL's planner chooses for itself."""
    if filters <= _COARSE_FILTERS.keys():
        return [_COARSE_FILTERS[name]() for name in sorted(filters)]
    return _scan_filters(filters)


@functools.cache
def _top_runs_query(filters: frozenset[str], rank_by: str) -> Select:
    """Runs by rank_by, highest first, runs without it last, ties by id descending.

    Driven from the summaries (every run has one) so both databases walk the best_*
    index in that order and stop after top_n matching runs, instead of sorting them all.
    """
    return (
        select(
            Run.id,
            Run.training_mode,
            Run.status,
            Run.start_time,
            Run.end_time,
            *(_best(score).label(score) for score in SCORE_KEYS),
        )
        .select_from(RunSummary)
        .join(Run, Run.id == RunSummary.run_id)
        .where(*_top_runs_filters(filters))
        .order_by(_best(rank_by).desc().nulls_last(), RunSummary.run_id.desc())
        .limit(bindparam("top_n"))
    )


@functools.cache
def _final_top_runs_query(filters: frozenset[str], rank_by: str) -> Select:
    """Runs by their final rank_by value, highest first, runs without it last, ties by id."""
    finals = _finals(filters)
    return (
        select(
            Run.id,
            Run.training_mode,
            Run.status,
            Run.start_time,
            Run.end_time,
            *(_best(score).label(score) for score in SCORE_KEYS),
            *(finals.c[score].label(f"final_{score}") for score in SCORE_KEYS),
        )
        .select_from(Run)
        .join(RunSummary, RunSummary.run_id == Run.id)
        .outerjoin(finals, finals.c.run_id == Run.id)
        .where(*run_stats.run_filters(filters))
        .order_by(finals.c[rank_by].desc().nulls_last(), Run.id.desc())
        .limit(bindparam("top_n"))
    )


def _status_counts(filters: frozenset[str], params: dict[str, Any]) -> dict[str, int]:
    counts = {status.value: 0 for status in RunStatus}
    rows = db.session.execute(_status_counts_query(filters), params)
    counts.update({status.value: count for status, count in rows})
    return counts


def _empty_mode_metrics() -> dict[str, Any]:
    return {
        "count": 0,
        **{key: None for key, _ in _AVERAGED_SCORES},
        "max_accuracy": None,
        "avg_duration_minutes": None,
    }


def _mode_metrics(
    filters: frozenset[str], params: dict[str, Any], value: str
) -> dict[TrainingMode, dict[str, Any]]:
    """Per training mode: run count and averages over the runs that have each value."""
    metrics = {mode: _empty_mode_metrics() for mode in TrainingMode}
    for row in db.session.execute(_mode_metrics_query(filters, value), params):
        seconds = row.avg_duration_seconds
        metrics[row.training_mode] = {
            "count": row.count,
            **{key: round4(getattr(row, key)) for key, _ in _AVERAGED_SCORES},
            "max_accuracy": row.max_accuracy,
            "avg_duration_minutes": None if seconds is None else round4(seconds / 60),
        }
    return metrics


def _top_runs(
    filters: frozenset[str], params: dict[str, Any], rank_by: str, top_n: int, value: str
) -> list[dict[str, Any]]:
    query = (_final_top_runs_query if value == "final" else _top_runs_query)(filters, rank_by)
    rows = db.session.execute(query, {**params, "top_n": top_n})
    finals = SCORE_KEYS if value == "final" else ()
    return [
        {
            "run_id": row.id,
            "training_mode": row.training_mode,
            "status": row.status,
            **{f"best_{score}": getattr(row, score) for score in SCORE_KEYS},
            **{f"final_{score}": getattr(row, f"final_{score}") for score in finals},
            "duration_minutes": duration_minutes(row.start_time, row.end_time),
            "start_time": row.start_time,
        }
        for row in rows
    ]


def _rounded(mean: Decimal | None) -> float | None:
    """An exact mean to 4 places, ties to even (the roll-ups' sums are exact)."""
    return None if mean is None else float(mean.quantize(FOUR_PLACES, rounding=ROUND_HALF_EVEN))


def _mode_metrics_of(totals: rollups.Totals) -> dict[str, Any]:
    """ModeMetrics from the counts and exact sums of a mode's runs."""
    if not totals.runs:
        return _empty_mode_metrics()
    return {
        "count": totals.runs,
        **{key: _rounded(totals.mean_score(score)) for key, score in _AVERAGED_SCORES},
        "max_accuracy": totals.max_accuracy,
        "avg_duration_minutes": _rounded(totals.mean_duration_minutes()),
    }


def _from_rollups(
    status: str, training_mode: TrainingMode | None, started_after: datetime | None
) -> tuple[dict[str, int], dict[TrainingMode, dict[str, Any]]]:
    """Status counts and per-mode metrics of best values, from the roll-ups."""
    asked = None if status == ALL_STATUSES else RunStatus(status)
    reading = rollups.read_rollups(training_mode, started_after, asked)
    counts = {state.value: 0 for state in RunStatus}
    for (_, state), runs in reading.runs.items():
        counts[state.value] += runs
    return counts, {mode: _mode_metrics_of(totals) for mode, totals in reading.totals.items()}


def analytics_summary(
    *,
    status: str = RunStatus.COMPLETED.value,
    training_mode: TrainingMode | None = None,
    days: int | None = None,
    experiment: str | None = None,
    tag: Iterable[str] | None = None,
    top_n: int = DEFAULT_TOP_N,
    rank_by: str = "accuracy",
    value: str = "best",
    now: datetime | None = None,
    read_rollups: bool = True,
) -> dict[str, Any]:
    """Status counts, success rate, per-mode averages, their comparison and the top runs.

    Status counts and success rate follow the training_mode and days filters only;
    everything else follows the status filter too. value picks each run's best or final
    (SPEC §3) validation values for the averages, maxima and ranking. The counts and
    averages of best values under the status, training_mode and days filters come from
    the roll-ups (services.rollups; read_rollups=False reads the runs instead, as the
    other filters do). At most three statements whatever the data.
    """
    if status not in STATUS_CHOICES:
        raise InvalidInput(f"status must be one of {', '.join(STATUS_CHOICES)}.")
    if rank_by not in SCORE_KEYS:
        raise InvalidInput(f"rank_by must be one of {', '.join(SCORE_KEYS)}.")
    if value not in ANALYTICS_VALUES:
        raise InvalidInput(f"value must be one of {', '.join(ANALYTICS_VALUES)}.")
    base: dict[str, Any] = {}
    if training_mode is not None:
        base["training_mode"] = training_mode
    if days is not None:
        base["started_after"] = (now or utc_now()) - timedelta(days=days)
    if experiment is not None:
        base["experiment"] = experiment
    base.update(run_stats.tag_params(tag))
    params = base if status == ALL_STATUSES else {**base, "status": RunStatus(status)}
    if read_rollups and value == "best" and experiment is None and not tag:
        status_counts, modes = _from_rollups(status, training_mode, base.get("started_after"))
    else:
        status_counts = _status_counts(run_stats.filter_names(base), base)
        modes = _mode_metrics(run_stats.filter_names(params), params, value)
    centralized, federated = modes[TrainingMode.CENTRALIZED], modes[TrainingMode.FEDERATED]
    comparison = {
        key.removeprefix("avg_"): difference(federated[key], centralized[key])
        for key in (*(key for key, _ in _AVERAGED_SCORES), "avg_duration_minutes")
    }
    return {
        "total_runs": centralized["count"] + federated["count"],
        "success_rate": success_rate(
            status_counts[RunStatus.COMPLETED.value], status_counts[RunStatus.FAILED.value]
        ),
        "status_counts": status_counts,
        "centralized": centralized,
        "federated": federated,
        "comparison": comparison,
        "top_runs": _top_runs(run_stats.filter_names(params), params, rank_by, top_n, value),
    }
