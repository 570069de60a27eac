"""GET /api/runs/analytics/summary: counts, success rate, averages, comparison, top runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runs_service.models import RunStatus, TrainingMode
from runs_service.services import ingest
from runs_service.services.runs import create_run as create_run_record

NULL_MODE = {
    "count": 0,
    "avg_accuracy": None,
    "avg_precision": None,
    "avg_recall": None,
    "avg_f1": None,
    "avg_auroc": None,
    "max_accuracy": None,
    "avg_duration_minutes": None,
}
NULL_COMPARISON = dict.fromkeys(
    ["accuracy", "precision", "recall", "f1", "auroc", "duration_minutes"]
)


def summary(client, **query: Any) -> dict[str, Any]:
    response = client.get("/api/runs/analytics/summary", query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def iso(moment: datetime) -> str:
    return moment.isoformat()


@pytest.fixture
def runs(client, auth, create_run) -> dict[str, int]:
    """Runs of both modes and every status, started days apart; {name: id}."""
    now = datetime.now(UTC)
    created = {}

    def add(name, mode, status, days_ago, minutes=None, epochs=None, rounds=None):
        start = now - timedelta(days=days_ago)
        fields = {"status": status, "start_time": iso(start)}
        if minutes is not None:
            fields["end_time"] = iso(start + timedelta(minutes=minutes))
        run_id = create_run(mode, **fields)["id"]
        created[name] = run_id
        if epochs:
            points = [
                {"metric_name": metric, "metric_value": value, "step": step}
                for step, values in enumerate(epochs)
                for metric, value in values.items()
            ]
            response = client.post(
                f"/api/runs/{run_id}/metrics", json={"metrics": points}, headers=auth
            )
            assert response.status_code == 200
        if rounds:
            response = client.post(
                f"/api/runs/{run_id}/server-evaluations", json={"evaluations": rounds}, headers=auth
            )
            assert response.status_code == 200

    add(
        "c1",
        "centralized",
        "completed",
        1.5,
        60,
        epochs=[
            {"val_acc": 0.8, "val_precision": 0.7, "val_recall": 0.6, "val_f1": 0.65},
            {"val_acc": 0.75, "val_precision": 0.5, "val_auroc": 0.9},
        ],
    )
    add(
        "c2", "centralized", "completed", 2.5, 30, epochs=[{"val_accuracy": 0.9, "val_recall": 0.9}]
    )
    add("c3", "centralized", "completed", 20.5, 90)
    add("c4", "centralized", "failed", 3.5, 10, epochs=[{"val_acc": 0.5}])
    add("c5", "centralized", "in_progress", 1.5, epochs=[{"val_acc": 0.95}])
    add(
        "f1",
        "federated",
        "completed",
        1.5,
        120,
        rounds=[
            {"round_number": 0, "accuracy": 0.99, "recall": 0.99},
            {
                "round_number": 1,
                "accuracy": 0.7,
                "precision": 0.6,
                "recall": 0.8,
                "f1_score": 0.7,
                "auroc": 0.85,
            },
            {"round_number": 2, "accuracy": 0.85, "recall": 0.75},
        ],
    )
    add(
        "f2",
        "federated",
        "completed",
        30.5,
        60,
        rounds=[{"round_number": 1, "accuracy": 0.85, "recall": 0.5}],
    )
    add("f3", "federated", "failed", 2.5, 5)
    add("f4", "federated", "failed", 40.5, 15)
    return created


def top_names(body: dict[str, Any], runs: dict[str, int]) -> list[str]:
    names = {run_id: name for name, run_id in runs.items()}
    return [names[run["run_id"]] for run in body["top_runs"]]


def test_empty_database_answers_zeros_and_nulls(client):
    assert summary(client) == {
        "total_runs": 0,
        "success_rate": None,
        "status_counts": {"completed": 0, "failed": 0, "in_progress": 0},
        "centralized": NULL_MODE,
        "federated": NULL_MODE,
        "comparison": NULL_COMPARISON,
        "top_runs": [],
    }


def test_default_summarizes_completed_runs(client, runs):
    body = summary(client)
    assert body["total_runs"] == 5
    assert body["status_counts"] == {"completed": 5, "failed": 3, "in_progress": 1}
    assert body["success_rate"] == 0.625
    assert body["centralized"] == {
        "count": 3,
        "avg_accuracy": 0.85,
        "avg_precision": 0.7,
        "avg_recall": 0.75,
        "avg_f1": 0.65,
        "avg_auroc": 0.9,
        "max_accuracy": 0.9,
        "avg_duration_minutes": 60.0,
    }
    assert body["federated"] == {
        "count": 2,
        "avg_accuracy": 0.85,
        "avg_precision": 0.6,
        "avg_recall": 0.65,
        "avg_f1": 0.7,
        "avg_auroc": 0.85,
        "max_accuracy": 0.85,
        "avg_duration_minutes": 90.0,
    }
    assert body["comparison"] == {
        "accuracy": 0.0,
        "precision": -0.1,
        "recall": -0.1,
        "f1": 0.05,
        "auroc": -0.05,
        "duration_minutes": 30.0,
    }


def test_top_run_entries_carry_every_best(client, runs):
    first = summary(client, top_n=1)["top_runs"]
    assert first == [
        {
            "run_id": runs["c2"],
            "training_mode": "centralized",
            "status": "completed",
            "best_accuracy": 0.9,
            "best_precision": None,
            "best_recall": 0.9,
            "best_f1": None,
            "best_auroc": None,
            "duration_minutes": 30.0,
            "start_time": first[0]["start_time"],
        }
    ]
    assert first[0]["start_time"].endswith("+00:00")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Ties (f1 and f2 at 0.85) go to the higher id; runs without the value come last.
        ({}, ["c2", "f2", "f1", "c1", "c3"]),
        ({"rank_by": "recall"}, ["c2", "f1", "c1", "f2", "c3"]),
        ({"rank_by": "precision"}, ["c1", "f1", "f2", "c3", "c2"]),
        ({"rank_by": "f1"}, ["f1", "c1", "f2", "c3", "c2"]),
        ({"rank_by": "auroc"}, ["c1", "f1", "f2", "c3", "c2"]),
        ({"top_n": 2}, ["c2", "f2"]),
        ({"status": "all", "top_n": 3}, ["c5", "c2", "f2"]),
        ({"status": "failed"}, ["c4", "f4", "f3"]),
        ({"training_mode": "federated", "rank_by": "recall"}, ["f1", "f2"]),
    ],
)
def test_top_runs_are_ranked_highest_first_with_missing_values_last(client, runs, query, expected):
    assert top_names(summary(client, **query), runs) == expected


def test_status_all_and_a_single_status_filter_everything_but_counts(client, runs):
    everything = summary(client, status="all")
    assert everything["total_runs"] == 9
    assert everything["centralized"]["count"] == 5 and everything["federated"]["count"] == 4
    failed = summary(client, status="failed")
    assert failed["total_runs"] == 3
    assert failed["centralized"]["avg_accuracy"] == 0.5
    assert failed["federated"]["avg_accuracy"] is None
    assert failed["federated"]["avg_duration_minutes"] == 10.0
    assert failed["comparison"]["accuracy"] is None
    assert failed["comparison"]["duration_minutes"] == 0.0
    running = summary(client, status="in_progress")
    assert running["centralized"]["avg_duration_minutes"] is None
    for body in (everything, failed, running):
        assert body["status_counts"] == {"completed": 5, "failed": 3, "in_progress": 1}
        assert body["success_rate"] == 0.625


@pytest.mark.parametrize(
    ("query", "counts", "rate", "total"),
    [
        ({"training_mode": "centralized"}, (3, 1, 1), 0.75, 3),
        ({"training_mode": "federated"}, (2, 2, 0), 0.5, 2),
        ({"days": 7}, (3, 2, 1), 0.6, 3),
        ({"days": 25}, (4, 2, 1), 0.6667, 4),
        ({"days": 7, "training_mode": "federated"}, (1, 1, 0), 0.5, 1),
        ({"days": 7, "training_mode": "federated", "status": "failed"}, (1, 1, 0), 0.5, 1),
        ({"days": 1}, (0, 0, 0), None, 0),
    ],
)
def test_success_rate_follows_the_mode_and_days_filters(client, runs, query, counts, rate, total):
    body = summary(client, **query)
    completed, failed, in_progress = counts
    assert body["status_counts"] == {
        "completed": completed,
        "failed": failed,
        "in_progress": in_progress,
    }
    assert body["success_rate"] == rate
    assert body["total_runs"] == total


def test_mode_filter_leaves_the_other_mode_empty(client, runs):
    body = summary(client, training_mode="centralized")
    assert body["federated"] == NULL_MODE
    assert body["comparison"] == NULL_COMPARISON
    assert body["centralized"]["count"] == 3


def test_days_keeps_only_recent_runs_in_averages_and_ranking(client, runs):
    body = summary(client, days=7)
    assert top_names(body, runs) == ["c2", "f1", "c1"]
    assert body["federated"]["avg_accuracy"] == 0.85
    assert body["federated"]["avg_duration_minutes"] == 120.0


def test_only_running_runs_have_no_success_rate(client, create_run):
    create_run("centralized")
    body = summary(client, status="all")
    assert body["success_rate"] is None
    assert body["status_counts"] == {"completed": 0, "failed": 0, "in_progress": 1}
    assert body["total_runs"] == 1


def test_averages_are_rounded_to_four_places(client, auth, create_run):
    for value in (0.1, 0.2, 0.25):
        run = create_run(status="completed")
        point = {"metric_name": "val_acc", "metric_value": value, "step": 0}
        client.post(f"/api/runs/{run['id']}/metrics", json={"metrics": [point]}, headers=auth)
    assert summary(client)["centralized"]["avg_accuracy"] == 0.1833


@pytest.mark.parametrize(
    "query",
    [
        {"status": "done"},
        {"status": "ALL"},
        {"training_mode": "hybrid"},
        {"days": 0},
        {"days": 3651},
        {"days": "week"},
        {"top_n": 0},
        {"top_n": 101},
        {"rank_by": "loss"},
        {"rank_by": "f1_score"},
        {"limit": 5},
    ],
)
def test_invalid_query_is_422_naming_the_parameter(client, query):
    response = client.get("/api/runs/analytics/summary", query_string=query)
    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == 422
    (name,) = query
    assert name in body["errors"]["query"]


def test_bounds_are_accepted(client):
    assert summary(client, days=3650, top_n=100)["total_runs"] == 0
    assert summary(client, days=1, top_n=1, rank_by="auroc", status="all")["top_runs"] == []


def add_runs(app, count: int) -> None:
    """Write `count` finished runs of both modes with metrics and evaluations via the services."""
    start = datetime.now(UTC) - timedelta(hours=1)
    with app.app_context():
        for number in range(count):
            mode = TrainingMode.FEDERATED if number % 2 else TrainingMode.CENTRALIZED
            status = RunStatus.FAILED if number % 3 == 0 else RunStatus.COMPLETED
            run = create_run_record(
                {
                    "training_mode": mode,
                    "status": status,
                    "start_time": start,
                    "end_time": start + timedelta(minutes=number % 50),
                }
            )
            if mode is TrainingMode.CENTRALIZED:
                points = [
                    {"metric_name": name, "metric_value": (number % 10) / 10, "step": step}
                    for step in range(2)
                    for name in ("val_acc", "val_recall", "val_precision")
                ]
                ingest.log_metrics(run.id, points)
            else:
                evaluations = [
                    {"round_number": r, "accuracy": (number % 7) / 7, "f1_score": 0.5}
                    for r in range(3)
                ]
                ingest.log_server_evaluations(run.id, evaluations)


QUERIES = [
    {},
    {"days": 30},
    {"status": "all", "days": 30, "rank_by": "recall", "top_n": 100},
    {"value": "final", "status": "all", "top_n": 100},
]


def test_statement_count_does_not_grow_with_runs(app, client, count_statements):
    add_runs(app, 5)
    counts = []
    for query in QUERIES:
        with count_statements() as counter:
            summary(client, **query)
        counts.append(counter.count)
    add_runs(app, 195)
    for query, few in zip(QUERIES, counts, strict=True):
        with count_statements() as counter:
            body = summary(client, **query)
        assert counter.count == few <= 3, counter.statements
    assert body["total_runs"] == 200 and len(body["top_runs"]) == 100


def test_openapi_documents_the_summary(client):
    spec = client.get("/api/openapi.json").get_json()
    operation = spec["paths"]["/api/runs/analytics/summary"]["get"]
    assert operation["tags"] == ["results"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    assert set(parameters) == {
        "status",
        "training_mode",
        "days",
        "top_n",
        "rank_by",
        "value",
        "experiment",
        "tag",
    }
    assert parameters["status"]["schema"]["enum"] == [
        "in_progress",
        "completed",
        "failed",
        "all",
    ]
    assert parameters["days"]["schema"]["minimum"] == 1
    assert parameters["days"]["schema"]["maximum"] == 3650
    assert parameters["top_n"]["schema"]["maximum"] == 100
    assert parameters["rank_by"]["schema"]["enum"] == [
        "accuracy",
        "precision",
        "recall",
        "f1",
        "auroc",
    ]
    assert {"200", "422"} <= set(operation["responses"])
    schemas = spec["components"]["schemas"]
    assert set(schemas["AnalyticsSummary"]["properties"]) == {
        "total_runs",
        "success_rate",
        "status_counts",
        "centralized",
        "federated",
        "comparison",
        "top_runs",
    }
    assert schemas["ModeMetrics"]["properties"]["avg_accuracy"]["description"]


def test_final_values_average_rank_and_max_the_value_at_the_last_epoch(client, runs):
    body = summary(client, value="final")

    # c1 ends at epoch 2 (val_acc 0.75, no recall), c2 logged val_accuracy (an alias).
    assert body["centralized"] == {
        "count": 3,
        "avg_accuracy": 0.825,
        "avg_precision": 0.5,
        "avg_recall": 0.9,
        "avg_f1": None,
        "avg_auroc": 0.9,
        "max_accuracy": 0.9,
        "avg_duration_minutes": 60.0,
    }
    # f1 ends at round 2 (accuracy 0.85, recall 0.75); round 0 never counts.
    assert body["federated"] == {
        "count": 2,
        "avg_accuracy": 0.85,
        "avg_precision": None,
        "avg_recall": 0.625,
        "avg_f1": None,
        "avg_auroc": None,
        "max_accuracy": 0.85,
        "avg_duration_minutes": 90.0,
    }
    assert body["comparison"]["accuracy"] == 0.025
    assert top_names(body, runs) == ["c2", "f2", "f1", "c1", "c3"]
    c1 = next(run for run in body["top_runs"] if run["run_id"] == runs["c1"])
    assert (c1["best_accuracy"], c1["final_accuracy"]) == (0.8, 0.75)
    assert c1["final_recall"] is None
    recall = summary(client, value="final", rank_by="recall")
    assert top_names(recall, runs) == ["c2", "f1", "f2", "c3", "c1"]


def test_best_values_stay_the_default_without_final_fields(client, runs):
    body = summary(client)

    assert top_names(body, runs) == top_names(summary(client, value="best"), runs)
    assert all("final_accuracy" not in run for run in body["top_runs"])


def test_a_federated_run_with_only_round_zero_has_no_final_value(client, create_run, auth):
    run_id = create_run("federated", status="completed")["id"]
    response = client.post(
        f"/api/runs/{run_id}/server-evaluations",
        json={"evaluations": [{"round_number": 0, "accuracy": 0.5}]},
        headers=auth,
    )
    assert response.status_code == 200

    body = summary(client, value="final")

    assert body["federated"]["avg_accuracy"] is None
    assert body["top_runs"][0]["final_accuracy"] is None


def test_an_unknown_value_is_422_naming_it(client):
    response = client.get("/api/runs/analytics/summary?value=median")

    assert response.status_code == 422
    assert "value" in response.get_json()["errors"]["query"]


def sqlite_plan(app, query, params: dict[str, Any]) -> list[str]:
    """SQLite's EXPLAIN QUERY PLAN lines of a statement with these parameters."""
    from runs_service.extensions import db

    with app.app_context():
        compiled = query.compile(db.engine)
        values = {**params, **compiled.construct_params(params)}
        positional = tuple(values[name] for name in compiled.positiontup)
        rows = db.session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", positional)
        return [row[-1] for row in rows]


@pytest.mark.parametrize("rank_by", ["accuracy", "recall"])
def test_top_runs_of_one_mode_walk_that_modes_best_index(app, runs, is_postgres, rank_by):
    """No sort of every matching run, and no pass over the other mode's runs (SQLite's
    plan; PostgreSQL's planner picks by its statistics)."""
    if is_postgres:
        return
    from runs_service.services.analytics import _top_runs_query

    query = _top_runs_query(frozenset({"status", "training_mode"}), rank_by)
    plan = sqlite_plan(
        app, query, {"status": "completed", "training_mode": "federated", "top_n": 5}
    )
    assert any(f"USING INDEX ix_run_summaries_mode_best_{rank_by}" in line for line in plan), plan
    assert not any("TEMP B-TREE" in line for line in plan), plan


def test_statements_over_an_experiments_runs_start_from_its_index(app, runs, is_postgres):
    """Not from the runs of a status or a mode, nearly every run (SQLite's plan)."""
    if is_postgres:
        return
    from runs_service.services import analytics

    filters = frozenset({"experiment", "status", "training_mode"})
    params = {"experiment": "e", "status": "completed", "training_mode": "federated", "top_n": 5}
    for query in (
        analytics._status_counts_query(filters),
        analytics._mode_metrics_query(filters),
        analytics._top_runs_query(filters, "accuracy"),
    ):
        plan = sqlite_plan(app, query, params)
        assert any(
            line.startswith("SEARCH runs USING INDEX ix_runs_experiment_start_time")
            for line in plan
        ), plan
