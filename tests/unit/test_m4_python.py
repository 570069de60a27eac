"""M4 in Python (services.downsampling): the bucket grid and the kept points, by hand and
against a reference written from bucket_of alone. Its equality with the SQL statement on
a database is in tests/api/test_downsampling.py."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runs_service.services.downsampling import bucket_of, bucket_start, m4_positions


@given(
    lo=st.integers(0, 10**6),
    span=st.integers(1, 10**6),
    buckets=st.integers(1, 25_000),
    offset=st.floats(0, 1, exclude_max=True),
)
def test_a_step_lies_between_its_bucket_start_and_the_next(lo, span, buckets, offset):
    step = lo + int(offset * span)
    bucket = bucket_of(step, lo, span, buckets)
    assert 0 <= bucket < buckets
    assert (
        bucket_start(bucket, lo, span, buckets)
        <= step
        < bucket_start(bucket + 1, lo, span, buckets)
    )


def test_the_buckets_cover_the_range_exactly():
    assert [bucket_start(b, 10, 10, 4) for b in range(5)] == [10, 13, 15, 18, 20]
    assert [bucket_of(step, 10, 10, 4) for step in range(10, 20)] == [0, 0, 0, 1, 1, 2, 2, 2, 3, 3]


@pytest.mark.parametrize(
    ("steps", "values", "lo", "hi", "buckets", "kept"),
    [
        ([], [], 0, 10, 3, []),
        # One bucket: first, last, and the earliest of the tied lows and highs.
        ([0, 1, 2, 3, 4], [1.0, 0.0, 0.0, 1.0, 0.5], 0, 4, 1, [0, 1, 4]),
        # Two buckets (0..1, 2..3); every point of a bucket of two or fewer is kept.
        ([0, 1, 2, 3], [3.0, 1.0, 2.0, 2.0], 0, 3, 2, [0, 1, 2, 3]),
        # Empty buckets in a gap are skipped.
        ([0, 1, 2, 90, 91, 92], [5.0, 9.0, 1.0, 1.0, 7.0, 2.0], 0, 92, 10, [0, 1, 2, 3, 4, 5]),
        ([0, 1, 2, 3, 90, 95], [5.0, 9.0, 1.0, 4.0, 7.0, 2.0], 0, 95, 2, [0, 1, 2, 3, 4, 5]),
        ([0, 1, 2, 3, 4, 5], [5.0, 9.0, 1.0, 4.0, 6.0, 2.0], 0, 5, 1, [0, 1, 2, 5]),
        # Points outside lo..hi are not kept (the grid of another series' range).
        ([0, 5, 6, 7, 20], [0.0, 2.0, 1.0, 3.0, 4.0], 5, 7, 1, [1, 2, 3]),
        # Several points at one step (rounds), ordered: first is the earliest round.
        ([4, 4, 4, 5], [2.0, 2.0, 0.0, 2.0], 4, 5, 1, [0, 2, 3]),
    ],
)
def test_m4_positions_by_hand(steps, values, lo, hi, buckets, kept):
    assert m4_positions(steps, values, lo, hi, buckets) == kept


def m4_reference(points: list[tuple[int, int, float]], lo: int, hi: int, buckets: int) -> list[int]:
    """Positions kept, from the per-step bucket rule: (step, round) order, ties to the earliest."""
    by_bucket: dict[int, list[int]] = {}
    for position, (step, _, _) in enumerate(points):
        if lo <= step <= hi:
            by_bucket.setdefault(bucket_of(step, lo, hi - lo + 1, buckets), []).append(position)
    kept = set()
    for members in by_bucket.values():
        kept.add(min(members, key=lambda p: points[p][:2]))
        kept.add(max(members, key=lambda p: points[p][:2]))
        kept.add(min(members, key=lambda p: (points[p][2], points[p][:2])))
        kept.add(min(members, key=lambda p: (-points[p][2], points[p][:2])))
    return sorted(kept)


@given(
    keyed=st.dictionaries(
        st.tuples(st.integers(0, 500), st.integers(-1, 3)),
        st.one_of(st.sampled_from([0.0, 1.0, -2.5]), st.floats(-1e9, 1e9)),
        max_size=300,
    ),
    bounds=st.tuples(st.integers(0, 500), st.integers(0, 500)).map(sorted),
    buckets=st.integers(1, 200),
)
def test_m4_positions_equal_the_reference(keyed, bounds, buckets):
    points = sorted((step, round_key, value) for (step, round_key), value in keyed.items())
    lo, hi = bounds
    steps = [point[0] for point in points]
    values = [point[2] for point in points]
    assert m4_positions(steps, values, lo, hi, buckets) == m4_reference(points, lo, hi, buckets)
