"""Centralized vs federated analytics behind GET /api/runs/analytics/summary."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, select

from runs_service.catalogue import ALL_STATUSES, DEFAULT_TOP_N, SCORE_KEYS
from runs_service.errors import InvalidInput
from runs_service.extensions import db
from runs_service.models import Run, RunStatus, RunSummary, TrainingMode
from runs_service.models.types import utc_now
from runs_service.services import run_stats
from runs_service.services.definitions import (
    difference,
    duration_minutes,
    round4,
    success_rate,
)

STATUS_CHOICES = (*(status.value for status in RunStatus), ALL_STATUSES)
# (ModeMetrics key, score whose stored best it averages); the comparison drops "avg_".
_AVERAGED_SCORES = tuple((f"avg_{score}", score) for score in SCORE_KEYS)


@functools.cache
def _status_counts_query(filters: frozenset[str]) -> Select:
    return (
        select(Run.status, func.count()).where(*run_stats.run_filters(filters)).group_by(Run.status)
    )


def _best(score: str) -> ColumnElement[float]:
    return getattr(RunSummary, f"best_{score}")


@functools.cache
def _mode_metrics_query(filters: frozenset[str]) -> Select:
    return (
        select(
            Run.training_mode,
            func.count().label("count"),
            *(func.avg(_best(score)).label(key) for key, score in _AVERAGED_SCORES),
            func.avg(run_stats.duration_seconds(Run.start_time, Run.end_time)).label(
                "avg_duration_seconds"
            ),
        )
        .outerjoin(RunSummary, RunSummary.run_id == Run.id)
        .where(*run_stats.run_filters(filters))
        .group_by(Run.training_mode)
    )


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
        .where(*run_stats.run_filters(filters))
        .order_by(_best(rank_by).desc().nulls_last(), RunSummary.run_id.desc())
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
        "avg_duration_minutes": None,
    }


def _mode_metrics(
    filters: frozenset[str], params: dict[str, Any]
) -> dict[TrainingMode, dict[str, Any]]:
    """Per training mode: run count and averages over the runs that have each value."""
    metrics = {mode: _empty_mode_metrics() for mode in TrainingMode}
    for row in db.session.execute(_mode_metrics_query(filters), params):
        seconds = row.avg_duration_seconds
        metrics[row.training_mode] = {
            "count": row.count,
            **{key: round4(getattr(row, key)) for key, _ in _AVERAGED_SCORES},
            "avg_duration_minutes": None if seconds is None else round4(seconds / 60),
        }
    return metrics


def _top_runs(
    filters: frozenset[str], params: dict[str, Any], rank_by: str, top_n: int
) -> list[dict[str, Any]]:
    rows = db.session.execute(_top_runs_query(filters, rank_by), {**params, "top_n": top_n})
    return [
        {
            "run_id": row.id,
            "training_mode": row.training_mode,
            "status": row.status,
            **{f"best_{score}": getattr(row, score) for score in SCORE_KEYS},
            "duration_minutes": duration_minutes(row.start_time, row.end_time),
            "start_time": row.start_time,
        }
        for row in rows
    ]


def analytics_summary(
    *,
    status: str = RunStatus.COMPLETED.value,
    training_mode: TrainingMode | None = None,
    days: int | None = None,
    top_n: int = DEFAULT_TOP_N,
    rank_by: str = "accuracy",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Status counts, success rate, per-mode averages, their comparison and the top runs.

    Status counts and success rate follow the training_mode and days filters only;
    everything else follows the status filter too. Three statements whatever the data.
    """
    if status not in STATUS_CHOICES:
        raise InvalidInput(f"status must be one of {', '.join(STATUS_CHOICES)}.")
    if rank_by not in SCORE_KEYS:
        raise InvalidInput(f"rank_by must be one of {', '.join(SCORE_KEYS)}.")
    base: dict[str, Any] = {}
    if training_mode is not None:
        base["training_mode"] = training_mode
    if days is not None:
        base["started_after"] = (now or utc_now()) - timedelta(days=days)
    params = base if status == ALL_STATUSES else {**base, "status": RunStatus(status)}
    status_counts = _status_counts(frozenset(base), base)
    modes = _mode_metrics(frozenset(params), params)
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
        "top_runs": _top_runs(frozenset(params), params, rank_by, top_n),
    }
