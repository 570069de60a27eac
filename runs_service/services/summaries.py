"""Keeping each run's stored summary (models.RunSummary) in step with its data."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import ScalarSelect, Update, bindparam, func, select

from runs_service.catalogue import (
    CENTRALIZED_METRIC_NAMES,
    CONFUSION_METRIC_NAMES,
    HISTORY_FIELDS,
    METRIC_ALIASES,
    SCORE_METRICS,
    SERVER_COUNT_FIELDS,
)
from runs_service.extensions import db
from runs_service.models import Client, Run, RunMetric, RunSummary, TrainingMode
from runs_service.models.metric_summary import RUN_LEVEL
from runs_service.models.types import utc_now
from runs_service.services import rollups
from runs_service.services.definitions import CentralizedView, FederatedView
from runs_service.services.metric_summaries import SeriesKey
from runs_service.services.results import load_history_view
from runs_service.services.series import SeriesSummary
from runs_service.services.upsert import CoreWrite, dialect_insert

# RunSummary column -> key of a history view's bests.
BEST_COLUMNS = tuple((f"best_{metric.key}", metric.best_key) for metric in SCORE_METRICS)
FINAL_COUNT_COLUMNS = tuple((f"final_{name}", name) for name in SERVER_COUNT_FIELDS)


def summary_values(
    view: CentralizedView | FederatedView, metrics_count: int, clients: int
) -> dict[str, Any]:
    """The stored facts of a run, all taken from its derived history view."""
    matrix = view.final_confusion_matrix or {}
    federated = isinstance(view, FederatedView)
    return {
        "metrics_count": metrics_count,
        **{column: view.bests[key] for column, key in BEST_COLUMNS},
        **{column: matrix.get(key) for column, key in FINAL_COUNT_COLUMNS},
        "has_server_evaluation": federated and (bool(view.history) or view.initial is not None),
        "num_rounds": view.num_rounds if federated else 0,
        "latest_round": view.latest_round if federated else None,
        "latest_accuracy": view.final_metrics["accuracy"] if federated else None,
        "registered_clients": clients,
    }


def _counts(run_id: int) -> tuple[ScalarSelect[int], ScalarSelect[int]]:
    """The run's stored metric points and registered clients, as subqueries."""
    return (
        select(func.count()).where(RunMetric.run_id == run_id).scalar_subquery(),
        select(func.count()).where(Client.run_id == run_id).scalar_subquery(),
    )


def refresh_run_summary(
    run: Run, *, history_changed: bool = True, track_rollups: bool = True
) -> None:
    """Recompute a run's summary inside the caller's transaction (the caller commits).

    history_changed=False recomputes the counts only, in one statement, for writes that
    cannot touch the run's history (client-local metrics of a federated run, whose
    history is its server evaluations). track_rollups=False leaves the analytics
    roll-ups to the caller (which rebuilds them after refreshing every run).
    """
    if not history_changed:
        metrics_count, clients = _counts(run.id)
        update = (
            RunSummary.__table__.update()
            .where(RunSummary.run_id == run.id)
            .values(metrics_count=metrics_count, registered_clients=clients, updated_at=utc_now())
        )
        if db.session.execute(update).rowcount == 1:
            return
        # No summary yet (a database restored without them): build it whole.
    metrics_count, clients = db.session.execute(select(*_counts(run.id))).one()
    values = summary_values(load_history_view(run), metrics_count, clients)
    values["updated_at"] = utc_now()
    old_bests = rollups.stored_bests(run.id) if track_rollups else None
    insert = dialect_insert(db.session, RunSummary.__table__).values(
        run_id=run.id, training_mode=run.training_mode, **values
    )
    db.session.execute(insert.on_conflict_do_update(index_elements=["run_id"], set_=values))
    if track_rollups:
        rollups.move_contribution(
            rollups.run_contribution(run, old_bests), rollups.run_contribution(run, values)
        )


def refresh_all_summaries() -> int:
    """Recompute every run's summary (after a restore or a definition change).

    The analytics roll-ups follow from the summaries: rebuild them afterwards
    (services.rollups.rebuild_rollups).
    """
    runs = db.session.scalars(select(Run).order_by(Run.id)).all()
    for run in runs:
        refresh_run_summary(run, track_rollups=False)
    db.session.commit()
    return len(runs)


# --- Incremental upkeep: a batch touches its own series, never the run's whole history ---

_AMBIGUOUS = object()


def _score_best(series: Mapping[str, SeriesSummary], names: Sequence[str]) -> Any:
    present = [series[name] for name in names if name in series]
    if len(present) > 1:
        # A name and its alias both logged: per epoch the name wins, which only the
        # points can tell.
        return _AMBIGUOUS
    return present[0].best_value if present else None


def centralized_facts(
    series: Mapping[str, SeriesSummary],
    value_at: Callable[[Sequence[str], int], dict[str, float]] | None,
) -> dict[str, Any] | None:
    """A centralized run's bests and final counts from its run-level series summaries.

    value_at(names, step) reads single points (a count series that goes on past the
    final epoch). None when only the points can decide (a metric logged under two names,
    or a point to read without value_at).
    """
    values: dict[str, Any] = {}
    for metric in SCORE_METRICS:
        found = _score_best(series, (metric.history_name, *metric.aliases))
        if found is _AMBIGUOUS:
            return None
        values[f"best_{metric.key}"] = found
    # The final epoch: the highest step with a history metric (counts alone make none).
    history_steps = [
        series[name].last_step for name in (*HISTORY_FIELDS, *METRIC_ALIASES) if name in series
    ]
    counts: dict[str, float | None] = dict.fromkeys(CONFUSION_METRIC_NAMES)
    if history_steps:
        final = max(history_steps)
        beyond = []
        for name in CONFUSION_METRIC_NAMES:
            summary = series.get(name)
            if summary is not None and summary.last_step == final:
                counts[name] = summary.last_value
            elif summary is not None and summary.last_step > final:
                beyond.append(name)
        if beyond and value_at is None:
            return None
        if beyond:
            counts.update(value_at(beyond, final))
    complete = None not in counts.values()
    for column, count in zip(FINAL_COUNT_COLUMNS, CONFUSION_METRIC_NAMES, strict=True):
        values[column[0]] = int(counts[count]) if complete else None
    return values


def _run_level_values_at(run_id: int) -> Callable[[Sequence[str], int], dict[str, float]]:
    def value_at(names: Sequence[str], step: int) -> dict[str, float]:
        query = select(RunMetric.metric_name, RunMetric.metric_value).where(
            RunMetric.run_id == run_id,
            RunMetric.metric_name.in_(names),
            RunMetric.step == step,
            RunMetric.client_key == RUN_LEVEL,
        )
        return dict(db.session.connection().execute(query).all())

    return value_at


# Columns an incremental update adds to instead of setting.
_ADDED = ("metrics_count", "registered_clients")


@functools.cache
def _update_statement(columns: tuple[str, ...]) -> Update:
    table = RunSummary.__table__
    return (
        table.update()
        .where(table.c.run_id == bindparam("summary_run_id"))
        .values(
            {
                column: table.c[column] + bindparam(column)
                if column in _ADDED
                else bindparam(column)
                for column in columns
            }
        )
    )


# A run's stored bests not read yet.
_UNREAD = object()


def _update_summary(run: Run, values: dict[str, Any], old_bests: Any = _UNREAD) -> None:
    """UPDATE the run's summary row; a missing row (a restore without them) is rebuilt whole.

    metrics_count and registered_clients in `values` are increments. old_bests: the
    stored bests if the caller read them in this transaction under the run's lock
    (None: no summary row), else they are read here when the bests change.
    """
    bests_change = any(column in values for column in rollups.BEST_COLUMNS)
    if bests_change and old_bests is _UNREAD:
        old_bests = rollups.stored_bests(run.id)
    update = _summary_update(run, values)
    result = db.session.connection().execute(update.statement, update.parameters)
    if result.rowcount != 1:
        refresh_run_summary(run)
    elif bests_change:
        # The analytics roll-ups follow the run's bests (same transaction).
        rollups.move_contribution(*_contributions_moved(run, old_bests, values))


def _summary_update(run: Run, values: Mapping[str, Any]) -> CoreWrite:
    """The UPDATE of the run's summary row with `values` (counts as increments)."""
    values = {**values, "updated_at": utc_now()}
    return CoreWrite(_update_statement(tuple(sorted(values))), {**values, "summary_run_id": run.id})


def _contributions_moved(
    run: Run, old_bests: Mapping[str, float | None], values: Mapping[str, Any]
) -> tuple[rollups.Contribution, rollups.Contribution]:
    """The run's roll-up contribution before and after `values` change its bests."""
    new_bests = {**old_bests, **{c: values[c] for c in rollups.BEST_COLUMNS if c in values}}
    return rollups.run_contribution(run, old_bests), rollups.run_contribution(run, new_bests)


def series_to_read(run: Run) -> list[SeriesKey]:
    """The series a run's summary is derived from (read along with a batch's own)."""
    if run.training_mode is TrainingMode.CENTRALIZED:
        return [(name, RUN_LEVEL) for name in CENTRALIZED_METRIC_NAMES]
    return [(metric.series_name, RUN_LEVEL) for metric in SCORE_METRICS]


def _metric_batch_values(
    run: Run,
    inserted: int,
    new_clients: int,
    series: Mapping[SeriesKey, SeriesSummary | None],
    changed: Iterable[SeriesKey],
    value_at: Callable[[Sequence[str], int], dict[str, float]] | None,
) -> dict[str, Any] | None:
    """What a metric batch changes in its run's summary (counts as increments); None when
    only the run's points can say (centralized_facts)."""
    values: dict[str, Any] = {
        "metrics_count": inserted,
        "registered_clients": new_clients,
    }
    # A federated run's history is its server evaluations: its metric points are counted only.
    history = {name for name, client in changed if client == RUN_LEVEL} & set(
        CENTRALIZED_METRIC_NAMES
    )
    if run.training_mode is TrainingMode.CENTRALIZED and history:
        run_level = {
            name: summary
            for (name, client), summary in series.items()
            if client == RUN_LEVEL and summary is not None
        }
        facts = centralized_facts(run_level, value_at)
        if facts is None:
            return None
        values.update(facts)
    return values


def record_metric_batch(
    run: Run,
    inserted: int,
    new_clients: int,
    series: Mapping[SeriesKey, SeriesSummary | None],
    changed: Iterable[SeriesKey],
    old_bests: Mapping[str, float | None] | None,
) -> None:
    """Update a run's summary after a metric batch from its series (series_to_read's and
    the changed ones, as series_update returns them); old_bests are the run's
    stored bests as the batch read them (BatchState.run_bests)."""
    values = _metric_batch_values(
        run, inserted, new_clients, series, changed, _run_level_values_at(run.id)
    )
    if values is None:
        refresh_run_summary(run)
        return
    _update_summary(run, values, old_bests)


def metric_batch_writes(
    run: Run,
    inserted: int,
    new_clients: int,
    series: Mapping[SeriesKey, SeriesSummary | None],
    changed: Iterable[SeriesKey],
    old_bests: Mapping[str, float | None] | None,
) -> list[CoreWrite] | None:
    """record_metric_batch's writes, to send with the batch's points (PostgreSQL: in the
    same statement, two round trips fewer): the summary's UPDATE and the roll-up's
    increment. None when only record_metric_batch can do it, after the points: no
    summary yet, facts that need a stored point, or a group's maximum that may leave.
    """
    if old_bests is None:
        return None
    values = _metric_batch_values(run, inserted, new_clients, series, changed, value_at=None)
    if values is None:
        return None
    moves = rollups.contribution_writes(*_contributions_moved(run, old_bests, values))
    return None if moves is None else [_summary_update(run, values), *moves]


def record_evaluation_batch(
    run: Run,
    evaluations: Sequence[Mapping[str, Any]],
    previous_rounds: Iterable[int],
    series: Mapping[SeriesKey, SeriesSummary | None],
    changed: Iterable[SeriesKey],
) -> None:
    """Update a federated run's summary after a batch of whole rounds.

    Rounds, latest round and its values come from the batch and the stored summary; the
    bests from the server_* series summaries (over training rounds, SPEC §3).
    """
    stored = db.session.execute(
        select(RunSummary.num_rounds, RunSummary.latest_round).where(RunSummary.run_id == run.id)
    ).one_or_none()
    if stored is None or not evaluations:
        refresh_run_summary(run)
        return
    previous = set(previous_rounds)
    training = {e["round_number"]: e for e in evaluations if e["round_number"] >= 1}
    values: dict[str, Any] = {
        "has_server_evaluation": True,
        "num_rounds": stored.num_rounds + len(training.keys() - previous),
    }
    latest = max([*training, *([stored.latest_round] if stored.latest_round else [])], default=None)
    if latest is not None and latest in training:
        evaluation = training[latest]
        counts = [evaluation.get(field) for field in SERVER_COUNT_FIELDS]
        complete = None not in counts
        values["latest_round"] = latest
        values["latest_accuracy"] = evaluation.get("accuracy")
        for (column, _), count in zip(FINAL_COUNT_COLUMNS, counts, strict=True):
            values[column] = count if complete else None
    if any((metric.series_name, RUN_LEVEL) in set(changed) for metric in SCORE_METRICS):
        for metric in SCORE_METRICS:
            summary = series.get((metric.series_name, RUN_LEVEL))
            values[f"best_{metric.key}"] = None if summary is None else summary.best_value
    _update_summary(run, values)


def record_new_clients(run: Run, new_clients: int) -> None:
    """Update a run's client count after a registration batch."""
    _update_summary(run, {"registered_clients": new_clients})
