"""Per-series summaries (SPEC §7): kept at write time, read without scanning points.

Every batch write hands this module the points it changes (old and new value); only
the series those points belong to are read and rewritten, inside the batch's own
transaction. A change the stored facts cannot absorb (the point that held the maximum
lowered, say) recomputes that one series from its points.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import (
    CompoundSelect,
    Float,
    Integer,
    Row,
    Select,
    String,
    any_,
    bindparam,
    cast,
    delete,
    func,
    literal_column,
    null,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.dialects import postgresql

from runs_service.catalogue import SERVER_PREFIX, direction, server_series
from runs_service.extensions import db
from runs_service.models import (
    Client,
    MetricBlock,
    MetricSummary,
    Run,
    RunMetric,
    RunSummary,
    ServerEvaluation,
    TrainingMode,
)
from runs_service.models.metric_block import block_of
from runs_service.models.metric_summary import RUN_LEVEL, is_run_level
from runs_service.services.metric_blocks import (
    BLOCK_FIELDS,
    BlockKey,
    block_rows,
    block_summary,
    changed_blocks,
    computed_blocks,
    delete_blocks,
    stored_blocks,
)
from runs_service.services.rollups import BEST_COLUMNS
from runs_service.services.runs import get_run
from runs_service.services.series import (
    RECOMPUTE,
    BestRule,
    Change,
    Point,
    SeriesSummary,
    apply_changes,
    columns_of_summary,
    summarize,
    summary_of_columns,
)
from runs_service.services.upsert import Overwrite, store

# (metric_name, client_key): one series of a run.
SeriesKey = tuple[str, int]
# Server evaluations order before a run-level metric point of the same name and step.
SERVER_ROUND_KEY = -2

SUMMARY_KEY_COLUMNS = ("run_id", "metric_name", "client_key")
SUMMARY_FIELDS = (
    "count",
    "value_sum",
    "first_step",
    "first_value",
    "last_step",
    "last_value",
    "min_step",
    "min_value",
    "max_step",
    "max_value",
    "best_step",
    "best_value",
)
_COLUMNS = tuple(getattr(MetricSummary, name) for name in SUMMARY_FIELDS)
EVALUATION_SERIES_COLUMNS = (
    ServerEvaluation.round_number,
    ServerEvaluation.loss,
    ServerEvaluation.accuracy,
    ServerEvaluation.precision,
    ServerEvaluation.recall,
    ServerEvaluation.f1_score,
    ServerEvaluation.auroc,
    ServerEvaluation.true_positives,
    ServerEvaluation.true_negatives,
    ServerEvaluation.false_positives,
    ServerEvaluation.false_negatives,
    ServerEvaluation.num_samples,
    ServerEvaluation.additional_metrics,
)


def series_rule(name: str) -> BestRule:
    """The best rule of a series: its name's direction; server_* over training rounds only."""
    return BestRule(direction(name), 1 if name.startswith(SERVER_PREFIX) else 0)


def _summary_of(row: Row | Mapping[str, Any]) -> SeriesSummary:
    return summary_of_columns(row._mapping if isinstance(row, Row) else row, SUMMARY_FIELDS)


def _row_of(run_id: int, key: SeriesKey, summary: SeriesSummary) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "metric_name": key[0],
        "client_key": key[1],
        **columns_of_summary(summary, SUMMARY_FIELDS),
    }


# --- Changes of a write ------------------------------------------------------------------


PointKey = tuple[str, int, int, int]  # (metric_name, step, client_key, round_key)
# What each row of the batch-state statement is.
_POINT, _SUMMARY, _BLOCK, _RUN_BESTS = 0, 1, 2, 3


class BatchState(NamedTuple):
    """What a metric batch reads before it writes, in one statement."""

    # The stored values of the points in the batch's names and step range.
    points: dict[PointKey, float]
    # The stored summaries of the batch's names and of the caller's extra series' names.
    summaries: dict[SeriesKey, SeriesSummary]
    # The stored blocks of the batch's names over its block range.
    blocks: dict[BlockKey, SeriesSummary]
    # The run's stored bests (RunSummary best_* columns); None when it has no summary row.
    run_bests: dict[str, float | None] | None = None


def _padded(kind: int, columns: Mapping[str, Any]) -> list[Any]:
    """The batch-state statement's columns, typed nulls where a table has no such column."""
    floats = {"value", "value_sum", *BEST_COLUMNS}
    names = (
        "metric_name",
        "client_key",
        "position",
        "round_key",
        "value",
        *SUMMARY_FIELDS,
        *BEST_COLUMNS,
    )
    # A constant in the text, not a parameter: a shorter statement with fewer parameters.
    padded = [literal_column(str(kind), Integer).label("kind")]
    for name in names:
        is_float = name in floats or name.endswith("_value")
        column_type = String if name == "metric_name" else Float if is_float else Integer
        padded.append(columns.get(name, cast(null(), column_type)).label(name))
    return padded


def _among(column: Any, name: str, dialect: str) -> Any:
    """column is one of the list parameter `name`.

    PostgreSQL: one array parameter, so the statement's text is the same whatever the
    number of names (one prepared statement, and short enough for psycopg to cache its
    placeholder parsing); elsewhere an expanding IN.
    """
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=postgresql.ARRAY(String)))
    return column.in_(bindparam(name, expanding=True))


@functools.cache
def _batch_state_query(dialect: str) -> CompoundSelect:
    # Three index ranges (point key, summary key, block key) and the run's summary row
    # (for the analytics roll-ups), one round trip.
    points = select(
        *_padded(
            _POINT,
            {
                "metric_name": RunMetric.metric_name,
                "client_key": RunMetric.client_key,
                "position": RunMetric.step,
                "round_key": RunMetric.round_key,
                "value": RunMetric.metric_value,
            },
        )
    ).where(
        RunMetric.run_id == bindparam("run_id"),
        _among(RunMetric.metric_name, "names", dialect),
        RunMetric.step.between(bindparam("low"), bindparam("high")),
    )
    summaries = select(
        *_padded(
            _SUMMARY,
            {
                "metric_name": MetricSummary.metric_name,
                "client_key": MetricSummary.client_key,
                **{name: getattr(MetricSummary, name) for name in SUMMARY_FIELDS},
            },
        )
    ).where(
        MetricSummary.run_id == bindparam("run_id"),
        _among(MetricSummary.metric_name, "summary_names", dialect),
    )
    blocks = select(
        *_padded(
            _BLOCK,
            {
                "metric_name": MetricBlock.metric_name,
                "client_key": MetricBlock.client_key,
                "position": MetricBlock.block,
                **{name: getattr(MetricBlock, name) for name in BLOCK_FIELDS},
            },
        )
    ).where(
        MetricBlock.run_id == bindparam("run_id"),
        _among(MetricBlock.metric_name, "names", dialect),
        MetricBlock.block.between(bindparam("low_block"), bindparam("high_block")),
    )
    run_bests = select(
        *_padded(_RUN_BESTS, {name: getattr(RunSummary, name) for name in BEST_COLUMNS})
    ).where(RunSummary.run_id == bindparam("run_id"))
    return union_all(points, summaries, blocks, run_bests)


def read_batch_state(
    run_id: int, rows: Sequence[Mapping[str, Any]], also: Iterable[SeriesKey] = ()
) -> BatchState:
    """The stored points, summaries, blocks and run bests a metric batch may change (one
    statement).

    rows are the run_metrics rows about to be upserted; `also` names more series whose
    summaries the caller needs (read along, at no extra round trip). The caller holds the
    run's lock, so nothing read here changes before the batch writes.
    """
    steps = [row["step"] for row in rows]
    names = {row["metric_name"] for row in rows}
    low, high = min(steps), max(steps)
    parameters = {
        "run_id": run_id,
        "names": sorted(names),
        "summary_names": sorted(names | {name for name, _ in also}),
        "low": low,
        "high": high,
        "low_block": block_of(low),
        "high_block": block_of(high),
    }
    points, summaries, blocks, run_bests = {}, {}, {}, None
    connection = db.session.connection()
    query = _batch_state_query(connection.dialect.name)
    for row in connection.execute(query, parameters):
        name, client_key, position = row.metric_name, row.client_key, row.position
        if row.kind == _POINT:
            points[(name, position, client_key, row.round_key)] = row.value
        elif row.kind == _SUMMARY:
            summaries[(name, client_key)] = _summary_of(row)
        elif row.kind == _BLOCK:
            blocks[(name, client_key, position)] = block_summary(row._mapping)
        else:
            run_bests = {column: row._mapping[column] for column in BEST_COLUMNS}
    return BatchState(points, summaries, blocks, run_bests)


def of_evaluations(name: str, client_key: int, federated: bool) -> bool:
    """Whether a series is made of server evaluations.

    In a federated run a run-level server_* name belongs to its server evaluations: a
    metric point logged under such a name is stored but is no point of any series.
    """
    return federated and client_key == RUN_LEVEL and name.startswith(SERVER_PREFIX)


def metric_point_changes(
    rows: Sequence[Mapping[str, Any]],
    existing: Mapping[PointKey, float],
    *,
    federated: bool = False,
) -> dict[SeriesKey, list[Change]]:
    """The changes a metric batch makes, per series.

    rows are run_metrics rows about to be upserted (metric_name, step, client_id,
    round_number, metric_value); existing the stored values they replace
    (BatchState.points, read before the batch is written).
    """
    changes: dict[SeriesKey, list[Change]] = defaultdict(list)
    for row in rows:
        key = point_key(row)
        name, step, client, round_key = key
        if of_evaluations(name, client, federated):
            continue
        old = existing.get(key) if existing else None
        value = row["metric_value"]
        if old != value:
            changes[(name, client)].append(Change(step, round_key, old, value))
    return changes


def point_key(row: Mapping[str, Any]) -> PointKey:
    """The key of a run_metrics row about to be upserted, as BatchState.points has it."""
    round_number = row["round_number"]
    return (
        row["metric_name"],
        row["step"],
        row["client_id"] or RUN_LEVEL,
        -1 if round_number is None else round_number,
    )


def new_point_count(rows: Sequence[Mapping[str, Any]], existing: Mapping[PointKey, float]) -> int:
    """How many of the run_metrics rows about to be upserted are not stored yet (existing:
    BatchState.points, read under the run's lock, so the upsert will insert exactly these)."""
    return sum(point_key(row) not in existing for row in rows)


def existing_evaluations(run_id: int, rounds: Iterable[int]) -> dict[int, Mapping[str, Any]]:
    """The stored evaluations of these rounds (the columns that form series), by round."""
    query = select(*EVALUATION_SERIES_COLUMNS).where(
        ServerEvaluation.run_id == run_id, ServerEvaluation.round_number.in_(sorted(set(rounds)))
    )
    return {row["round_number"]: row for row in db.session.execute(query).mappings()}


def evaluation_changes(
    old: Mapping[int, Mapping[str, Any]], new: Iterable[Mapping[str, Any]]
) -> dict[SeriesKey, list[Change]]:
    """The server_* series changes of re-writing whole rounds (old rows -> new rows)."""
    changes: dict[SeriesKey, list[Change]] = defaultdict(list)
    for evaluation in new:
        round_number = evaluation["round_number"]
        before = server_series(old.get(round_number) or {})
        after = server_series(evaluation)
        for name in sorted(before.keys() | after.keys()):
            if before.get(name) != after.get(name):
                changes[(name, RUN_LEVEL)].append(
                    Change(round_number, SERVER_ROUND_KEY, before.get(name), after.get(name))
                )
    return changes


# --- Applying them -------------------------------------------------------------------------


@functools.cache
def _stored_query() -> Select:
    return select(MetricSummary.metric_name, MetricSummary.client_key, *_COLUMNS).where(
        MetricSummary.run_id == bindparam("run_id"),
        MetricSummary.metric_name.in_(bindparam("names", expanding=True)),
    )


def stored_summaries(run_id: int, keys: Iterable[SeriesKey]) -> dict[SeriesKey, SeriesSummary]:
    """The stored summaries of these series of a run (one statement)."""
    keys = set(keys)
    if not keys:
        return {}
    rows = db.session.connection().execute(
        _stored_query(), {"run_id": run_id, "names": sorted({name for name, _ in keys})}
    )
    return {
        (row.metric_name, row.client_key): _summary_of(row)
        for row in rows
        if (row.metric_name, row.client_key) in keys
    }


def series_points(run_id: int, name: str, client_key: int, federated: bool) -> list[Point]:
    """Every point of one series: its metric points, or its server evaluations."""
    if not of_evaluations(name, client_key, federated):
        query = select(RunMetric.step, RunMetric.round_key, RunMetric.metric_value).where(
            RunMetric.run_id == run_id,
            RunMetric.metric_name == name,
            RunMetric.client_key == client_key,
        )
        return [tuple(row) for row in db.session.connection().execute(query)]
    points: list[Point] = []
    evaluations = select(*EVALUATION_SERIES_COLUMNS).where(ServerEvaluation.run_id == run_id)
    for evaluation in db.session.execute(evaluations).mappings():
        value = server_series(evaluation).get(name)
        if value is not None:
            points.append((evaluation["round_number"], SERVER_ROUND_KEY, value))
    return points


class SeriesUpdate(NamedTuple):
    """What a batch does to series summaries and blocks (None: gone)."""

    # The changed series and the caller's extra ones, as they are after the batch.
    series: dict[SeriesKey, SeriesSummary | None]
    # The summaries and blocks to store.
    summaries: dict[SeriesKey, SeriesSummary | None]
    blocks: dict[BlockKey, SeriesSummary | None]


def series_update(
    run_id: int,
    changes: Mapping[SeriesKey, Sequence[Change]],
    stored: Mapping[SeriesKey, SeriesSummary],
    stored_blocks: Mapping[BlockKey, SeriesSummary],
    also: Iterable[SeriesKey] = (),
    *,
    federated: bool = False,
    points_written: bool = True,
) -> SeriesUpdate | None:
    """The summaries and blocks after the changes, from the stored ones.

    `stored` holds the stored summaries of the changed series and of `also` (whose
    summaries are returned for the caller), `stored_blocks` the stored blocks the
    changed metric points fall in, both read before the write (BatchState). A series or
    block is recomputed from its points only when its stored facts cannot absorb the
    change; before the points are written (points_written=False) the answer is then None.
    The caller's transaction holds the run's lock.
    """
    changes = {key: batch for key, batch in changes.items() if batch}
    wanted = set(also) | changes.keys()
    series: dict[SeriesKey, SeriesSummary | None] = {
        key: stored.get(key) for key in wanted - changes.keys()
    }
    summaries: dict[SeriesKey, SeriesSummary | None] = {}
    for key, batch in changes.items():
        updated = apply_changes(stored.get(key), batch, series_rule(key[0]))
        if updated is RECOMPUTE:
            if not points_written:
                return None
            updated = summarize(series_points(run_id, *key, federated), series_rule(key[0]))
        series[key] = updated
        if updated != stored.get(key):
            summaries[key] = updated
    blocks = changed_blocks(
        run_id,
        {key: batch for key, batch in changes.items() if not of_evaluations(*key, federated)},
        stored_blocks,
        points_written=points_written,
    )
    return None if blocks is None else SeriesUpdate(series, summaries, blocks)


def series_writes(run_id: int, update: SeriesUpdate) -> list[Overwrite]:
    """The upserts that store an update's summaries and blocks (deletions aside)."""
    rows = [
        _row_of(run_id, key, summary)
        for key, summary in update.summaries.items()
        if summary is not None
    ]
    return [
        Overwrite(MetricSummary.__table__, SUMMARY_KEY_COLUMNS, rows),
        block_rows(run_id, update.blocks),
    ]


def delete_gone(run_id: int, update: SeriesUpdate) -> None:
    """Delete the summaries and blocks an update leaves without points."""
    gone = [key for key, summary in update.summaries.items() if summary is None]
    if gone:
        db.session.execute(
            delete(MetricSummary).where(
                MetricSummary.run_id == run_id,
                tuple_(MetricSummary.metric_name, MetricSummary.client_key).in_(gone),
            )
        )
    delete_blocks(run_id, update.blocks)


def store_series_update(run_id: int, update: SeriesUpdate) -> None:
    """Store an update's summaries and blocks (PostgreSQL: both upserts in one statement)."""
    store(db.session, series_writes(run_id, update))
    delete_gone(run_id, update)


def run_level_summaries(run_id: int, names: Iterable[str]) -> dict[str, SeriesSummary]:
    """The stored run-level summaries of these names of a run (one statement)."""
    return {
        name: summary for (name, _), summary in stored_summaries(run_id, _run_level(names)).items()
    }


def _run_level(names: Iterable[str]) -> list[SeriesKey]:
    return [(name, RUN_LEVEL) for name in names]


# --- Reading -----------------------------------------------------------------------------


def _point(step: int | None, value: float | None) -> dict[str, Any] | None:
    return None if step is None else {"step": step, "value": value}


def metric_summary_entry(name: str, client: str | None, summary: SeriesSummary) -> dict[str, Any]:
    """A MetricSummary (SPEC §7) of a stored series summary."""
    return {
        "name": name,
        "client": client,
        "direction": direction(name),
        "count": summary.count,
        "mean": summary.mean,
        "first": _point(summary.first_step, summary.first_value),
        "last": _point(summary.last_step, summary.last_value),
        "min": _point(summary.min_step, summary.min_value),
        "max": _point(summary.max_step, summary.max_value),
        "best": _point(summary.best_step, summary.best_value),
    }


def read_metric_summaries(
    run_ids: Sequence[int], names: Sequence[str] | None = None, client: str | None = None
) -> dict[int, list[dict]]:
    """The MetricSummary dicts of several runs in one statement, from stored summaries only.

    client=None gives run-level series (server_* included); a client identifier gives that
    client's series only. Every requested run id is a key (an empty list when it has none);
    each list is ordered by name, then client. Runs are not checked for existence.
    """
    found: dict[int, list[dict]] = {run_id: [] for run_id in run_ids}
    if not found:
        return found
    query = (
        select(
            MetricSummary.run_id,
            MetricSummary.metric_name,
            Client.client_identifier,
            *_COLUMNS,
        )
        .outerjoin(Client, Client.id == MetricSummary.client_key)
        .where(MetricSummary.run_id.in_(sorted(found)))
    )
    if names is not None:
        query = query.where(MetricSummary.metric_name.in_(sorted(set(names))))
    if client is None:
        query = query.where(is_run_level(MetricSummary.client_key))
    else:
        query = query.where(Client.client_identifier == client)
    query = query.order_by(
        MetricSummary.run_id, MetricSummary.metric_name, MetricSummary.client_key
    )
    for row in db.session.connection().execute(query):
        found[row.run_id].append(
            metric_summary_entry(row.metric_name, row.client_identifier, _summary_of(row))
        )
    return found


# --- Rebuilding --------------------------------------------------------------------------


def run_series_points(run_id: int) -> tuple[dict[SeriesKey, list[Point]], dict]:
    """Every point of a run's series: (metric-point series, server-evaluation series)."""
    metric_points: dict[SeriesKey, list[Point]] = defaultdict(list)
    query = select(
        RunMetric.metric_name,
        RunMetric.client_key,
        RunMetric.step,
        RunMetric.round_key,
        RunMetric.metric_value,
    ).where(RunMetric.run_id == run_id)
    federated = db.session.get(Run, run_id).training_mode is TrainingMode.FEDERATED
    for name, client, step, round_key, value in db.session.connection().execute(query):
        if not of_evaluations(name, client, federated):
            metric_points[(name, client)].append((step, round_key, value))
    evaluation_points: dict[SeriesKey, list[Point]] = defaultdict(list)
    evaluations = select(*EVALUATION_SERIES_COLUMNS).where(ServerEvaluation.run_id == run_id)
    for evaluation in db.session.execute(evaluations).mappings():
        for name, value in server_series(evaluation).items():
            evaluation_points[(name, RUN_LEVEL)].append(
                (evaluation["round_number"], SERVER_ROUND_KEY, value)
            )
    return metric_points, evaluation_points


def computed_summaries(run_id: int) -> dict[SeriesKey, SeriesSummary]:
    """Every series summary of a run recomputed from all its points (the definition)."""
    return _summaries_of(*run_series_points(run_id))


def _summaries_of(*series: Mapping[SeriesKey, Sequence[Point]]) -> dict[SeriesKey, SeriesSummary]:
    points = {key: members for group in series for key, members in group.items()}
    summaries = {key: summarize(members, series_rule(key[0])) for key, members in points.items()}
    return {key: summary for key, summary in summaries.items() if summary is not None}


def same_summary(a: SeriesSummary | None, b: SeriesSummary | None) -> bool:
    """Equal, the sum up to float rounding (added up in another order)."""
    if a is None or b is None:
        return a is b
    return a == SeriesSummary(**{**vars(b), "total": a.total}) and math.isclose(
        a.total, b.total, rel_tol=1e-9, abs_tol=1e-9
    )


def refresh_run_metric_summaries(run_id: int) -> tuple[int, int]:
    """Rewrite a run's series summaries and blocks that differ from its points.

    Returns how many of each were rewritten (0, 0 when everything was right).
    """
    metric_points, evaluation_points = run_series_points(run_id)
    stored = {
        (row.metric_name, row.client_key): _summary_of(row)
        for row in db.session.connection().execute(
            select(MetricSummary.metric_name, MetricSummary.client_key, *_COLUMNS).where(
                MetricSummary.run_id == run_id
            )
        )
    }
    summaries = _differences(stored, _summaries_of(metric_points, evaluation_points))
    blocks = _differences(stored_blocks(run_id), computed_blocks(metric_points))
    store_series_update(run_id, SeriesUpdate({}, summaries, blocks))
    return len(summaries), len(blocks)


def _differences(stored: Mapping, expected: Mapping) -> dict:
    """What to write so that stored becomes expected (None: delete)."""
    changed = {
        key: summary
        for key, summary in expected.items()
        if not same_summary(stored.get(key), summary)
    }
    changed.update({key: None for key in stored.keys() - expected.keys()})
    return changed


def refresh_all_metric_summaries() -> tuple[int, int, int]:
    """Recompute every run's series summaries and blocks; (runs, summaries, blocks) rewritten."""
    run_ids = db.session.scalars(select(Run.id).order_by(Run.id)).all()
    summaries = blocks = 0
    for run_id in run_ids:
        rewritten = refresh_run_metric_summaries(run_id)
        summaries += rewritten[0]
        blocks += rewritten[1]
    db.session.commit()
    return len(run_ids), summaries, blocks


# --- GET /api/runs/{run_id}/metric-summaries ---------------------------------------------


def run_level_values_at(
    run_id: int, names: Sequence[str], step: int, federated: bool
) -> dict[str, float | None]:
    """The value of each named run-level series at one step (None where it has no point).

    Point lookups through the metric-point key, plus the round's server evaluation for
    server_* names; a series with several points at that step gives the last (highest round).
    """
    values: dict[str, float | None] = dict.fromkeys(names)
    if not names:
        return values
    from_points = [name for name in names if not of_evaluations(name, RUN_LEVEL, federated)]
    if len(from_points) < len(names):
        evaluation = (
            db.session.execute(
                select(*EVALUATION_SERIES_COLUMNS).where(
                    ServerEvaluation.run_id == run_id, ServerEvaluation.round_number == step
                )
            )
            .mappings()
            .one_or_none()
        )
        if evaluation is not None:
            found = server_series(evaluation)
            values.update({name: found[name] for name in names if name in found})
    query = (
        select(RunMetric.metric_name, RunMetric.metric_value)
        .where(
            RunMetric.run_id == run_id,
            RunMetric.metric_name.in_(sorted(set(from_points))),
            RunMetric.step == step,
            RunMetric.client_key == RUN_LEVEL,
        )
        .order_by(RunMetric.round_key)
    )
    if from_points:
        values.update(dict(db.session.connection().execute(query).all()))
    return values


def at_best(
    run_id: int, name: str, summaries: Sequence[Mapping[str, Any]], federated: bool
) -> dict[str, Any] | None:
    """{name, step, values}: the other run-level series at the step of `name`'s best.

    `summaries` are the run-level MetricSummary dicts being answered (their names are the
    keys of values); None when `name` has no run-level best.
    """
    stored = run_level_summaries(run_id, [name]).get(name)
    if stored is None or stored.best_step is None:
        return None
    others = [entry["name"] for entry in summaries if entry["name"] != name]
    return {
        "name": name,
        "step": stored.best_step,
        "values": run_level_values_at(run_id, others, stored.best_step, federated),
    }


def get_metric_summaries(
    run_id: int,
    names: Sequence[str] | None = None,
    client: str | None = None,
    at_best_of: str | None = None,
) -> dict[str, Any]:
    """A run's series summaries; with at_best_of, the run-level values at that best's step."""
    metrics = read_metric_summaries([run_id], names, client)[run_id]
    if not metrics:
        # Stored summaries prove the run exists (their foreign key); an empty answer
        # needs the run's row to tell a missing run (404).
        get_run(run_id)
    answer: dict[str, Any] = {"run_id": run_id, "metrics": metrics}
    if at_best_of is not None:
        run = get_run(run_id)
        run_level = metrics if client is None else read_metric_summaries([run_id], names)[run_id]
        federated = run.training_mode is TrainingMode.FEDERATED
        answer["at_best"] = at_best(run_id, at_best_of, run_level, federated)
    return answer


def metric_names() -> dict[str, Any]:
    """Every run-level series name in use with its direction and number of runs."""
    query = (
        select(MetricSummary.metric_name, func.count())
        .where(is_run_level(MetricSummary.client_key))
        .group_by(MetricSummary.metric_name)
        .order_by(MetricSummary.metric_name)
    )
    return {
        "names": [
            {"name": name, "direction": direction(name), "runs": runs}
            for name, runs in db.session.execute(query)
        ]
    }
