"""The filtered, sorted page of run summaries behind GET /api/runs/list."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    Select,
    String,
    and_,
    bindparam,
    exists,
    func,
    select,
)
from sqlalchemy.dialects import postgresql

from runs_service.catalogue import (
    BEST_SORT_KEYS,
    DEFAULT_LIST_LIMIT,
    LIST_SORT_KEYS,
    METRIC_SORT_KEY,
    METRIC_SORT_STATS,
    SORT_ORDERS,
)
from runs_service.errors import InvalidInput
from runs_service.extensions import db
from runs_service.models import MetricSummary, Run, RunStatus, RunSummary, TrainingMode
from runs_service.models.metric_summary import is_run_level
from runs_service.services import rollups, run_stats
from runs_service.services.definitions import (
    client_count,
    confusion_statistics_or_none,
    duration_minutes,
)
from runs_service.services.summaries import FINAL_COUNT_COLUMNS

_PAGE_COLUMNS = (
    Run.id,
    Run.training_mode,
    Run.status,
    Run.start_time,
    Run.end_time,
    Run.run_description,
    Run.experiment,
    run_stats.run_tag_list().label("tag_list"),
    Run.config,
    RunSummary.metrics_count,
    RunSummary.best_accuracy,
    RunSummary.best_recall,
    RunSummary.has_server_evaluation,
    RunSummary.num_rounds,
    RunSummary.latest_round,
    RunSummary.latest_accuracy,
    RunSummary.registered_clients,
    *(getattr(RunSummary, column) for column, _ in FINAL_COUNT_COLUMNS),
)


def _sort_key(sort_by: str) -> tuple[ColumnElement[Any], bool]:
    """The column a sort key orders by, and whether it can be null."""
    if sort_by in BEST_SORT_KEYS:
        return getattr(RunSummary, f"best_{BEST_SORT_KEYS[sort_by]}"), True
    if sort_by == "duration":
        return run_stats.duration_seconds(Run.start_time, Run.end_time), True
    return getattr(Run, sort_by), sort_by == "end_time"


# The list's total under these filters only is a sum over the analytics roll-ups (flat in
# the number of runs); any other filter counts the matching runs (BENCHMARKS.md, N = 100,000).
_COUNTED_BY_ROLLUPS = frozenset({"statuses", "training_modes"})


@functools.cache
def _count_query(filters: frozenset[str]) -> Select:
    """How many runs match the filters: a sum over the roll-ups where they can say."""
    if filters <= _COUNTED_BY_ROLLUPS:
        return rollups.run_count_query("statuses" in filters, "training_modes" in filters)
    return select(func.count()).select_from(Run).where(*run_stats.run_filters(filters))


def _with_total(query: Select, filters: frozenset[str]) -> Select:
    """The query with the matching runs' total on every row (an uncorrelated subquery,
    run once): a page that has runs needs no statement of its own to count them."""
    return query.add_columns(_count_query(filters).scalar_subquery().label("total"))


def _total(filters: frozenset[str], params: dict[str, Any]) -> int:
    return int(db.session.connection().scalar(_count_query(filters), params))


@functools.cache
def _page_query(filters: frozenset[str], sort_by: str, descending: bool) -> Select:
    """The page's runs with their stored summaries, sorted and sliced in the database."""
    if sort_by in BEST_SORT_KEYS:
        # Driving from the summaries (every run has one, created with it) lets the
        # best_* index give the order, ties by run_id (= runs.id) included: no full sort.
        query = select(*_PAGE_COLUMNS).select_from(RunSummary).join(Run)
        run_id = RunSummary.run_id
    else:
        query = select(*_PAGE_COLUMNS).outerjoin(RunSummary, RunSummary.run_id == Run.id)
        run_id = Run.id
    query = query.where(*run_stats.run_filters(filters))
    order = []
    if sort_by != "id":
        key, nullable = _sort_key(sort_by)
        key = key.desc() if descending else key.asc()
        # Nulls last in both directions; non-null keys stay plain so indexes serve them.
        order.append(key.nulls_last() if nullable else key)
    order.append(run_id.desc() if descending else run_id.asc())
    query = query.order_by(*order).limit(bindparam("limit")).offset(bindparam("offset"))
    return _with_total(query, filters)


def _stat_column(stat: str) -> ColumnElement[float]:
    return getattr(MetricSummary, f"{stat}_value")


def _of_metric(stat: str) -> tuple[ColumnElement[bool], ...]:
    """The run-level series named by the `sort_metric` parameter, with a value of stat."""
    return (
        MetricSummary.metric_name == bindparam("sort_metric"),
        is_run_level(MetricSummary.client_key),
        _stat_column(stat).is_not(None),
    )


def _in_order(column: ColumnElement[Any], descending: bool) -> ColumnElement[Any]:
    return column.desc() if descending else column.asc()


def _with_metric(filters: frozenset[str], stat: str) -> Select:
    """The matching runs that have the stat, with their stored facts (unordered)."""
    return (
        select(*_PAGE_COLUMNS)
        .select_from(MetricSummary)
        .join(Run, Run.id == MetricSummary.run_id)
        .outerjoin(RunSummary, RunSummary.run_id == Run.id)
        .where(*_of_metric(stat), *run_stats.run_filters(filters))
    )


@functools.cache
def _with_metric_page_query(filters: frozenset[str], stat: str, descending: bool) -> Select:
    """A slice of the runs that have the stat, in its order (one walk of
    ix_metric_summaries_best/last), ties by run id."""
    value = _stat_column(stat)
    query = (
        _with_metric(filters, stat)
        .order_by(_in_order(value, descending), _in_order(MetricSummary.run_id, descending))
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )
    return _with_total(query, filters)


@functools.cache
def _with_metric_count_query(filters: frozenset[str], stat: str) -> Select:
    return select(func.count()).select_from(_with_metric(filters, stat).subquery())


@functools.cache
def _without_metric_page_query(filters: frozenset[str], stat: str, descending: bool) -> Select:
    """A slice of the runs without the stat, by run id in the sort's direction."""
    return (
        select(*_PAGE_COLUMNS)
        .outerjoin(RunSummary, RunSummary.run_id == Run.id)
        .where(
            *run_stats.run_filters(filters),
            ~exists().where(MetricSummary.run_id == Run.id, *_of_metric(stat)),
        )
        .order_by(_in_order(Run.id, descending))
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )


def _metric_page(
    filters: frozenset[str], stat: str, descending: bool, params: dict[str, Any]
) -> tuple[list[Row], int]:
    """The page sorted by one run-level series' stored stat, runs without it last, and
    the total of matching runs.

    The runs with the stat come first, a slice of one index walk. The runs without it are
    read only when the page reaches past the last run with it and the total says some are
    left: looking for them when there are none walks every matching run, which would cost
    every page a scan at 100,000 runs that all have the metric.
    """
    limit, offset = params["limit"], params["offset"]
    connection = db.session.connection()
    runs = connection.execute(_with_metric_page_query(filters, stat, descending), params).all()
    if runs:
        total = runs[0].total
        if len(runs) == limit:
            return runs, total
        with_stat = offset + len(runs)
    else:
        # The page starts past the runs with the stat: how many are there, of how many?
        total = _total(filters, params)
        with_stat = connection.scalar(_with_metric_count_query(filters, stat), params)
    skip = max(0, offset - with_stat)  # runs without the stat before the page
    if total - with_stat <= skip:
        return runs, total
    without = {**params, "limit": limit - len(runs), "offset": skip}
    page = connection.execute(_without_metric_page_query(filters, stat, descending), without)
    return runs + page.all(), total


@functools.cache
def _metric_columns_query(dialect: str) -> Select:
    """The run-level summaries of the named series of the page's runs.

    PostgreSQL: every (run, name) pair as two arrays unnested side by side, joined on the
    whole primary key: a lookup per pair, whatever statistics the planner has. Asked as
    `run_id IN … AND metric_name IN …`, a server that never analyzed metric_summaries
    (autovacuum off, or just after a bulk load) walked ix_metric_summaries_last over every
    run's summaries of those names instead (tests/api/test_list_metrics.py).
    """
    columns = (
        MetricSummary.run_id,
        MetricSummary.metric_name,
        MetricSummary.best_value,
        MetricSummary.last_value,
    )
    if dialect == "postgresql":
        wanted = (
            func.unnest(
                bindparam("run_ids", type_=postgresql.ARRAY(Integer)),
                bindparam("names", type_=postgresql.ARRAY(String)),
            )
            .table_valued("run_id", "name")
            .render_derived(name="wanted")
        )
        return (
            select(*columns)
            .select_from(wanted)
            .join(
                MetricSummary,
                and_(
                    MetricSummary.run_id == wanted.c.run_id,
                    MetricSummary.metric_name == wanted.c.name,
                    is_run_level(MetricSummary.client_key),
                ),
            )
        )
    return select(*columns).where(
        MetricSummary.run_id.in_(bindparam("run_ids", expanding=True)),
        MetricSummary.metric_name.in_(bindparam("names", expanding=True)),
        is_run_level(MetricSummary.client_key),
    )


def _metric_columns(run_ids: list[int], names: list[str]) -> dict[int, dict[str, Any]]:
    """{run_id: {name: {best, last}}} of the page's runs, in one statement."""
    columns = {run_id: {name: {"best": None, "last": None} for name in names} for run_id in run_ids}
    if not run_ids:
        return columns
    connection = db.session.connection()
    dialect = connection.dialect.name
    parameters = {"run_ids": run_ids, "names": names}
    if dialect == "postgresql":
        # Every (run, name) pair, the two arrays side by side.
        parameters = {
            "run_ids": [run_id for run_id in run_ids for _ in names],
            "names": names * len(run_ids),
        }
    for run_id, name, best, last in connection.execute(_metric_columns_query(dialect), parameters):
        columns[run_id][name] = {"best": best, "last": last}
    return columns


def _federated_info(run: Row) -> dict[str, Any]:
    return {
        "num_rounds": run.num_rounds or 0,
        "num_clients": client_count(run.registered_clients or 0, run.config),
        "has_server_evaluation": bool(run.has_server_evaluation),
        "best_accuracy": run.best_accuracy,
        "best_recall": run.best_recall,
        "latest_round": run.latest_round,
        "latest_accuracy": run.latest_accuracy,
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _summary(run: Row) -> dict[str, Any]:
    """A RunSummary, JSON-ready: the list route sends these without re-dumping them."""
    federated = run.training_mode is TrainingMode.FEDERATED
    return {
        "id": run.id,
        "training_mode": run.training_mode.value,
        "status": run.status.value,
        "start_time": _iso(run.start_time),
        "end_time": _iso(run.end_time),
        "run_description": run.run_description,
        "experiment": run.experiment,
        "tags": run_stats.split_tags(run.tag_list),
        "duration_minutes": duration_minutes(run.start_time, run.end_time),
        "best_val_accuracy": run.best_accuracy,
        "best_val_recall": run.best_recall,
        "metrics_count": run.metrics_count or 0,
        "federated_info": _federated_info(run) if federated else None,
        "final_epoch_stats": confusion_statistics_or_none(
            *(getattr(run, column) for column, _ in FINAL_COUNT_COLUMNS)
        ),
    }


def _one_or_many(value, kind: type) -> list | None:
    """Several accepted values (any of them matches) from one value, several, or none."""
    if value is None:
        return None
    values = [value] if isinstance(value, kind) else list(value)
    return sorted(set(values)) or None


def list_runs(
    *,
    limit: int = DEFAULT_LIST_LIMIT,
    offset: int = 0,
    status: RunStatus | Iterable[RunStatus] | None = None,
    training_mode: TrainingMode | Iterable[TrainingMode] | None = None,
    sort_by: str = "start_time",
    sort_order: str = "desc",
    started_after: datetime | None = None,
    started_before: datetime | None = None,
    sort_metric: str | None = None,
    sort_stat: str | None = None,
    metrics: list[str] | None = None,
    experiment: str | None = None,
    tag: Iterable[str] | None = None,
    q: str | None = None,
) -> dict[str, Any]:
    """One page of run summaries and the number of runs matching the filters.

    One statement whatever the page size: the page with its stored facts and the total
    on every row (a second to count when the page is empty; sorted by a metric, more for
    the runs without it when the page reaches them); one more with `metrics`, for the
    named series of the page's runs.
    """
    if sort_by not in LIST_SORT_KEYS:
        raise InvalidInput(f"sort_by must be one of {', '.join(LIST_SORT_KEYS)}.")
    if sort_order not in SORT_ORDERS:
        raise InvalidInput("sort_order must be asc or desc.")
    if (sort_by == METRIC_SORT_KEY) != (sort_metric is not None):
        raise InvalidInput("sort_metric is required with sort_by=metric, and only then.")
    sort_stat = sort_stat or "best"
    if sort_stat not in METRIC_SORT_STATS:
        raise InvalidInput(f"sort_stat must be one of {', '.join(METRIC_SORT_STATS)}.")
    given = {
        "statuses": _one_or_many(status, RunStatus),
        "training_modes": _one_or_many(training_mode, TrainingMode),
        "started_after": started_after,
        "started_before": started_before,
        "experiment": experiment,
    }
    params = {name: value for name, value in given.items() if value is not None}
    params.update(run_stats.tag_params(tag))
    params.update(run_stats.search_params(q))
    filters = run_stats.filter_names(params)
    descending = sort_order == "desc"
    params.update(limit=limit, offset=offset)
    if sort_by == METRIC_SORT_KEY:
        params.update(sort_metric=sort_metric)
        page, total = _metric_page(filters, sort_stat, descending, params)
    else:
        query = _page_query(filters, sort_by, descending)
        page = db.session.connection().execute(query, params).all()
        # Past the last matching run the page is empty and says no total: count apart.
        total = page[0].total if page else _total(filters, params)
    summaries = [_summary(run) for run in page]
    if metrics:
        columns = _metric_columns([run.id for run in page], metrics)
        for summary in summaries:
            summary["metrics"] = columns[summary["id"]]
    return {
        "runs": summaries,
        "total": total,
        "limit": limit,
        "offset": offset,
    }
