"""Block summaries of metric series (models.metric_block), kept at write time.

A block is the summary of a series' points at steps b*32 .. b*32+31, kept exactly like
the series summary (services.series): a write updates the blocks its points fall in,
and recomputes a block from its own points (at most 32 steps) when the stored facts
cannot absorb the change. Downsampled reads of long series combine the blocks a
bucket holds whole with the points of the blocks a bucket edge cuts
(services.metric_history), instead of scanning every point.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Select, bindparam, delete, select, tuple_

from runs_service.extensions import db
from runs_service.models import MetricBlock, RunMetric
from runs_service.models.metric_block import BLOCK_STEPS, block_of
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
from runs_service.services.upsert import Overwrite

# (metric_name, client_key, block): one block of one series of a run.
BlockKey = tuple[str, int, int]

BLOCK_FIELDS = (
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
)
_COLUMNS = tuple(getattr(MetricBlock, name) for name in BLOCK_FIELDS)
BLOCK_KEY_COLUMNS = ("run_id", "metric_name", "client_key", "block")
# Blocks have no best: only the series as a whole has one.
_NO_BEST = BestRule(None)


def block_summary(values: Mapping[str, Any]) -> SeriesSummary:
    return summary_of_columns(values, BLOCK_FIELDS)


def _row_of(run_id: int, key: BlockKey, summary: SeriesSummary) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "metric_name": key[0],
        "client_key": key[1],
        "block": key[2],
        **columns_of_summary(summary, BLOCK_FIELDS),
    }


def block_changes(changes: Mapping[tuple[str, int], Sequence[Change]]) -> dict[BlockKey, list]:
    """The changes of metric-point series, per block they fall in."""
    by_block: dict[BlockKey, list[Change]] = defaultdict(list)
    for (name, client_key), batch in changes.items():
        for change in batch:
            by_block[(name, client_key, block_of(change.step))].append(change)
    return by_block


def block_points(run_id: int, key: BlockKey) -> list[Point]:
    """Every point of one block of a series."""
    name, client_key, block = key
    query = select(RunMetric.step, RunMetric.round_key, RunMetric.metric_value).where(
        RunMetric.run_id == run_id,
        RunMetric.metric_name == name,
        RunMetric.client_key == client_key,
        RunMetric.step.between(block * BLOCK_STEPS, (block + 1) * BLOCK_STEPS - 1),
    )
    return [tuple(row) for row in db.session.connection().execute(query)]


def changed_blocks(
    run_id: int,
    changes: Mapping[tuple[str, int], Sequence[Change]],
    stored: Mapping[BlockKey, SeriesSummary],
    *,
    points_written: bool = True,
) -> dict[BlockKey, SeriesSummary | None] | None:
    """The blocks the changes of metric-point series rewrite (None: no point left).

    changes are per series, as metric_summaries gets them, and must not hold
    server-evaluation series; stored holds the stored blocks they fall in (read before
    the write, with the batch's other reads). A block whose stored facts cannot absorb
    its changes is recomputed from its points; before they are written
    (points_written=False) the answer is then None.
    """
    written: dict[BlockKey, SeriesSummary | None] = {}
    for key, batch in block_changes(changes).items():
        updated = apply_changes(stored.get(key), batch, _NO_BEST)
        if updated is RECOMPUTE:
            if not points_written:
                return None
            updated = summarize(block_points(run_id, key), _NO_BEST)
        if updated != stored.get(key):
            written[key] = updated
    return written


def block_rows(run_id: int, blocks: Mapping[BlockKey, SeriesSummary | None]) -> Overwrite:
    """The rows that store these blocks (those with no point left are not among them)."""
    rows = [_row_of(run_id, key, summary) for key, summary in blocks.items() if summary]
    return Overwrite(MetricBlock.__table__, BLOCK_KEY_COLUMNS, rows)


def delete_blocks(run_id: int, blocks: Mapping[BlockKey, SeriesSummary | None]) -> None:
    """Delete the blocks that have no point left (None)."""
    gone = [key for key, summary in blocks.items() if summary is None]
    if gone:
        db.session.execute(
            delete(MetricBlock).where(
                MetricBlock.run_id == run_id,
                tuple_(MetricBlock.metric_name, MetricBlock.client_key, MetricBlock.block).in_(
                    gone
                ),
            )
        )


def computed_blocks(series: Mapping[tuple[str, int], Sequence[Point]]) -> dict[BlockKey, Any]:
    """The blocks of these metric-point series, from all their points (the definition)."""
    points: dict[BlockKey, list[Point]] = defaultdict(list)
    for (name, client_key), members in series.items():
        for point in members:
            points[(name, client_key, block_of(point[0]))].append(point)
    return {key: summarize(members, _NO_BEST) for key, members in points.items()}


def stored_blocks(run_id: int) -> dict[BlockKey, SeriesSummary]:
    """Every stored block of a run."""
    query = select(
        MetricBlock.metric_name, MetricBlock.client_key, MetricBlock.block, *_COLUMNS
    ).where(MetricBlock.run_id == run_id)
    return {
        (row["metric_name"], row["client_key"], row["block"]): block_summary(row)
        for row in db.session.connection().execute(query).mappings()
    }


@functools.cache
def _series_query() -> Select:
    return (
        select(MetricBlock.block, *_COLUMNS)
        .where(
            MetricBlock.run_id == bindparam("run_id"),
            MetricBlock.metric_name == bindparam("name"),
            MetricBlock.client_key == bindparam("client_key"),
            MetricBlock.block.between(bindparam("low"), bindparam("high")),
        )
        .order_by(MetricBlock.block)
    )


def series_blocks(
    run_id: int, name: str, client_key: int, low: int, high: int
) -> list[SeriesSummary]:
    """The stored blocks of one metric series holding steps low..high, in step order."""
    parameters = {
        "run_id": run_id,
        "name": name,
        "client_key": client_key,
        "low": block_of(low),
        "high": block_of(high),
    }
    rows = db.session.connection().execute(_series_query(), parameters).mappings()
    return [block_summary(row) for row in rows]
