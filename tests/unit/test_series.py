"""The series summary (SPEC §7): its definition by hand, and its upkeep against it."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runs_service.services.series import (
    RECOMPUTE,
    BestRule,
    Change,
    SeriesSummary,
    apply_changes,
    summarize,
)

MAX = BestRule("max")
MIN = BestRule("min")
NONE = BestRule(None)
SERVER_MAX = BestRule("max", min_step=1)


def test_summary_by_hand_ties_go_to_the_earliest_step():
    points = [(3, -1, 0.5), (0, -1, 0.9), (1, -1, 0.9), (2, -1, 0.1), (4, -1, 0.1)]
    assert summarize(points, MAX) == SeriesSummary(
        count=5,
        total=2.5,
        first_step=0,
        first_value=0.9,
        last_step=4,
        last_value=0.1,
        min_step=2,
        min_value=0.1,
        max_step=0,
        max_value=0.9,
        best_step=0,
        best_value=0.9,
    )
    assert summarize(points, MIN).best_step == 2
    assert summarize(points, NONE).best_step is None
    assert summarize(points, NONE).best_value is None
    assert summarize(points, MAX).mean == 0.5


def test_server_best_skips_round_zero_and_is_null_with_only_round_zero():
    points = [(0, -2, 0.99), (1, -2, 0.5), (2, -2, 0.7)]
    summary = summarize(points, SERVER_MAX)
    assert (summary.max_step, summary.max_value) == (0, 0.99)
    assert (summary.best_step, summary.best_value) == (2, 0.7)
    only_zero = summarize([(0, -2, 0.99)], SERVER_MAX)
    assert only_zero.best_step is None and only_zero.best_value is None
    assert only_zero.first_step == 0 and only_zero.count == 1


def test_empty_series_has_no_summary():
    assert summarize([], MAX) is None


def test_points_of_one_step_order_by_round():
    points = [(1, 3, 0.2), (1, 2, 0.4), (0, 5, 0.4)]
    summary = summarize(points, MAX)
    assert (summary.last_step, summary.last_value) == (1, 0.2)
    assert (summary.max_step, summary.max_value) == (0, 0.4)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # A new epoch extends the series without reading it.
        ([Change(5, -1, None, 0.95)], {"last_step": 5, "max_step": 5, "best_value": 0.95}),
        # Raising a point that held nothing.
        ([Change(3, -1, 0.75, 0.78)], {"count": 5, "total": 3.58, "max_step": 2}),
        # Lowering the maximum: only the points know the new one.
        ([Change(2, -1, 0.8, 0.1)], RECOMPUTE),
        # A new point tying the maximum later keeps the earlier one.
        ([Change(6, -1, None, 0.8)], {"max_step": 2, "last_step": 6, "count": 6}),
        # A tie at the same step (another round) cannot be ordered without the rounds.
        ([Change(2, 4, None, 0.8)], RECOMPUTE),
    ],
)
def test_apply_changes_by_hand(changes, expected):
    values = [0.7, 0.6, 0.8, 0.75, 0.7]
    current = summarize([(step, -1, value) for step, value in enumerate(values)], MAX)
    result = apply_changes(current, changes, MAX)
    if expected is RECOMPUTE:
        assert result is RECOMPUTE
    else:
        for name, value in expected.items():
            assert getattr(result, name) == pytest.approx(value)


points_strategy = st.dictionaries(
    st.tuples(st.integers(0, 6), st.sampled_from([-1, -2, 1, 2])),
    st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0, -3.5]),
    max_size=12,
)
rule_strategy = st.sampled_from([MAX, MIN, NONE, SERVER_MAX, BestRule("min", 1)])


@settings(max_examples=400, deadline=None, derandomize=True)
@given(before=points_strategy, after=points_strategy, rule=rule_strategy)
def test_apply_changes_agrees_with_summarize(before, after, rule):
    """Any change set: the upkeep answers the definition's summary, or asks to recompute."""
    # `after` overrides, adds and (with value -3.5 removed) deletes points of `before`.
    final = dict(before)
    for key, value in after.items():
        if value == -3.5 and key in before:
            del final[key]
        else:
            final[key] = value
    changes = [
        Change(step, round_key, before.get((step, round_key)), final.get((step, round_key)))
        for step, round_key in sorted(before.keys() | final.keys())
    ]
    current = summarize([(s, r, v) for (s, r), v in before.items()], rule)
    result = apply_changes(current, changes, rule)
    expected = summarize([(s, r, v) for (s, r), v in final.items()], rule)
    if result is RECOMPUTE:
        return
    if expected is None:
        assert result is None
        return
    assert result is not None
    assert math.isclose(result.total, expected.total, abs_tol=1e-9)
    assert result == SeriesSummary(**{**vars(expected), "total": result.total})


@settings(max_examples=200, deadline=None, derandomize=True)
@given(values=st.lists(st.sampled_from([0.1, 0.2, 0.5, 0.9]), min_size=1, max_size=30))
def test_appending_epochs_never_recomputes(values):
    """The training loop's case: each request adds the next step, and the summary follows."""
    current = None
    for step, value in enumerate(values):
        current = apply_changes(current, [Change(step, -1, None, value)], MAX)
        assert current is not RECOMPUTE
    expected = summarize([(step, -1, value) for step, value in enumerate(values)], MAX)
    assert current == SeriesSummary(**{**vars(expected), "total": current.total})
