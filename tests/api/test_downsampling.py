"""M4 downsampling in SQL against a plain-Python reference, on the session's database.

Seeded (derandomized) so CI is reproducible; RUNS_PROPERTY_EXAMPLES explores further.
"""

from __future__ import annotations

import os
from collections.abc import Sequence, Set
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import AUTH

EXAMPLES = max(10, int(os.environ.get("RUNS_PROPERTY_EXAMPLES", "100")) // 3)
DATABASE_PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

Point = tuple[int, int, float]  # (step, round or -1, value)
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def m4_reference(
    points: Sequence[Point], start: int, end: int, max_points: int
) -> tuple[list[int], list[float]]:
    """SPEC §7 in plain Python: every point in range, or M4 over max_points // 4 buckets."""
    chosen = sorted(p for p in points if start <= p[0] <= end)
    if len(chosen) > max_points:
        buckets = max_points // 4
        lo, hi = chosen[0][0], chosen[-1][0]
        by_bucket: dict[int, list[Point]] = {}
        for point in chosen:
            by_bucket.setdefault((point[0] - lo) * buckets // (hi - lo + 1), []).append(point)
        kept = set()
        for members in by_bucket.values():
            kept.add(min(members, key=lambda p: (p[0], p[1])))
            kept.add(max(members, key=lambda p: (p[0], p[1])))
            kept.add(min(members, key=lambda p: (p[2], p[0], p[1])))
            kept.add(min(members, key=lambda p: (-p[2], p[0], p[1])))
        chosen = sorted(kept)
    return [p[0] for p in chosen], [p[2] for p in chosen]


# Few distinct values, so ties (which the earliest point must win) are common.
values = st.one_of(
    st.sampled_from([0.0, 0.25, 0.5, 1.0, -3.0]),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)


@st.composite
def series(draw) -> list[Point]:
    """Points at distinct (step, round); some steps carry several rounds."""
    steps = draw(st.lists(st.integers(0, 3000), min_size=0, max_size=400, unique=True))
    points = [(step, -1, draw(values)) for step in steps]
    for step in draw(st.lists(st.sampled_from(steps), max_size=20, unique=True)) if steps else []:
        points.append((step, draw(st.integers(0, 5)), draw(values)))
    return list({(p[0], p[1]): p for p in points}.values())


@st.composite
def dense_series(draw) -> list[Point]:
    """Many points per bucket over few values, so ties inside a bucket are the rule."""
    steps = draw(st.lists(st.integers(0, 400), min_size=1, max_size=300, unique=True))
    few = st.sampled_from([0.0, 0.5, 1.0])
    points = [(step, -1, draw(st.one_of(few, values))) for step in steps]
    for step in draw(st.lists(st.sampled_from(steps), max_size=20, unique=True)):
        points.append((step, draw(st.integers(0, 5)), draw(few)))
    return points


def _store(client, create_run, points: Sequence[Point], timed: Set[int] = frozenset()) -> int:
    run_id = create_run("federated")["id"]  # rounds need a federated run
    _post(client, run_id, points, timed)
    return run_id


def _post(client, run_id: int, points: Sequence[Point], timed: Set[int] = frozenset()) -> None:
    """Store points; those at a step in `timed` carry a timestamp (one per step and round)."""
    batch = []
    for step, round_key, value in points:
        point = {"metric_name": "series", "metric_value": value, "step": step}
        if round_key >= 0:
            point["round_number"] = round_key
        if step in timed:
            moment = _EPOCH + timedelta(seconds=step, microseconds=round_key + 1)
            point["timestamp"] = moment.isoformat()
        batch.append(point)
    for offset in range(0, len(batch), 10_000):
        chunk = batch[offset : offset + 10_000]
        response = client.post(f"/api/runs/{run_id}/metrics", json={"metrics": chunk}, headers=AUTH)
        assert response.status_code == 200, response.get_json()


def _history(client, run_id: int, **query) -> dict:
    response = client.get(
        f"/api/runs/{run_id}/metric-history", query_string={"names": "series", **query}
    )
    assert response.status_code == 200, response.get_json()
    (answer,) = response.get_json()["series"]
    return answer


@DATABASE_PROPERTY
@given(
    points=series(),
    max_points=st.integers(4, 60),
    bounds=st.tuples(st.integers(0, 3000), st.integers(0, 3000)).map(sorted),
    ranged=st.booleans(),
)
def test_sql_downsampling_equals_the_reference(
    client, create_run, points, max_points, bounds, ranged
):
    run_id = _store(client, create_run, points)
    start, end = bounds if ranged else (0, 10**6)
    query = {"max_points": max_points}
    if ranged:
        query.update(start_step=start, end_step=end)

    answer = _history(client, run_id, **query)

    steps, values_ = m4_reference(points, start, end, max_points)
    assert (answer["steps"], answer["values"]) == (steps, values_)
    in_range = sorted(p for p in points if start <= p[0] <= end)
    assert answer["total_points"] == len(in_range)
    assert answer["downsampled"] == (len(in_range) > max_points)
    assert len(answer["steps"]) <= max_points
    stored = {(p[0], p[2]) for p in in_range}
    assert set(zip(answer["steps"], answer["values"], strict=True)) <= stored
    if in_range:
        kept = list(zip(answer["steps"], answer["values"], strict=True))
        assert kept[0] == (in_range[0][0], in_range[0][2])
        assert kept[-1] == (in_range[-1][0], in_range[-1][2])
        low = min(in_range, key=lambda p: (p[2], p[0], p[1]))
        high = min(in_range, key=lambda p: (-p[2], p[0], p[1]))
        assert (low[0], low[2]) in kept and (high[0], high[2]) in kept
    assert _history(client, run_id, **query) == answer


@DATABASE_PROPERTY
@given(
    points=series(),
    rewrite=st.lists(st.tuples(st.integers(0, 10**6), values), max_size=60),
    max_points=st.integers(4, 60),
    bounds=st.tuples(st.integers(0, 3000), st.integers(0, 3000)).map(sorted),
)
def test_downsampling_after_rewritten_points_equals_the_reference(
    client, create_run, points, rewrite, max_points, bounds
):
    """Re-sent points (raising and lowering block extremes) keep every read exact.

    Wide buckets are read from the stored blocks (services.metric_blocks), narrow ones
    from the points: both must follow every write.
    """
    run_id = _store(client, create_run, points)
    if points:
        changed = {}
        for index, value in rewrite:
            step, round_key, _ = points[index % len(points)]
            changed[step, round_key] = (step, round_key, value)
        _post(client, run_id, list(changed.values()))
        points = list({(p[0], p[1]): p for p in [*points, *changed.values()]}.values())
    start, end = bounds

    for query, (lo, hi) in (
        ({"max_points": max_points}, (0, 10**6)),
        ({"max_points": max_points, "start_step": start, "end_step": end}, (start, end)),
    ):
        answer = _history(client, run_id, **query)
        assert (answer["steps"], answer["values"]) == m4_reference(points, lo, hi, max_points)


@DATABASE_PROPERTY
@given(
    length=st.integers(200, 2000),
    spike_at=st.floats(0, 1),
    spike=st.sampled_from([1e9, -1e9]),
    max_points=st.integers(4, 100),
)
def test_an_isolated_spike_survives(client, create_run, length, spike_at, spike, max_points):
    points = [(step, -1, float(step % 7)) for step in range(length)]
    where = int(spike_at * (length - 1))
    points[where] = (where, -1, spike)
    run_id = _store(client, create_run, points)

    answer = _history(client, run_id, max_points=max_points)

    assert answer["downsampled"] is True
    assert (where, spike) in zip(answer["steps"], answer["values"], strict=True)
    assert len(answer["steps"]) <= max_points


def test_a_million_step_span_buckets_without_overflow(client, create_run):
    # (step - lo) * buckets exceeds 2^31 here: the arithmetic must be 64-bit on PostgreSQL.
    points = [(step, -1, float(step % 13)) for step in range(0, 10**6 + 1, 100)]
    run_id = _store(client, create_run, points)

    answer = _history(client, run_id, max_points=9_000)

    assert answer["downsampled"] is True
    assert (answer["steps"], answer["values"]) == m4_reference(points, 0, 10**6, 9_000)


def test_m4_reads_a_series_through_its_index(app, client, create_run, is_postgres):
    # PostgreSQL plans by table statistics (index scans at every size measured, see
    # BENCHMARKS.md); SQLite's plan is fixed by its schema, so it is checked here.
    if is_postgres:
        return
    run_id = _store(client, create_run, [(step, -1, float(step)) for step in range(50)])
    with app.app_context():
        from sqlalchemy import text

        from runs_service.extensions import db
        from runs_service.services import metric_history

        source = metric_history.metric_source(run_id, "series", None)
        statement = "EXPLAIN QUERY PLAN " + metric_history._m4_statement(source)
        params = {**source.params, "lo": 0, "span": 50, "nb": 2}
        plan = [row[-1] for row in db.session.execute(text(statement), params)]
    lookups = [line for line in plan if "run_metrics" in line]
    assert lookups, plan
    # Every bucket lookup searches the point index by (run, name, step range); the kept
    # points are read back by primary key. No scan of the table.
    assert all(line.startswith("SEARCH run_metrics USING") for line in lookups), plan
    assert any("INDEX sqlite_autoindex_run_metrics" in line for line in lookups), plan


def test_blocked_m4_reads_blocks_and_cut_blocks_through_their_keys(
    app, client, create_run, is_postgres
):
    if is_postgres:
        return
    run_id = _store(client, create_run, [(step, -1, float(step % 9)) for step in range(2_000)])
    with app.app_context():
        from sqlalchemy import text

        from runs_service.extensions import db
        from runs_service.services import metric_history

        source = metric_history.metric_source(run_id, "series", None)
        statement = "EXPLAIN QUERY PLAN " + metric_history._blocked_m4_statement("sqlite")
        params = {
            **source.params,
            "lo": 0,
            "hi": 1_999,
            "span": 2_000,
            "nb": 5,
            "low_block": 0,
            "high_block": 31,
        }
        plan = [row[-1] for row in db.session.execute(text(statement), params)]
    # The blocks by primary-key range; the cut blocks' points by the point index, one
    # range per cut block (the blocks are the outer loop). Never a scan of the points.
    assert any(line.startswith("SEARCH metric_blocks USING") for line in plan), plan
    assert any(
        line.startswith("SEARCH p USING INDEX sqlite_autoindex_run_metrics") for line in plan
    ), plan
    scans = [line for line in plan if line.split()[:2] in (["SCAN", "p"], ["SCAN", "run_metrics"])]
    assert not scans, plan


@DATABASE_PROPERTY
@given(
    points=st.one_of(series(), dense_series()),
    rewrite=st.lists(st.tuples(st.integers(0, 10**6), values), max_size=30),
    timed=st.sets(st.integers(0, 3000), max_size=50),
    max_points=st.integers(4, 60),
    bounds=st.tuples(st.integers(0, 3000), st.integers(0, 3000)).map(sorted),
    ranged=st.booleans(),
    widen=st.tuples(st.integers(0, 500), st.integers(0, 500)),
)
def test_m4_in_python_equals_the_per_bucket_statement(
    app, client, create_run, points, rewrite, timed, max_points, bounds, ranged, widen
):
    """The whole-series read reduced in Python keeps what the SQL statement keeps.

    Random series with gaps, ties, several rounds at one step, re-sent points and some
    timestamps; grids as wide as the series or wider (compare's shared grid). Values
    are finite and never null (the API refuses the rest).
    """
    run_id = _store(client, create_run, points, timed)
    if points:
        changed = {}
        for index, value in rewrite:
            step, round_key, _ = points[index % len(points)]
            changed[step, round_key] = (step, round_key, value)
        _post(client, run_id, list(changed.values()), timed)
    lo, hi = bounds if ranged else (0, 10**6)
    with app.app_context():
        from runs_service.services import metric_history
        from runs_service.services.downsampling import bucket_count

        request = metric_history.SeriesRequest(
            "series", metric_history.metric_source(run_id, "series", None), run_id
        )
        (extent,) = metric_history.series_extents([request.source], lo, hi)
        if not extent.count:
            return
        grid = (max(lo, extent.first_step - widen[0]), min(hi, extent.last_step + widen[1]))
        buckets = bucket_count(max_points)
        in_sql = metric_history.downsampled_points(request.source, *grid, buckets)
        (in_python,) = metric_history.whole_downsampled_points([request], [grid], lo, hi, buckets)
    assert in_python == in_sql


def test_m4_in_python_of_several_runs_and_names_equals_the_statement(app, client, create_run):
    # One statement reads every series; each must get its own points back, and a client's
    # series of the same name must not leak into the run-level one.
    run_ids = []
    for length in (90, 140, 200):
        run_id = create_run("federated")["id"]
        client.post(
            f"/api/runs/{run_id}/clients",
            json={"clients": [{"client_identifier": "c"}]},
            headers=AUTH,
        )
        batch = [
            {"metric_name": name, "metric_value": float((step * (i + 3)) % 11), "step": step}
            for i, name in enumerate(("b_loss", "a_step", "c_lr"))
            for step in range(length)
        ]
        batch += [
            {"metric_name": "a_step", "metric_value": 99.0, "step": s, "client_identifier": "c"}
            for s in range(0, length, 3)
        ]
        response = client.post(f"/api/runs/{run_id}/metrics", json={"metrics": batch}, headers=AUTH)
        assert response.status_code == 200, response.get_json()
        run_ids.append(run_id)
    with app.app_context():
        from runs_service.services import metric_history

        requests = [
            metric_history.SeriesRequest(
                name, metric_history.metric_source(run_id, name, None), run_id
            )
            for run_id in run_ids
            for name in ("c_lr", "a_step", "b_loss", "missing")
        ]
        grid, buckets = (0, 199), 20
        in_python = metric_history.whole_downsampled_points(
            requests, [grid] * len(requests), 0, 10**6, buckets
        )
        in_sql = [
            metric_history.downsampled_points(request.source, *grid, buckets)
            for request in requests
        ]
    assert in_python == in_sql
    assert all(99.0 not in points.values for points in in_python)
    assert [len(points.steps) > 0 for points in in_python] == [True, True, True, False] * 3
