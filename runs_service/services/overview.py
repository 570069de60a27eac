"""A run's overview (final and best metrics, epochs, final confusion matrix) for the pages.

The same numbers as ExperimentResults (services.results, which derives them from the
whole history), read instead from what writes keep: the per-series summaries (SPEC §7),
the run's summary (final counts, training rounds) and the run row. So a run's page costs
the same for ten epochs as for a million points. Where the stored facts cannot decide
(a metric logged under a name and its alias; epochs with holes in every series) the
overview is derived from the history as ExperimentResults is. tests/api/test_run_overview.py
holds both ways to the same answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import distinct, func, select

from runs_service.catalogue import (
    ACCURACY_METRIC,
    CENTRALIZED_METRIC_NAMES,
    FINAL_METRICS,
    HISTORY_FIELDS,
    MAX_RUN_ID,
    METRIC_ALIASES,
    VALIDATION_METRICS,
)
from runs_service.errors import RunNotFound
from runs_service.extensions import db
from runs_service.models import Run, RunMetric, RunSummary, TrainingMode
from runs_service.models.metric_summary import RUN_LEVEL
from runs_service.services.definitions import (
    CentralizedView,
    FederatedView,
    confusion_statistics_or_none,
    duration_minutes,
)
from runs_service.services.metric_summaries import read_metric_summaries
from runs_service.services.results import load_history_view
from runs_service.services.summaries import FINAL_COUNT_COLUMNS

# The series an overview reads: a centralized history's names, the server_* metrics.
OVERVIEW_SERIES = (
    *CENTRALIZED_METRIC_NAMES,
    *(metric.series_name for metric in VALIDATION_METRICS),
)
HISTORY_SERIES = (*HISTORY_FIELDS, *METRIC_ALIASES)

# name -> MetricSummary dict (SPEC §7) of a run's run-level series.
Series = Mapping[str, Mapping[str, Any]]


def _facts(
    run: Run,
    *,
    total_epochs: int,
    final_metrics: dict[str, float | None],
    bests: dict[str, float | int | None],
    counts: Sequence[int | None],
) -> dict[str, Any]:
    return {
        "run": run,
        "experiment_name": run.run_description or f"run_{run.id}",
        "total_epochs": total_epochs,
        "final_metrics": final_metrics,
        "bests": bests,
        "confusion_matrix": confusion_statistics_or_none(*counts),
        "duration_minutes": duration_minutes(run.start_time, run.end_time),
    }


def overview_of_view(run: Run, view: CentralizedView | FederatedView) -> dict[str, Any]:
    """The overview of a run from its derived history view (the definition)."""
    matrix = view.final_confusion_matrix or {}
    return _facts(
        run,
        total_epochs=view.total_epochs,
        final_metrics=view.final_metrics,
        bests=view.bests,
        counts=[matrix.get(key) for _, key in FINAL_COUNT_COLUMNS],
    )


def _bests(series_of: Mapping[str, Mapping[str, Any]], epoch_offset: int) -> dict[str, Any]:
    """best_val_* and best_epoch from each validation metric's series summary."""
    bests: dict[str, Any] = {}
    for metric in VALIDATION_METRICS:
        entry = series_of.get(metric.key)
        found = entry["best"] if entry else None
        if metric is ACCURACY_METRIC:
            bests["best_epoch"] = None if found is None else found["step"] + epoch_offset
        bests[metric.best_key] = None if found is None else found["value"]
    return bests


def _finals(series_of: Mapping[str, Mapping[str, Any]], step: int | None) -> dict[str, Any]:
    """final_metrics: each metric's value at `step` (its last point, if that is at `step`)."""
    finals: dict[str, Any] = {}
    for metric in FINAL_METRICS:
        last = (series_of.get(metric.key) or {}).get("last")
        finals[metric.final_key] = last["value"] if last and last["step"] == step else None
    return finals


def centralized_overview(
    run: Run,
    series: Series,
    counts: Sequence[int | None],
    count_epochs: Callable[[], int],
) -> dict[str, Any] | None:
    """A centralized run's overview from its series summaries and final counts.

    None when a metric was logged under its name and an alias: per epoch the name wins,
    which only the points tell. count_epochs() counts the epochs from the points' steps;
    it is asked only when no single history series has a point at every epoch.
    """
    series_of: dict[str, Mapping[str, Any]] = {}
    for metric in VALIDATION_METRICS:
        names = (metric.history_name, *metric.aliases)
        present = [series[name] for name in names if name in series]
        if len(present) > 1:
            return None
        if present:
            series_of[metric.key] = present[0]
    history = [series[name] for name in HISTORY_SERIES if name in series]
    final = max((entry["last"]["step"] for entry in history), default=None)
    total_epochs = 0
    if history:
        first = min(entry["first"]["step"] for entry in history)
        # A series with a point at every step from the first epoch to the final one has
        # one at every epoch, and no step outside that range has a history metric.
        covered = any(entry["count"] == final - first + 1 for entry in history)
        total_epochs = final - first + 1 if covered else count_epochs()
    return _facts(
        run,
        total_epochs=total_epochs,
        final_metrics=_finals(series_of, final),
        bests=_bests(series_of, 1),
        counts=counts,
    )


def federated_overview(
    run: Run,
    series: Series,
    counts: Sequence[int | None],
    num_rounds: int,
    latest_round: int | None,
) -> dict[str, Any]:
    """A federated run's overview from its server_* series summaries and its summary.

    server_* bests count training rounds only (SPEC §3, §7); the final values are those
    of the latest training round.
    """
    series_of = {
        metric.key: series[metric.series_name]
        for metric in VALIDATION_METRICS
        if metric.series_name in series
    }
    return _facts(
        run,
        total_epochs=num_rounds,
        final_metrics=_finals(series_of, latest_round),
        bests=_bests(series_of, 0),
        counts=counts,
    )


def _history_steps_query(run_id: int):
    return select(func.count(distinct(RunMetric.step))).where(
        RunMetric.run_id == run_id,
        RunMetric.client_key == RUN_LEVEL,
        RunMetric.metric_name.in_(HISTORY_SERIES),
    )


def _epoch_counter(run_id: int) -> Callable[[], int]:
    def count_epochs() -> int:
        return db.session.execute(_history_steps_query(run_id)).scalar_one()

    return count_epochs


SUMMARY_COLUMNS = (
    RunSummary.run_id,
    RunSummary.num_rounds,
    RunSummary.latest_round,
    *(getattr(RunSummary, column) for column, _ in FINAL_COUNT_COLUMNS),
)


def run_overviews(run_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The overviews of the runs among run_ids that exist, by id, in three statements.

    A run whose stored facts cannot decide is derived from its history instead (see
    centralized_overview), as is one without a stored summary (a restored database).
    """
    wanted = sorted({run_id for run_id in run_ids if 1 <= run_id <= MAX_RUN_ID})
    if not wanted:
        return {}
    runs = db.session.execute(select(Run).where(Run.id.in_(wanted))).scalars().all()
    found = [run.id for run in runs]
    stored = {
        row.run_id: row
        for row in db.session.execute(select(*SUMMARY_COLUMNS).where(RunSummary.run_id.in_(found)))
    }
    series = read_metric_summaries(found, OVERVIEW_SERIES)
    overviews: dict[int, dict[str, Any]] = {}
    for run in runs:
        summary = stored.get(run.id)
        overview = None
        if summary is not None:
            by_name = {entry["name"]: entry for entry in series[run.id]}
            counts = [getattr(summary, column) for column, _ in FINAL_COUNT_COLUMNS]
            if run.training_mode is TrainingMode.FEDERATED:
                overview = federated_overview(
                    run, by_name, counts, summary.num_rounds, summary.latest_round
                )
            else:
                overview = centralized_overview(run, by_name, counts, _epoch_counter(run.id))
        overviews[run.id] = overview or overview_of_view(run, load_history_view(run))
    return overviews


def run_overview(run_id: int) -> dict[str, Any]:
    """The overview of one run; RunNotFound when it does not exist."""
    overview = run_overviews([run_id]).get(run_id)
    if overview is None:
        raise RunNotFound(run_id)
    return overview
