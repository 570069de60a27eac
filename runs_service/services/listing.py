"""The filtered, sorted page of run summaries behind GET /api/runs/list."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, Subquery, bindparam, func, select

from runs_service.errors import InvalidInput
from runs_service.extensions import db
from runs_service.models import Run, RunStatus, TrainingMode
from runs_service.services import run_stats
from runs_service.services.definitions import (
    CONFUSION_METRIC_NAMES,
    SERVER_COUNT_FIELDS,
    client_count,
    confusion_statistics_or_none,
    duration_minutes,
)

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
SORT_ORDERS = ("asc", "desc")
# sort_by value -> score of run_stats.best_scores it sorts by.
BEST_SORT_KEYS = {"best_val_accuracy": "accuracy", "best_val_recall": "recall"}
RUN_SORT_KEYS = ("start_time", "end_time", "id", "status", "training_mode", "duration")
SORT_KEYS = (*RUN_SORT_KEYS, *BEST_SORT_KEYS)

_PAGE_COLUMNS = (
    Run.id,
    Run.training_mode,
    Run.status,
    Run.start_time,
    Run.end_time,
    Run.run_description,
    Run.config,
)


def _sort_key(sort_by: str, best_scores: Subquery | None) -> tuple[ColumnElement[Any], bool]:
    """The column a sort key orders by, and whether it can be null."""
    if best_scores is not None:
        return best_scores.c[BEST_SORT_KEYS[sort_by]], True
    if sort_by == "duration":
        return run_stats.duration_seconds(Run.start_time, Run.end_time), True
    return getattr(Run, sort_by), sort_by == "end_time"


@functools.cache
def _count_query(filters: frozenset[str]) -> Select:
    return select(func.count()).select_from(Run).where(*run_stats.run_filters(filters))


@functools.cache
def _page_query(filters: frozenset[str], sort_by: str, descending: bool) -> Select:
    """The page's runs, sorted and sliced in the database; limit and offset are parameters."""
    scope = run_stats.run_filters(filters)
    query = select(*_PAGE_COLUMNS).where(*scope)
    best_scores = None
    if sort_by in BEST_SORT_KEYS:
        best_scores = run_stats.best_scores(scope)
        query = query.outerjoin(best_scores, best_scores.c.run_id == Run.id)
    order = []
    if sort_by != "id":
        key, nullable = _sort_key(sort_by, best_scores)
        key = key.desc() if descending else key.asc()
        # Nulls last in both directions; non-null keys stay plain so indexes serve them.
        order.append(key.nulls_last() if nullable else key)
    order.append(Run.id.desc() if descending else Run.id.asc())
    return query.order_by(*order).limit(bindparam("limit")).offset(bindparam("offset"))


@functools.cache
def _facts_query() -> Select:
    """Best scores, counts, final confusion counts and federated facts of the runs in run_ids."""
    scope = [Run.id.in_(bindparam("run_ids", expanding=True))]
    bests = run_stats.best_scores(scope)
    final_counts = run_stats.final_epoch_counts(scope)
    rounds = run_stats.federated_rounds(scope)
    metrics = run_stats.metric_counts(scope)
    clients = run_stats.client_counts(scope)
    return (
        select(
            Run.id,
            bests.c.accuracy,
            bests.c.recall,
            metrics.c.metrics_count,
            clients.c.registered_clients,
            rounds.c.evaluations,
            rounds.c.num_rounds,
            rounds.c.latest_round,
            rounds.c.latest_accuracy,
            *(rounds.c[name] for name in SERVER_COUNT_FIELDS),
            *(final_counts.c[name] for name in CONFUSION_METRIC_NAMES),
        )
        .outerjoin(bests, bests.c.run_id == Run.id)
        .outerjoin(metrics, metrics.c.run_id == Run.id)
        .outerjoin(clients, clients.c.run_id == Run.id)
        .outerjoin(rounds, rounds.c.run_id == Run.id)
        .outerjoin(final_counts, final_counts.c.run_id == Run.id)
        .where(*scope)
    )


def _facts(run_ids: Sequence[int]) -> dict[int, Row]:
    if not run_ids:
        return {}
    rows = db.session.execute(_facts_query(), {"run_ids": list(run_ids)})
    return {row.id: row for row in rows}


def _federated_info(run: Row, facts: Row) -> dict[str, Any]:
    return {
        "num_rounds": facts.num_rounds or 0,
        "num_clients": client_count(facts.registered_clients or 0, run.config),
        "has_server_evaluation": bool(facts.evaluations),
        "best_accuracy": facts.accuracy,
        "best_recall": facts.recall,
        "latest_round": facts.latest_round,
        "latest_accuracy": facts.latest_accuracy,
    }


def _summary(run: Row, facts: Row) -> dict[str, Any]:
    federated = run.training_mode is TrainingMode.FEDERATED
    count_names = SERVER_COUNT_FIELDS if federated else CONFUSION_METRIC_NAMES
    return {
        "id": run.id,
        "training_mode": run.training_mode,
        "status": run.status,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "run_description": run.run_description,
        "duration_minutes": duration_minutes(run.start_time, run.end_time),
        "best_val_accuracy": facts.accuracy,
        "best_val_recall": facts.recall,
        "metrics_count": facts.metrics_count or 0,
        "federated_info": _federated_info(run, facts) if federated else None,
        "final_epoch_stats": confusion_statistics_or_none(
            *(getattr(facts, name) for name in count_names)
        ),
    }


def list_runs(
    *,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
    status: RunStatus | None = None,
    training_mode: TrainingMode | None = None,
    sort_by: str = "start_time",
    sort_order: str = "desc",
    started_after: datetime | None = None,
    started_before: datetime | None = None,
) -> dict[str, Any]:
    """One page of run summaries and the number of runs matching the filters.

    Three statements whatever the page size: the count, the page, and the page's facts.
    """
    if sort_by not in SORT_KEYS:
        raise InvalidInput(f"sort_by must be one of {', '.join(SORT_KEYS)}.")
    if sort_order not in SORT_ORDERS:
        raise InvalidInput("sort_order must be asc or desc.")
    given = {
        "status": status,
        "training_mode": training_mode,
        "started_after": started_after,
        "started_before": started_before,
    }
    params = {name: value for name, value in given.items() if value is not None}
    filters = frozenset(params)
    total = db.session.scalar(_count_query(filters), params)
    page = db.session.execute(
        _page_query(filters, sort_by, sort_order == "desc"),
        {**params, "limit": limit, "offset": offset},
    ).all()
    facts = _facts([run.id for run in page])
    return {
        "runs": [_summary(run, facts[run.id]) for run in page],
        "total": total,
        "limit": limit,
        "offset": offset,
    }
