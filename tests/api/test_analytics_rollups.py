"""Analytics roll-ups: exact after any sequence of writes, against the scanning statements."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from runs_service.catalogue import ALL_STATUSES
from runs_service.extensions import db
from runs_service.models import AnalyticsRollup, Run, RunStatus, RunSummary, TrainingMode
from runs_service.services import analytics, rollups
from runs_service.services import runs as runs_service
from tests.helpers import ADMIN_AUTH, AUTH

# A fixed clock on whole seconds: runs finished "now" get this end_time, and the days
# boundary falls at a known moment (12:34:56, mid-day) with runs on both sides of it.
NOW = datetime(2026, 1, 10, 12, 34, 56, tzinfo=UTC)
CENTRALIZED_SCORES = ("val_acc", "val_precision", "val_recall", "val_f1", "val_auroc")
SERVER_SCORES = ("accuracy", "precision", "recall", "f1_score", "auroc")
STATUSES = [status.value for status in RunStatus]
QUERIES = [
    {"status": status, "training_mode": mode, "days": days}
    for status in (*STATUSES, ALL_STATUSES)
    for mode in (None, *TrainingMode)
    for days in (None, 1, 2, 5)
]

# Multiples of 1/1024: sums of a few of them are exact in floating point, so the scan's
# AVG agrees with the roll-ups' exact sums to the last bit. Values with 4 decimals (as
# trainers round them) make exact ties at the 5th place, which the scan's floating-point
# sum breaks by its rounding noise: those are checked against an exact recomputation.
scores = st.integers(0, 1024).map(lambda k: k / 1024) | st.integers(0, 10_000).map(
    lambda k: k / 10_000
)
maybe_score = st.none() | scores
create = st.fixed_dictionaries(
    {
        "op": st.just("create"),
        "mode": st.sampled_from(list(TrainingMode)),
        "status": st.sampled_from(STATUSES),
        # Whole seconds within 6 days before NOW, the days boundaries' days included.
        "started": st.integers(0, 6 * 86_400),
        "minutes": st.none() | st.integers(0, 600),
    }
)
patch = st.fixed_dictionaries(
    {
        "op": st.just("patch"),
        "run": st.integers(0, 50),
        "status": st.sampled_from(STATUSES),
        "minutes": st.none() | st.integers(0, 600),
    }
)
metrics = st.fixed_dictionaries(
    {
        "op": st.just("metrics"),
        "run": st.integers(0, 50),
        # Few steps, so later batches re-send points with new values (bests go down too).
        "points": st.lists(
            st.tuples(st.sampled_from(CENTRALIZED_SCORES), st.integers(0, 2), scores),
            min_size=1,
            max_size=6,
            unique_by=lambda point: point[:2],
        ),
        "rounds": st.lists(
            st.tuples(st.integers(0, 2), *(maybe_score for _ in SERVER_SCORES)),
            min_size=1,
            max_size=3,
            unique_by=lambda evaluation: evaluation[0],
        ),
    }
)
delete = st.fixed_dictionaries({"op": st.just("delete"), "run": st.integers(0, 50)})
operations = st.lists(
    st.one_of(create, create, patch, metrics, metrics, delete), min_size=1, max_size=14
)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def apply(client, operation: dict[str, Any], created: list[tuple[int, str]]) -> None:
    """Send one write through the API (operations naming a run pick one of `created`)."""
    if operation["op"] == "create":
        start = NOW - timedelta(seconds=operation["started"])
        body = {
            "training_mode": operation["mode"].value,
            "status": operation["status"],
            "start_time": iso(start),
        }
        if operation["minutes"] is not None and operation["status"] != "in_progress":
            body["end_time"] = iso(start + timedelta(minutes=operation["minutes"]))
        response = client.post("/api/runs", json=body, headers=AUTH)
        assert response.status_code == 201, response.get_json()
        created.append((response.get_json()["id"], operation["mode"].value))
        return
    if not created:
        return
    run_id, mode = created[operation["run"] % len(created)]
    if operation["op"] == "patch":
        body = {"status": operation["status"]}
        if operation["minutes"] is not None and operation["status"] != "in_progress":
            run = client.get(f"/api/runs/{run_id}").get_json()
            start = datetime.fromisoformat(run["start_time"])
            body["end_time"] = iso(start + timedelta(minutes=operation["minutes"]))
        response = client.patch(f"/api/runs/{run_id}", json=body, headers=AUTH)
    elif operation["op"] == "metrics" and mode == "centralized":
        points = [
            {"metric_name": name, "step": step, "metric_value": value}
            for name, step, value in operation["points"]
        ]
        response = client.post(
            f"/api/runs/{run_id}/metrics", json={"metrics": points}, headers=AUTH
        )
    elif operation["op"] == "metrics":
        evaluations = [
            {
                "round_number": number,
                **{key: value for key, value in zip(SERVER_SCORES, values, strict=True) if value},
            }
            for number, *values in operation["rounds"]
        ]
        response = client.post(
            f"/api/runs/{run_id}/server-evaluations",
            json={"evaluations": evaluations},
            headers=AUTH,
        )
    else:
        response = client.delete(f"/api/runs/{run_id}", headers=ADMIN_AUTH)
        created.remove((run_id, mode))
    assert response.status_code in (200, 204), response.get_json()


def answers(read_rollups: bool) -> list[dict[str, Any]]:
    return [
        analytics.analytics_summary(**query, now=NOW, read_rollups=read_rollups)
        for query in QUERIES
    ]


AVERAGES = ("avg_accuracy", "avg_precision", "avg_recall", "avg_f1", "avg_auroc")


def exact_averages(query: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Each mode's averages recomputed from the runs: the values as written (decimal),
    exact sums, 4 places with ties to even."""
    columns = [f"best_{score}" for score in ("accuracy", "precision", "recall", "f1", "auroc")]
    rows = db.session.execute(
        select(Run.training_mode, Run.status, Run.start_time, Run.end_time)
        .add_columns(*(getattr(RunSummary, column) for column in columns))
        .outerjoin(RunSummary, RunSummary.run_id == Run.id)
    ).all()
    since = NOW - timedelta(days=query["days"]) if query["days"] else None
    result = {}
    for mode in TrainingMode:
        matching = [
            row
            for row in rows
            if row.training_mode is mode
            and query["training_mode"] in (None, mode)
            and query["status"] in (ALL_STATUSES, row.status.value)
            and (since is None or row.start_time >= since)
        ]

        def mean(values: list[Decimal], unit: int = 1) -> float | None:
            if not values:
                return None
            exact = sum(values) / (len(values) * unit)
            return float(exact.quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN))

        averages = {
            key: mean([Decimal(repr(row[4 + i])) for row in matching if row[4 + i] is not None])
            for i, key in enumerate(AVERAGES)
        }
        durations = [
            Decimal((row.end_time - row.start_time) // timedelta(microseconds=1))
            for row in matching
            if row.end_time is not None
        ]
        averages["avg_duration_minutes"] = mean(durations, 60 * 10**6)
        result[mode.value] = averages
    return result


def without_averages(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer with the averages (and the comparison made of them) left out."""
    modes = {
        mode: {
            k: v for k, v in answer[mode].items() if k not in (*AVERAGES, "avg_duration_minutes")
        }
        for mode in ("centralized", "federated")
    }
    return {**answer, **modes, "comparison": None}


@pytest.fixture
def fixed_clock(monkeypatch):
    monkeypatch.setattr(runs_service, "utc_now", lambda: NOW)


@settings(
    max_examples=int(os.environ.get("RUNS_ROLLUP_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=operations)
def test_rollups_answer_as_the_scan_after_any_writes(app, client, fixed_clock, operations):
    """Creates, status changes, batches raising and lowering bests, deletes: the roll-ups
    hold exactly what a rebuild from the runs gives, every default-filter answer is the
    scanning statements' answer, and its averages the exact means of the values."""
    created: list[tuple[int, str]] = []
    for operation in operations:
        apply(client, operation, created)
    with app.app_context():
        from_rollups, scanned = answers(read_rollups=True), answers(read_rollups=False)
        for query, rolled, scan in zip(QUERIES, from_rollups, scanned, strict=True):
            assert without_averages(rolled) == without_averages(scan), query
            exact = exact_averages(query)
            for mode in ("centralized", "federated"):
                averages = {k: rolled[mode][k] for k in exact[mode]}
                assert averages == exact[mode], (query, mode)
                for key, value in averages.items():
                    other = scan[mode][key]
                    # The scan's float sum may break an exact tie the other way.
                    assert (value is None) == (other is None) and abs(
                        (value or 0) - (other or 0)
                    ) <= 1.00001e-4
        assert rollups.rebuild_rollups() == 0
    # The run list's totals under status and mode filters are sums of the roll-ups.
    for query in LIST_FILTERS:
        answer = client.get("/api/runs/list", query_string={**query, "limit": 1}).get_json()
        statuses = query.get("status", "completed,failed,in_progress").split(",")
        modes = query.get("training_mode", "centralized,federated").split(",")
        with app.app_context():
            counted = db.session.scalar(
                select(func.count())
                .select_from(Run)
                .where(
                    Run.status.in_([RunStatus(status) for status in statuses]),
                    Run.training_mode.in_([TrainingMode(mode) for mode in modes]),
                )
            )
        assert answer["total"] == counted, query


LIST_FILTERS = (
    {},
    {"status": "completed"},
    {"status": "failed,in_progress"},
    {"training_mode": "federated"},
    {"status": "completed", "training_mode": "centralized"},
)


def test_a_group_maximum_is_recomputed_when_its_holder_drops(app, client, create_run, auth):
    start = iso(datetime.now(UTC) - timedelta(hours=1))
    best, other = (create_run(status="completed", start_time=start)["id"] for _ in range(2))
    for run_id, value in ((best, 0.9), (other, 0.7)):
        points = [{"metric_name": "val_acc", "step": 0, "metric_value": value}]
        client.post(f"/api/runs/{run_id}/metrics", json={"metrics": points}, headers=auth)
    body = client.get("/api/runs/analytics/summary").get_json()
    assert body["centralized"]["max_accuracy"] == 0.9
    points = [{"metric_name": "val_acc", "step": 0, "metric_value": 0.5}]
    client.post(f"/api/runs/{best}/metrics", json={"metrics": points}, headers=auth)
    assert (
        client.get("/api/runs/analytics/summary").get_json()["centralized"]["max_accuracy"] == 0.7
    )
    client.patch(f"/api/runs/{other}", json={"status": "failed"}, headers=auth)
    body = client.get("/api/runs/analytics/summary").get_json()
    assert body["centralized"]["max_accuracy"] == 0.5
    assert body["status_counts"] == {"completed": 1, "failed": 1, "in_progress": 0}
    client.delete(f"/api/runs/{best}", headers=ADMIN_AUTH)
    body = client.get("/api/runs/analytics/summary").get_json()
    assert body["centralized"]["max_accuracy"] is None and body["total_runs"] == 0


def test_refresh_rollups_repairs_wrong_rows_and_leaves_right_ones(app, runner, create_run):
    for status in ("completed", "failed", "in_progress"):
        create_run(status=status)
    result = runner.invoke(args=["refresh-rollups"])
    assert result.exit_code == 0 and result.output == "0 analytics roll-up rows rewritten.\n"
    with app.app_context():
        db.session.execute(update(AnalyticsRollup).values(runs=AnalyticsRollup.runs + 5))
        db.session.execute(
            AnalyticsRollup.__table__.insert().values(
                training_mode="federated",
                status="failed",
                start_day=NOW.date(),
                shard=0,
                runs=1,
                **dict.fromkeys(rollups.SUM_COLUMNS[1:], 0),
                max_accuracy=None,
            )
        )
        db.session.commit()
    result = runner.invoke(args=["refresh-rollups"])
    assert result.output == "4 analytics roll-up rows rewritten.\n"
    assert runner.invoke(args=["refresh-rollups"]).output == "0 analytics roll-up rows rewritten.\n"
    result = runner.invoke(args=["refresh-summaries"])
    assert result.exit_code == 0 and "0 analytics roll-up rows rewritten" in result.output
    with app.app_context():
        total = db.session.scalar(select(db.func.sum(AnalyticsRollup.runs)))
    assert total == 3
