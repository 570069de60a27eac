"""Metric histories of any series, downsampled in SQL, and the comparison of runs (SPEC §7).

A series is read from one of three sources: a run's metric points (run-level or one
client's), a column of its server evaluations, or a numeric additional_metrics key of
them (the `server_*` series of a federated run, whose step is the round number). A
point is (step, tiebreak, value): the tiebreak is the point's round (-1 without one)
for metric points and 0 for server evaluations, so (step, tiebreak) orders a series
and names one point of it.

Downsampling is M4 over equal-width step buckets, done by the database: each bucket
keeps its first, last, lowest and highest point (ties to the earliest point), found by
index range scans of that bucket, so a million-point series never leaves the database.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import groupby
from typing import Any

from sqlalchemy import Dialect, Float, Integer, Select, TextClause, and_, bindparam, text

from runs_service.catalogue import (
    MAX_STEP,
    SERVER_FIELD_SERIES,
    SERVER_PREFIX,
)
from runs_service.errors import NotFound, RunNotFound
from runs_service.extensions import db
from runs_service.models import Client, MetricSummary, Run, RunMetric, TrainingMode
from runs_service.models.metric_block import BLOCK_STEPS, block_of
from runs_service.models.metric_summary import RUN_LEVEL, is_run_level
from runs_service.models.types import UTCDateTime
from runs_service.services.downsampling import (
    BUCKET_OF_SQL,
    BUCKET_START_SQL,
    bucket_count,
    m4_positions,
)
from runs_service.services.metric_summaries import read_metric_summaries
from runs_service.services.runs import check_run_id, get_run

_SERIES_FIELD = {series: field_name for field_name, series in SERVER_FIELD_SERIES.items()}


@dataclass(frozen=True)
class Source:
    """Where a series' points are: SQL fragments over one table, and their parameters.

    step and value are expressions, tiebreak a column or None (one point per step);
    where is the series' filter. Fragments are built here from fixed column names only;
    every value is a bound parameter.
    """

    table: str
    step: str
    tiebreak: str | None
    value: str
    where: str
    params: dict[str, Any] = field(default_factory=dict)
    # When the point was measured: run_metrics.timestamp, server evaluation_time.
    timestamp: str = '"timestamp"'

    def order(self, descending: bool = False) -> str:
        """ORDER BY terms of the series' point order."""
        direction = " DESC" if descending else ""
        columns = (self.step,) if self.tiebreak is None else (self.step, self.tiebreak)
        return ", ".join(column + direction for column in columns)

    def renamed(self, suffix: str) -> Source:
        """The same source with every parameter name suffixed, to sit in a UNION."""

        def rename(fragment: str) -> str:
            return _PARAMETER.sub(
                lambda match: (
                    match.group(0) + suffix if match.group(1) in self.params else match.group(0)
                ),
                fragment,
            )

        return replace(
            self,
            value=rename(self.value),
            where=rename(self.where),
            params={f"{name}{suffix}": value for name, value in self.params.items()},
        )


_PARAMETER = re.compile(r":(\w+)\b")


def metric_source(run_id: int, name: str, client_id: int | None) -> Source:
    """A run's own (client_id None) or one client's points of one metric name."""
    return Source(
        table="run_metrics",
        step="step",
        tiebreak="round_key",
        value="metric_value",
        where="run_id = :run_id AND metric_name = :name AND client_key = :client_key",
        params={"run_id": run_id, "name": name, "client_key": client_id or 0},
    )


def server_column_source(run_id: int, field_name: str) -> Source:
    """One column of a run's server evaluations, one point per round where it is set."""
    if field_name not in SERVER_FIELD_SERIES:
        raise ValueError(f"not a server-evaluation column: {field_name}")
    return Source(
        table="server_evaluations",
        step="round_number",
        tiebreak=None,
        value=f"CAST({field_name} AS FLOAT)",
        where=f"run_id = :run_id AND {field_name} IS NOT NULL",
        params={"run_id": run_id},
        timestamp="evaluation_time",
    )


def additional_metric_source(run_id: int, name: str, dialect: str) -> Source:
    """A server_* series of additional_metrics: key `name`, else the key without server_.

    One point per round where either key holds a number (the prefixed key wins).
    """
    keys = (name, name.removeprefix(SERVER_PREFIX))
    branches = []
    params: dict[str, Any] = {"run_id": run_id}
    for index, key in enumerate(keys):
        if dialect == "postgresql":
            params[f"key{index}"] = key
            member = f"additional_metrics -> CAST(:key{index} AS TEXT)"
            branches.append(
                f"WHEN jsonb_typeof({member}) = 'number' "
                f"THEN CAST(additional_metrics ->> CAST(:key{index} AS TEXT) AS FLOAT)"
            )
        else:
            params[f"path{index}"] = _json_path(key)
            branches.append(
                f"WHEN json_type(additional_metrics, :path{index}) IN ('integer', 'real') "
                f"THEN json_extract(additional_metrics, :path{index})"
            )
    value = f"(CASE {' '.join(branches)} END)"
    return Source(
        "server_evaluations",
        "round_number",
        None,
        value,
        f"run_id = :run_id AND {value} IS NOT NULL",
        params,
        "evaluation_time",
    )


def _json_path(key: str) -> str:
    """SQLite's JSON path of one object key, quoted so any key reads as itself."""
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Extent:
    """How many points a series has in the requested range, and their lowest/highest step."""

    count: int
    first_step: int | None
    last_step: int | None


NO_POINTS = Extent(0, None, None)


def _union_in_range(
    sources: Sequence[Source], lo: int, hi: int, select: Callable[[Source], str]
) -> tuple[str, dict[str, Any]]:
    """One SELECT per series (numbered `series`) over steps lo..hi, joined by UNION ALL."""
    branches, params = [], {}
    for index, source in enumerate(sources):
        suffix = f"_{index}"
        source = source.renamed(suffix)
        branches.append(
            f"SELECT {index} AS series, {select(source)} FROM {source.table} "
            f"WHERE {source.where} AND {source.step} BETWEEN :lo{suffix} AND :hi{suffix}"
        )
        params.update(source.params, **{f"lo{suffix}": lo, f"hi{suffix}": hi})
    return " UNION ALL ".join(branches), params


def series_extents(sources: Sequence[Source], lo: int, hi: int) -> list[Extent]:
    """The extent of each series within steps lo..hi, in one statement."""
    if not sources:
        return []
    union, params = _union_in_range(
        sources,
        lo,
        hi,
        lambda source: (
            f"count(*) AS points, min({source.step}) AS first_step, max({source.step}) AS last_step"
        ),
    )
    rows = db.session.execute(text(union), params)
    extents = {row.series: Extent(row.points, row.first_step, row.last_step) for row in rows}
    return [extents[index] for index in range(len(sources))]


@dataclass
class Points:
    """A series' points as columns; timestamps as ISO 8601 text, None where not measured."""

    steps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    timestamps: list[str | None] = field(default_factory=list)

    def add(self, step: int, value: float, timestamp: datetime | None) -> None:
        self.steps.append(step)
        self.values.append(value)
        self.timestamps.append(None if timestamp is None else timestamp.isoformat())

    @classmethod
    def of_rows(cls, rows: Sequence[tuple[int, float, datetime | None]]) -> Points:
        """Points of (step, value, measured_at) rows, column by column (long answers)."""
        return cls(
            [row[0] for row in rows],
            [row[1] for row in rows],
            [None if row[2] is None else row[2].isoformat() for row in rows],
        )


# Result types of the hand-written statements (timestamps read as UTC on both databases).
_POINT_COLUMNS = {"step": Integer(), "value": Float(), "measured_at": UTCDateTime()}


@functools.lru_cache(maxsize=64)
def _point_statement(sql: str) -> TextClause:
    """A statement answering (step, value, measured_at) rows, parsed once per text.

    The texts come from a handful of shapes (one per kind of source and dialect); the
    series they read are bound parameters.
    """
    return text(sql).columns(**_POINT_COLUMNS)


def raw_points(sources: Sequence[Source], lo: int, hi: int) -> list[Points]:
    """Every point of each series within steps lo..hi, ordered, in one statement."""
    if not sources:
        return []
    union, params = _union_in_range(
        sources,
        lo,
        hi,
        lambda source: (
            f"{source.step} AS step, {source.tiebreak or 0} AS tiebreak, "
            f"{source.value} AS value, {source.timestamp} AS measured_at"
        ),
    )
    statement = text(union + " ORDER BY series, step, tiebreak")
    columns = [Points() for _ in sources]
    for row in db.session.execute(statement.columns(**_POINT_COLUMNS), params):
        columns[row.series].add(row.step, row.value, row.measured_at)
    return columns


def _m4_statement(source: Source) -> str:
    """M4 over one series: the ids of each bucket's first, last, lowest and highest point.

    Bucket b of nb over lo..hi holds the steps from its start up to the next bucket's
    start (services.downsampling). Every lookup is a range scan of one bucket on the
    series' index; the lowest and highest values are found first (MATERIALIZED: once per
    bucket), then the earliest point holding each, so ties go to the earliest point on
    every database. The kept ids are read back by primary key (MATERIALIZED: never a join
    over the whole series).
    """
    table, step, value = source.table, source.step, source.value
    in_bucket = f"{source.where} AND {step} >= s0 AND {step} < s1"
    order = source.order()
    return f"""
WITH RECURSIVE buckets(b) AS (
    SELECT 0 UNION ALL SELECT b + 1 FROM buckets WHERE b < :nb - 1
),
bounds AS MATERIALIZED (
    SELECT s0, s1,
        (SELECT min({value}) FROM {table} WHERE {in_bucket}) AS low,
        (SELECT max({value}) FROM {table} WHERE {in_bucket}) AS high
    FROM (
        SELECT {BUCKET_START_SQL.format(bucket="b")} AS s0,
            {BUCKET_START_SQL.format(bucket="b + 1")} AS s1
        FROM buckets
    ) AS grid
),
kept AS MATERIALIZED (
    SELECT (SELECT id FROM {table} WHERE {in_bucket} ORDER BY {order} LIMIT 1) AS id
    FROM bounds
    UNION SELECT (SELECT id FROM {table} WHERE {in_bucket}
        ORDER BY {source.order(descending=True)} LIMIT 1) FROM bounds
    UNION SELECT (SELECT id FROM {table} WHERE {in_bucket} AND {value} = low
        ORDER BY {order} LIMIT 1) FROM bounds
    UNION SELECT (SELECT id FROM {table} WHERE {in_bucket} AND {value} = high
        ORDER BY {order} LIMIT 1) FROM bounds
)
SELECT {step} AS step, {value} AS value, {source.timestamp} AS measured_at
FROM kept JOIN {table} ON {table}.id = kept.id
ORDER BY {order}"""


def downsampled_points(source: Source, lo: int, hi: int, buckets: int) -> Points:
    """M4 of one series over `buckets` equal-width buckets of steps lo..hi."""
    params = {**source.params, "lo": lo, "span": hi - lo + 1, "nb": buckets}
    return Points.of_rows(
        db.session.connection().execute(_point_statement(_m4_statement(source)), params).all()
    )


# A bucket at least this wide is read from blocks: most of it is blocks held whole.
_MIN_BLOCKED_BUCKET = 2 * BLOCK_STEPS


def _blocked_m4_statement(dialect: str) -> str:
    """M4 of one metric series read from its blocks (models.metric_block).

    A block whose points all lie in one bucket (and in lo..hi) stands for them; the points
    of every other block in range are read, each its own unit (CROSS JOIN: SQLite then
    loops over the cut blocks, one index range each). Per bucket: the lowest first step,
    the highest last step, the lowest and highest value and the earliest step holding
    each; a window marks each bucket's extremes, so no unit is sorted by value. The point
    each pick means (its round: the earliest, or the latest for the last) is then found
    at its step through the point index, and the kept points read back by primary key.
    """
    greatest, least = ("GREATEST", "LEAST") if dialect == "postgresql" else ("max", "min")
    bucket = BUCKET_OF_SQL
    series = "run_id = :run_id AND metric_name = :name AND client_key = :client_key"
    return f"""
WITH blocks AS MATERIALIZED (
    SELECT first_step, last_step, min_step, min_value, max_step, max_value,
        {bucket.format(step="first_step")} AS bucket,
        CASE WHEN first_step >= :lo AND last_step <= :hi
            AND {bucket.format(step="first_step")} = {bucket.format(step="last_step")}
            THEN 1 ELSE 0 END AS whole
    FROM metric_blocks
    WHERE {series} AND block BETWEEN :low_block AND :high_block
),
units AS (
    SELECT bucket, first_step, last_step, min_step, min_value, max_step, max_value
    FROM blocks WHERE whole = 1
    UNION ALL
    SELECT {bucket.format(step="p.step")}, p.step, p.step, p.step, p.metric_value,
        p.step, p.metric_value
    FROM blocks AS cut CROSS JOIN run_metrics AS p
    WHERE cut.whole = 0 AND p.run_id = :run_id AND p.metric_name = :name
        AND p.client_key = :client_key
        AND p.step BETWEEN {greatest}(cut.first_step, :lo) AND {least}(cut.last_step, :hi)
),
marked AS (
    SELECT bucket, first_step, last_step, min_step, min_value, max_step, max_value,
        MIN(min_value) OVER per_bucket AS low, MAX(max_value) OVER per_bucket AS high
    FROM units WINDOW per_bucket AS (PARTITION BY bucket)
),
picks AS MATERIALIZED (
    SELECT MIN(first_step) AS first_step, MAX(last_step) AS last_step,
        MIN(CASE WHEN min_value = low THEN min_step END) AS low_step, MIN(low) AS low,
        MIN(CASE WHEN max_value = high THEN max_step END) AS high_step, MIN(high) AS high
    FROM marked GROUP BY bucket
),
kept AS MATERIALIZED (
    SELECT (SELECT id FROM run_metrics WHERE {series} AND step = first_step
        ORDER BY round_key LIMIT 1) AS id FROM picks
    UNION SELECT (SELECT id FROM run_metrics WHERE {series} AND step = last_step
        ORDER BY round_key DESC LIMIT 1) FROM picks
    UNION SELECT (SELECT id FROM run_metrics WHERE {series} AND step = low_step
        AND metric_value = low ORDER BY round_key LIMIT 1) FROM picks
    UNION SELECT (SELECT id FROM run_metrics WHERE {series} AND step = high_step
        AND metric_value = high ORDER BY round_key LIMIT 1) FROM picks
)
SELECT step, metric_value AS value, timestamp AS measured_at
FROM kept JOIN run_metrics ON run_metrics.id = kept.id
ORDER BY step, round_key"""


def blocked_points(request: SeriesRequest, lo: int, hi: int, buckets: int) -> Points:
    """M4 of a long metric series over `buckets` buckets of lo..hi, read from its blocks.

    The same points as downsampled_points (tests/api/test_downsampling.py), reading the
    blocks in range plus the points of the blocks a bucket edge cuts, not every point.
    """
    params = {
        **request.source.params,
        "lo": lo,
        "hi": hi,
        "span": hi - lo + 1,
        "nb": buckets,
        "low_block": block_of(lo),
        "high_block": block_of(hi),
    }
    statement = _point_statement(_blocked_m4_statement(_dialect()))
    return Points.of_rows(db.session.connection().execute(statement, params).all())


def _reads_blocks(request: SeriesRequest, lo: int, hi: int, buckets: int) -> bool:
    """Whether a downsampled read of this series is cheaper from its blocks."""
    return request.source.table == "run_metrics" and (hi - lo + 1) // buckets >= _MIN_BLOCKED_BUCKET


# A metric series whose buckets hold few points is cheaper read whole (one statement for
# all such series of an answer) and reduced in Python than by the per-bucket statement,
# whose cost is per bucket: below this many points per bucket on average, on both
# databases. Past a few tens of thousands of points in one answer, building the rows in
# Python costs more than it saves, so the whole reads of an answer stop at the second
# bound (measurements: BENCHMARKS.md, "compare").
MAX_POINTS_PER_BUCKET_READ_WHOLE = 12
MAX_POINTS_READ_WHOLE = 30_000

_Column = Sequence[Any]


@functools.lru_cache(maxsize=32)
def _whole_series_statement(names: int) -> TextClause:
    """Every point of the series of some runs × `names` names (one client key), in one range
    of the point index per run and name.

    Each row carries its series as one number (run_id × names + the name's place in the
    names list) rather than the name itself: fewer and cheaper columns for every point.
    Ordered by step only: on SQLite any further order term (round_key) costs a sort of
    every row; _in_point_order puts the rounds of a step in order where a series has them.
    """
    places = " ".join(f"WHEN :name_{place} THEN {place}" for place in range(names))
    return text(
        f"SELECT CAST(run_id AS BIGINT) * {names} + CASE metric_name {places} END AS series,"
        " step, round_key, metric_value, timestamp FROM run_metrics"
        " WHERE run_id IN :run_ids AND metric_name IN :names AND client_key = :client_key"
        " AND step BETWEEN :lo AND :hi ORDER BY run_id, metric_name, step"
    ).bindparams(bindparam("run_ids", expanding=True), bindparam("names", expanding=True))


def _in_point_order(
    steps: _Column, rounds: _Column, values: _Column, timestamps: _Column
) -> tuple[_Column, _Column, _Column]:
    """A series' (steps, values, timestamps) in (step, round) order."""
    if len(set(steps)) == len(steps):
        return steps, values, timestamps
    order = sorted(range(len(steps)), key=lambda index: (steps[index], rounds[index]))
    return tuple([column[index] for index in order] for column in (steps, values, timestamps))


def _whole_metric_series(
    requests: Sequence[SeriesRequest], lo: int, hi: int
) -> dict[tuple[int, int, str], tuple[_Column, _Column, _Column]]:
    """(steps, values, raw timestamps) of each metric series within lo..hi.

    One statement per client key (one in practice: an answer holds run-level series or
    one client's), keyed (client_key, run_id, name).
    """
    found = {}
    for client_key in sorted({request.client_key for request in requests}):
        chosen = [request for request in requests if request.client_key == client_key]
        names = sorted({request.name for request in chosen})
        params = {
            "run_ids": sorted({request.run_id for request in chosen}),
            "names": names,
            "client_key": client_key,
            "lo": lo,
            "hi": hi,
            **{f"name_{place}": name for place, name in enumerate(names)},
        }
        rows = db.session.execute(_whole_series_statement(len(names)), params).all()
        if not rows:
            continue
        series, steps, rounds, values, timestamps = zip(*rows, strict=True)
        start = 0
        for key, members in groupby(series):
            end = start + len(list(members))
            run_id, place = divmod(key, len(names))
            found[client_key, run_id, names[place]] = _in_point_order(
                steps[start:end], rounds[start:end], values[start:end], timestamps[start:end]
            )
            start = end
    return found


def whole_downsampled_points(
    requests: Sequence[SeriesRequest],
    grids: Sequence[tuple[int, int]],
    lo: int,
    hi: int,
    buckets: int,
) -> list[Points]:
    """M4 of metric series, each over `buckets` buckets of its grid, read whole in Python.

    The same points as downsampled_points (tests/api/test_downsampling.py): every point
    of the series in lo..hi by one statement, reduced by downsampling.m4_positions.
    Only the kept points' timestamps are converted.
    """
    if not requests:
        return []
    found = _whole_metric_series(requests, lo, hi)
    dialect = _dialect_object()
    as_datetime = (
        _POINT_COLUMNS["measured_at"].dialect_impl(dialect).result_processor(dialect, None)
    )
    answers = []
    for request, (first, last) in zip(requests, grids, strict=True):
        steps, values, timestamps = found.get(
            (request.client_key, request.run_id, request.name), ((), (), ())
        )
        kept = m4_positions(steps, values, first, last, buckets)
        moments = [timestamps[position] for position in kept]
        if any(moment is not None for moment in moments):
            moments = [as_datetime(moment) for moment in moments]
        answers.append(
            Points(
                [steps[position] for position in kept],
                [values[position] for position in kept],
                [None if moment is None else moment.isoformat() for moment in moments],
            )
        )
    return answers


def _read_whole(
    requests: Sequence[SeriesRequest],
    extents: Sequence[Extent],
    candidates: Iterable[int],
    buckets: int,
) -> list[int]:
    """The candidates (indexes of metric series) read whole: sparse ones, in order, in budget."""
    chosen, total = [], 0
    for index in candidates:
        count = extents[index].count
        if (
            requests[index].source.table == "run_metrics"
            and count < MAX_POINTS_PER_BUCKET_READ_WHOLE * buckets
            and total + count <= MAX_POINTS_READ_WHOLE
        ):
            chosen.append(index)
            total += count
    return chosen


@dataclass(frozen=True)
class SeriesRequest:
    """One series an answer holds: what it is called and where its points are."""

    name: str
    source: Source
    run_id: int
    client: str | None = None
    client_key: int = 0


def stored_extents(requests: Sequence[SeriesRequest]) -> list[Extent]:
    """The whole extent of each series, from the stored summaries (no point is read)."""
    if not requests:
        return []
    stored: dict[tuple[int, int, str], Extent] = {}
    for client_key in sorted({request.client_key for request in requests}):
        run_ids = sorted({r.run_id for r in requests if r.client_key == client_key})
        for (run_id, name), extent in _stored_series(run_ids, client_key).items():
            stored[client_key, run_id, name] = extent
    return [stored.get((r.client_key, r.run_id, r.name), NO_POINTS) for r in requests]


def read_series(
    requests: Sequence[SeriesRequest],
    start_step: int | None,
    end_step: int | None,
    max_points: int,
    *,
    shared_grid: bool,
    stored: Mapping[str, Extent] | None = None,
) -> list[dict[str, Any]]:
    """Points of each series in the step range, M4-downsampled where over max_points.

    With shared_grid every downsampled series uses one bucket grid, spanning the steps
    all series have in range; otherwise each spans its own. `stored`: the whole extents
    of the series of a single run, by name, when the caller has read them already.
    """
    lo = 0 if start_step is None else start_step
    hi = MAX_STEP if end_step is None else end_step
    sources = [request.source for request in requests]
    if start_step is None and end_step is None and stored is not None:
        extents = [stored.get(request.name, NO_POINTS) for request in requests]
    elif start_step is None and end_step is None:
        extents = stored_extents(requests)
    else:
        extents = series_extents(sources, lo, hi)
    fitting = [index for index, extent in enumerate(extents) if extent.count <= max_points]
    raw = dict(zip(fitting, raw_points([sources[i] for i in fitting], lo, hi), strict=True))
    present = [extent for extent in extents if extent.count]
    grid = None
    if shared_grid and present:
        grid = (
            min(extent.first_step for extent in present),
            max(extent.last_step for extent in present),
        )
    buckets = bucket_count(max_points)
    grids = {
        index: grid or (extent.first_step, extent.last_step)
        for index, extent in enumerate(extents)
        if index not in raw
    }
    blocked = {index for index in grids if _reads_blocks(requests[index], *grids[index], buckets)}
    whole = _read_whole(
        requests, extents, [index for index in grids if index not in blocked], buckets
    )
    reduced = dict(
        zip(
            whole,
            whole_downsampled_points(
                [requests[index] for index in whole],
                [grids[index] for index in whole],
                lo,
                hi,
                buckets,
            ),
            strict=True,
        )
    )
    answers = []
    for index, (request, extent) in enumerate(zip(requests, extents, strict=True)):
        if index in raw:
            points = raw[index]
        elif index in reduced:
            points = reduced[index]
        elif index in blocked:
            points = blocked_points(request, *grids[index], buckets)
        else:
            points = downsampled_points(request.source, *grids[index], buckets)
        answer = {
            "run_id": request.run_id,
            "name": request.name,
            "client": request.client,
            "total_points": extent.count,
            "downsampled": index not in raw,
            "steps": points.steps,
            "values": points.values,
        }
        if any(moment is not None for moment in points.timestamps):
            answer["timestamps"] = points.timestamps
        answers.append(answer)
    return answers


def _client_id(run_id: int, identifier: str) -> int:
    client_id = db.session.execute(
        db.select(Client.id).where(Client.run_id == run_id, Client.client_identifier == identifier)
    ).scalar_one_or_none()
    if client_id is None:
        raise NotFound(f"Run {run_id} has no client {identifier!r}")
    return client_id


def _dialect_object() -> Dialect:
    return db.session.get_bind().dialect


def _dialect() -> str:
    return _dialect_object().name


def _server_sources(run_id: int, names: Iterable[str]) -> dict[str, Source]:
    """The source of each server_* series name (a column's, else additional_metrics keys')."""
    dialect = _dialect()
    sources: dict[str, Source] = {}
    for name in names:
        if name in _SERIES_FIELD:
            sources[name] = server_column_source(run_id, _SERIES_FIELD[name])
        elif name.startswith(SERVER_PREFIX):
            sources[name] = additional_metric_source(run_id, name, dialect)
    return sources


def _stored_series(run_ids: Sequence[int], client_key: int) -> dict[tuple[int, str], Extent]:
    """Every series of these runs (run-level, or one client's) from the stored summaries."""
    rows = db.session.execute(
        db.select(
            MetricSummary.run_id,
            MetricSummary.metric_name,
            MetricSummary.count,
            MetricSummary.first_step,
            MetricSummary.last_step,
        ).where(
            MetricSummary.run_id.in_(run_ids),
            is_run_level(MetricSummary.client_key)
            if client_key == RUN_LEVEL
            else MetricSummary.client_key == client_key,
        )
    )
    return {
        (row.run_id, row.metric_name): Extent(row.count, row.first_step, row.last_step)
        for row in rows
    }


def resolve_series(
    run_id: int,
    training_mode: TrainingMode,
    names: Sequence[str],
    client_id: int | None,
    client: str | None,
) -> list[SeriesRequest]:
    """The named series of a run with their sources.

    In a federated run, server_* names are the series of its server evaluations;
    everything else (and every name of a client) is a metric series.
    """
    federated = training_mode == TrainingMode.FEDERATED and client_id is None
    server = _server_sources(run_id, names) if federated else {}
    return [
        SeriesRequest(
            name,
            server[name] if name in server else metric_source(run_id, name, client_id),
            run_id,
            client,
            client_id or 0,
        )
        for name in names
    ]


@functools.cache
def _run_level_series_query() -> Select:
    return (
        db.select(
            Run.training_mode,
            MetricSummary.metric_name,
            MetricSummary.count,
            MetricSummary.first_step,
            MetricSummary.last_step,
        )
        .select_from(Run)
        .outerjoin(
            MetricSummary,
            and_(MetricSummary.run_id == Run.id, is_run_level(MetricSummary.client_key)),
        )
        .where(Run.id == bindparam("run_id"))
    )


def _run_level_series(run_id: int) -> tuple[TrainingMode, dict[str, Extent]]:
    """A run's training mode and its stored run-level series (server_* included), in one
    statement; RunNotFound without the run."""
    check_run_id(run_id)
    connection = db.session.connection()
    rows = connection.execute(_run_level_series_query(), {"run_id": run_id}).all()
    if not rows:
        raise RunNotFound(run_id)
    stored = {
        name: Extent(count, first_step, last_step)
        for _, name, count, first_step, last_step in rows
        if name is not None
    }
    return rows[0].training_mode, stored


def metric_history(
    run_id: int,
    *,
    names: Sequence[str] | None = None,
    client: str | None = None,
    start_step: int | None = None,
    end_step: int | None = None,
    max_points: int,
) -> dict[str, Any]:
    """The series of one run (by default every stored one, run-level or the client's),
    downsampled.

    Without a client: the run's mode and its stored series in one statement, then the
    points. A client's series need its id first, which needs the run.
    """
    if client is None:
        client_id = None
        training_mode, stored = _run_level_series(run_id)
    else:
        training_mode = get_run(run_id).training_mode
        client_id = _client_id(run_id, client)
        found = _stored_series([run_id], client_id)
        stored = {name: extent for (_, name), extent in found.items()}
    chosen = sorted(stored) if names is None else names
    requests = resolve_series(run_id, training_mode, chosen, client_id, client)
    series = read_series(
        requests, start_step, end_step, max_points, shared_grid=False, stored=stored
    )
    for entry in series:
        del entry["run_id"]
    return {"run_id": run_id, "max_points": max_points, "series": series}


def _runs(run_ids: Sequence[int]) -> list[Run]:
    found = {
        run.id: run
        for run in db.session.execute(db.select(Run).where(Run.id.in_(run_ids))).scalars()
    }
    missing = [run_id for run_id in run_ids if run_id not in found]
    if missing:
        listed = ", ".join(str(run_id) for run_id in missing)
        noun = "Run" if len(missing) == 1 else "Runs"
        raise NotFound(f"{noun} {listed} not found")
    return [found[run_id] for run_id in run_ids]


def compare_runs(
    run_ids: Sequence[int],
    names: Sequence[str],
    *,
    start_step: int | None = None,
    end_step: int | None = None,
    max_points: int,
) -> dict[str, Any]:
    """The named series of several runs on one bucket grid, with the runs' facts."""
    runs = _runs(run_ids)
    requests = [
        request
        for run in runs
        for request in resolve_series(run.id, run.training_mode, names, None, None)
    ]
    series = read_series(requests, start_step, end_step, max_points, shared_grid=True)
    for entry in series:
        del entry["client"]
    return {
        "runs": [
            {
                "id": run.id,
                "training_mode": run.training_mode,
                "status": run.status,
                "run_description": run.run_description,
                "start_time": run.start_time,
            }
            for run in runs
        ],
        "series": series,
        "summaries": [
            {"run_id": run_id, **summary}
            for run_id, found in read_metric_summaries(run_ids, names).items()
            for summary in found
        ],
    }


def run_clients(run_id: int) -> dict[str, Any]:
    """A run's registered clients with the names of the metrics each has logged."""
    get_run(run_id)
    clients = db.session.execute(
        db.select(Client.id, Client.client_identifier, Client.client_config)
        .where(Client.run_id == run_id)
        .order_by(Client.client_identifier)
    ).all()
    names: dict[int, list[str]] = {client.id: [] for client in clients}
    if clients:
        rows = db.session.execute(
            db.select(RunMetric.client_id, RunMetric.metric_name)
            .where(RunMetric.client_id.in_(db.select(Client.id).where(Client.run_id == run_id)))
            .distinct()
            .order_by(RunMetric.client_id, RunMetric.metric_name)
        )
        for client_id, name in rows:
            names[client_id].append(name)
    return {
        "run_id": run_id,
        "clients": [
            {
                "client_identifier": client.client_identifier,
                "client_config": client.client_config,
                "metric_names": names[client.id],
            }
            for client in clients
        ],
    }
