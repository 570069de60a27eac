"""The summary of one metric series (SPEC §7) as pure functions on plain data.

A point is (step, round_key, value); points are ordered by step, then round (round_key
is the round number, or -1 for a point without one). `summarize` is the definition;
`apply_changes` keeps a stored summary up to date from the points a write changed,
touching nothing else, and answers RECOMPUTE when the stored facts cannot decide (a
changed point held a first/last/min/max/best, or a tie it cannot order).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, NamedTuple

Direction = Literal["max", "min"] | None
Point = tuple[int, int, float]


@dataclass(frozen=True)
class BestRule:
    """How a series picks its best: by direction, over points at step >= min_step."""

    direction: Direction
    # 1 for server_* series: their best counts training rounds only (SPEC §3).
    min_step: int = 0


@dataclass(frozen=True)
class SeriesSummary:
    """What is stored of one series: count, sum and the (step, value) of its extremes."""

    count: int
    total: float
    first_step: int
    first_value: float
    last_step: int
    last_value: float
    min_step: int
    min_value: float
    max_step: int
    max_value: float
    best_step: int | None = None
    best_value: float | None = None

    @property
    def mean(self) -> float:
        """The mean of the series' values to 4 places."""
        return round(self.total / self.count, 4)


def summary_of_columns(values: Mapping[str, Any], fields: Sequence[str]) -> SeriesSummary:
    """A summary from stored columns: count, value_sum, then `fields`' (step, value) pairs.

    The series summaries store every field, the blocks all but best (metric_summaries,
    metric_blocks); both name the total `value_sum`.
    """
    return SeriesSummary(
        count=values["count"],
        total=values["value_sum"],
        **{name: values[name] for name in fields if name not in ("count", "value_sum")},
    )


def columns_of_summary(summary: SeriesSummary, fields: Sequence[str]) -> dict[str, Any]:
    """The stored columns of a summary (summary_of_columns' inverse)."""
    return {
        "count": summary.count,
        "value_sum": summary.total,
        **{name: getattr(summary, name) for name in fields if name not in ("count", "value_sum")},
    }


class Change(NamedTuple):
    """One point of a series as it was (old) and is now (new); None = no point."""

    step: int
    round_key: int
    old: float | None
    new: float | None


class _Recompute:
    def __repr__(self) -> str:
        return "RECOMPUTE"


RECOMPUTE: Final = _Recompute()


def _lowest(points: Sequence[Point]) -> Point:
    """The point of the smallest value, ties to the earliest (step, round)."""
    return min(points, key=lambda p: (p[2], p[0], p[1]))


def _highest(points: Sequence[Point]) -> Point:
    """The point of the largest value, ties to the earliest (step, round)."""
    return min(points, key=lambda p: (-p[2], p[0], p[1]))


def _best(points: Sequence[Point], rule: BestRule) -> Point | None:
    eligible = [p for p in points if p[0] >= rule.min_step]
    if rule.direction is None or not eligible:
        return None
    return _highest(eligible) if rule.direction == "max" else _lowest(eligible)


def summarize(points: Iterable[Point], rule: BestRule) -> SeriesSummary | None:
    """The summary of a series from all its points, or None when it has none."""
    ordered = sorted(points, key=lambda p: (p[0], p[1]))
    if not ordered:
        return None
    low, high, best = _lowest(ordered), _highest(ordered), _best(ordered, rule)
    return SeriesSummary(
        count=len(ordered),
        total=math.fsum(p[2] for p in ordered),
        first_step=ordered[0][0],
        first_value=ordered[0][2],
        last_step=ordered[-1][0],
        last_value=ordered[-1][2],
        min_step=low[0],
        min_value=low[2],
        max_step=high[0],
        max_value=high[2],
        best_step=None if best is None else best[0],
        best_value=None if best is None else best[2],
    )


def _beats(candidate: Point, value: float, step: int, higher: bool) -> bool | None:
    """Whether candidate replaces the stored (step, value) extreme; None when undecidable."""
    if candidate[2] != value:
        return candidate[2] > value if higher else candidate[2] < value
    if candidate[0] == step:
        return None  # equal value at the stored step: only the unstored round could order them
    return candidate[0] < step


def apply_changes(
    current: SeriesSummary | None, changes: Sequence[Change], rule: BestRule
) -> SeriesSummary | None | _Recompute:
    """The summary after `changes`, from the stored one alone, or RECOMPUTE."""
    changes = [c for c in changes if c.old != c.new]
    if not changes:
        return current
    count = 0 if current is None else current.count
    total = 0.0 if current is None else current.total
    held = set()
    if current is not None:
        held = {current.first_step, current.last_step, current.min_step, current.max_step}
        if current.best_step is not None:
            held.add(current.best_step)
    candidates: list[Point] = []
    for change in changes:
        if change.old is not None:
            # The old value may have been an extreme (or tied with one): only the points know.
            if current is None or change.step in held:
                return RECOMPUTE
            count -= 1
            total -= change.old
        if change.new is not None:
            count += 1
            total += change.new
            candidates.append((change.step, change.round_key, change.new))
    if current is None:
        fresh = summarize(candidates, rule)
        return None if fresh is None else replace(fresh, count=count, total=total)
    if count <= 0:
        return RECOMPUTE
    if not candidates:
        return replace(current, count=count, total=total)
    return _merge(current, candidates, rule, count, total)


def _merge(
    current: SeriesSummary, candidates: list[Point], rule: BestRule, count: int, total: float
) -> SeriesSummary | _Recompute:
    """Fold new or raised/lowered non-extreme points into the stored extremes."""
    ordered = sorted(candidates, key=lambda p: (p[0], p[1]))
    first, last = ordered[0], ordered[-1]
    if first[0] == current.first_step or last[0] == current.last_step:
        return RECOMPUTE
    low, high = _lowest(ordered), _highest(ordered)
    lower = _beats(low, current.min_value, current.min_step, higher=False)
    higher = _beats(high, current.max_value, current.max_step, higher=True)
    if lower is None or higher is None:
        return RECOMPUTE
    best_step, best_value = current.best_step, current.best_value
    best = _best(ordered, rule)
    if best is not None:
        if best_step is None or best_value is None:
            better: bool | None = True
        else:
            better = _beats(best, best_value, best_step, higher=rule.direction == "max")
        if better is None:
            return RECOMPUTE
        if better:
            best_step, best_value = best[0], best[2]
    earlier, later = first[0] < current.first_step, last[0] > current.last_step
    # One constructor call: this runs for every series of every batch.
    return SeriesSummary(
        count=count,
        total=total,
        first_step=first[0] if earlier else current.first_step,
        first_value=first[2] if earlier else current.first_value,
        last_step=last[0] if later else current.last_step,
        last_value=last[2] if later else current.last_value,
        min_step=low[0] if lower else current.min_step,
        min_value=low[2] if lower else current.min_value,
        max_step=high[0] if higher else current.max_step,
        max_value=high[2] if higher else current.max_value,
        best_step=best_step,
        best_value=best_value,
    )
