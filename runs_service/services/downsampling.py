"""M4 downsampling (SPEC §7): the bucket grid, and M4 of a series already read, in Python.

The step range lo..hi (span = hi - lo + 1 steps) is cut into nb equal-width buckets:
step s is in bucket floor((s - lo) * nb / span), so bucket b starts at step
lo + ceil(b * span / nb). Each bucket keeps its first and last point and the earliest
of its lowest and of its highest points. services.metric_history does this in SQL for
long series; a short series is cheaper read whole and reduced here. Both use the
definitions below (the SQL fragments beside their Python twins).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

# M4 keeps at most four points per bucket (first, last, lowest, highest).
POINTS_PER_BUCKET = 4

# The bucket of step `{step}` and the first step of bucket `{bucket}`, in SQL over the
# parameters :lo, :span and :nb (64-bit: (s - lo) * nb exceeds 2^31 at a million steps).
BUCKET_OF_SQL = "(CAST({step} - :lo AS BIGINT) * :nb / :span)"
BUCKET_START_SQL = ":lo + (CAST({bucket} AS BIGINT) * :span + :nb - 1) / :nb"


def bucket_count(max_points: int) -> int:
    """How many M4 buckets fit max_points: four points each, at least one bucket."""
    return max(1, max_points // POINTS_PER_BUCKET)


def bucket_of(step: int, lo: int, span: int, buckets: int) -> int:
    """The bucket of a step (BUCKET_OF_SQL)."""
    return (step - lo) * buckets // span


def bucket_start(bucket: int, lo: int, span: int, buckets: int) -> int:
    """The first step of a bucket: the least s with bucket_of(s) == bucket (BUCKET_START_SQL)."""
    return lo + (bucket * span + buckets - 1) // buckets


def m4_positions(
    steps: Sequence[int], values: Sequence[float], lo: int, hi: int, buckets: int
) -> list[int]:
    """Where the points M4 keeps are, ascending, in a series ordered by (step, tiebreak).

    The buckets cut lo..hi; points outside it are not kept. Ties go to the earliest point
    (min, max and index all answer the first of equal values), as in the SQL statements.
    """
    span = hi - lo + 1
    kept: list[int] = []
    end = bisect_left(steps, lo)
    for bucket in range(buckets):
        start = end
        end = bisect_left(steps, bucket_start(bucket + 1, lo, span, buckets), start)
        if start == end:
            continue
        chunk = values[start:end]
        lowest = start + chunk.index(min(chunk))
        highest = start + chunk.index(max(chunk))
        kept.extend(sorted({start, lowest, highest, end - 1}))
    return kept
