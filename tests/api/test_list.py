"""GET /api/runs/list: filters, sorting, paging, summaries and a fixed statement count."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from runs_service.catalogue import LIST_SORT_KEYS as SORT_KEYS
from runs_service.extensions import db
from runs_service.models import Run, RunStatus, RunSummary, TrainingMode
from runs_service.services import ingest
from runs_service.services.definitions import summarize_centralized, summarize_federated
from runs_service.services.runs import create_run as create_run_record
from tests.helpers import log_metrics

SUMMARY_KEYS = {
    "id",
    "training_mode",
    "status",
    "start_time",
    "end_time",
    "run_description",
    "experiment",
    "tags",
    "duration_minutes",
    "best_val_accuracy",
    "best_val_recall",
    "metrics_count",
    "federated_info",
    "final_epoch_stats",
}


def log_epochs(client, auth, run_id: int, epochs: dict[int, dict[str, float]]) -> None:
    """Log {step: {metric_name: value}} run-level metric points."""
    points = [
        {"metric_name": name, "metric_value": value, "step": step}
        for step, values in epochs.items()
        for name, value in values.items()
    ]
    log_metrics(client, auth, run_id, points)


def log_rounds(client, auth, run_id: int, evaluations: list[dict[str, Any]]) -> None:
    response = client.post(
        f"/api/runs/{run_id}/server-evaluations", json={"evaluations": evaluations}, headers=auth
    )
    assert response.status_code == 200, response.get_json()


def list_runs(client, **query: Any) -> dict[str, Any]:
    response = client.get("/api/runs/list", query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def ids(body: dict[str, Any]) -> list[int]:
    return [run["id"] for run in body["runs"]]


@pytest.fixture
def sample(client, auth, create_run) -> dict[int, int]:
    """Seven runs with ties, nulls and a real 0.0 in every sort key; {number: id}."""
    run_ids = {}

    def add(number: int, mode: str, status: str, start: str, end: str | None = None) -> int:
        fields = {"status": status, "start_time": start, "run_description": f"run {number}"}
        if end is not None:
            fields["end_time"] = end
        run_ids[number] = create_run(mode, **fields)["id"]
        return run_ids[number]

    run = add(1, "centralized", "completed", "2025-01-01T00:00:00Z", "2025-01-01T01:00:00Z")
    log_epochs(client, auth, run, {0: {"val_acc": 0.7, "val_recall": 0.6}, 1: {"val_acc": 0.8}})
    run = add(2, "federated", "failed", "2025-01-01T00:00:00Z", "2025-01-01T00:30:00Z")
    log_rounds(client, auth, run, [{"round_number": 1, "accuracy": 0.8, "recall": 0.9}])
    add(3, "centralized", "in_progress", "2025-01-02T00:00:00Z")
    run = add(4, "federated", "completed", "2025-01-03T00:00:00Z", "2025-01-03T01:00:00Z")
    log_rounds(client, auth, run, [{"round_number": 0, "accuracy": 0.99, "recall": 0.99}])
    run = add(5, "centralized", "completed", "2025-01-04T00:00:00Z", "2025-01-04T02:00:00Z")
    log_epochs(client, auth, run, {0: {"val_acc": 0.0, "val_recall": 0.0}})
    run = add(6, "centralized", "failed", "2025-01-04T01:00:00Z", "2025-01-04T02:00:00Z")
    log_epochs(client, auth, run, {0: {"val_accuracy": 0.95}})
    run = add(7, "federated", "in_progress", "2025-01-05T00:00:00Z")
    log_rounds(
        client,
        auth,
        run,
        [{"round_number": 1, "accuracy": 0.5}, {"round_number": 2, "accuracy": 0.6, "recall": 0.6}],
    )
    return run_ids


def in_numbers(sample: dict[int, int], run_ids: list[int]) -> list[int]:
    numbers = {run_id: number for number, run_id in sample.items()}
    return [numbers[run_id] for run_id in run_ids]


def sort_value(run: dict[str, Any], sort_by: str) -> Any:
    if sort_by == "duration":
        return run["duration_minutes"]
    value = run[sort_by]
    if sort_by in ("start_time", "end_time") and value is not None:
        return datetime.fromisoformat(value)
    return value


def expected_order(runs: list[dict[str, Any]], sort_by: str, descending: bool) -> list[int]:
    """Nulls last in both directions; ties broken by id in the same direction."""
    present = [run for run in runs if sort_value(run, sort_by) is not None]
    missing = [run for run in runs if sort_value(run, sort_by) is None]
    present.sort(key=lambda run: (sort_value(run, sort_by), run["id"]), reverse=descending)
    missing.sort(key=lambda run: run["id"], reverse=descending)
    return [run["id"] for run in present + missing]


def test_default_list_is_newest_first_with_every_summary_field(client, sample):
    body = list_runs(client)
    assert body["total"] == 7 and body["limit"] == 100 and body["offset"] == 0
    assert in_numbers(sample, ids(body)) == [7, 6, 5, 4, 3, 2, 1]
    assert all(set(run) == SUMMARY_KEYS for run in body["runs"])


@pytest.mark.parametrize("sort_by", [key for key in SORT_KEYS if key != "metric"])
@pytest.mark.parametrize("sort_order", ["asc", "desc"])
def test_every_sort_key_orders_nulls_last_and_ties_by_id(client, sample, sort_by, sort_order):
    runs = list_runs(client)["runs"]
    body = list_runs(client, sort_by=sort_by, sort_order=sort_order)
    assert ids(body) == expected_order(runs, sort_by, sort_order == "desc")


@pytest.mark.parametrize(
    ("sort_by", "sort_order", "expected"),
    [
        # 0.95 (alias val_accuracy), 0.8 tie (ids descending), 0.6, real 0.0, then nulls.
        ("best_val_accuracy", "desc", [6, 2, 1, 7, 5, 4, 3]),
        ("best_val_accuracy", "asc", [5, 7, 1, 2, 6, 3, 4]),
        ("best_val_recall", "desc", [2, 7, 1, 5, 6, 4, 3]),
        ("best_val_recall", "asc", [5, 1, 7, 2, 3, 4, 6]),
        ("duration", "desc", [5, 6, 4, 1, 2, 7, 3]),
        ("duration", "asc", [2, 1, 4, 6, 5, 3, 7]),
        ("end_time", "desc", [6, 5, 4, 1, 2, 7, 3]),
        ("end_time", "asc", [2, 1, 4, 5, 6, 3, 7]),
        ("status", "asc", [1, 4, 5, 2, 6, 3, 7]),
        ("training_mode", "desc", [7, 4, 2, 6, 5, 3, 1]),
        ("start_time", "asc", [1, 2, 3, 4, 5, 6, 7]),
        ("id", "desc", [7, 6, 5, 4, 3, 2, 1]),
    ],
)
def test_sort_orders_by_hand(client, sample, sort_by, sort_order, expected):
    body = list_runs(client, sort_by=sort_by, sort_order=sort_order)
    assert in_numbers(sample, ids(body)) == expected


def test_equal_durations_tie_whatever_the_start_times(client, create_run):
    """Equal durations at different start times are ties, broken by id, on every database."""
    starts = ["2025-01-01T00:00:00.123456Z", "2025-03-07T13:14:15.654321Z", "2024-02-29T23:59:59Z"]
    ends = ["2025-01-01T00:01:01.623456Z", "2025-03-07T13:15:17.154321Z", "2024-03-01T00:01:00.5Z"]
    created = [
        create_run(status="completed", start_time=start, end_time=end)["id"]
        for start, end in zip(starts, ends, strict=True)
    ]
    shorter = create_run(
        status="completed", start_time="2025-01-01T00:00:00Z", end_time="2025-01-01T00:01:01Z"
    )["id"]
    assert ids(list_runs(client, sort_by="duration", sort_order="asc")) == [shorter, *created]
    assert ids(list_runs(client, sort_by="duration")) == [*reversed(created), shorter]


def test_pages_are_slices_of_the_sorted_list(client, sample):
    everything = ids(list_runs(client, sort_by="best_val_accuracy"))
    pages = [
        ids(list_runs(client, sort_by="best_val_accuracy", limit=3, offset=offset))
        for offset in (0, 3, 6)
    ]
    assert [run_id for page in pages for run_id in page] == everything
    assert [len(page) for page in pages] == [3, 3, 1]


def test_offset_beyond_the_end_answers_an_empty_page_with_the_total(client, sample):
    body = list_runs(client, offset=50, limit=10)
    assert body == {"runs": [], "total": 7, "limit": 10, "offset": 50}
    assert list_runs(client, offset=10**9)["runs"] == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "completed"}, [5, 4, 1]),
        ({"status": "in_progress"}, [7, 3]),
        ({"training_mode": "federated"}, [7, 4, 2]),
        ({"training_mode": "centralized", "status": "failed"}, [6]),
        # started_after is inclusive, started_before exclusive.
        ({"started_after": "2025-01-04T00:00:00Z"}, [7, 6, 5]),
        ({"started_before": "2025-01-04T00:00:00Z"}, [4, 3, 2, 1]),
        (
            {"started_after": "2025-01-01T00:00:00Z", "started_before": "2025-01-02T00:00:00Z"},
            [2, 1],
        ),
        ({"started_after": "2025-01-04T01:00:00+01:00"}, [7, 6, 5]),
        ({"started_after": "2025-01-02T00:00:00", "status": "completed"}, [5, 4]),
        ({"started_after": "2025-02-01T00:00:00Z"}, []),
    ],
)
def test_filters_and_total_under_filters(client, sample, query, expected):
    body = list_runs(client, **query)
    assert in_numbers(sample, ids(body)) == expected
    assert body["total"] == len(expected)
    assert list_runs(client, **query, limit=1)["total"] == len(expected)


@pytest.mark.parametrize(
    "query",
    [
        {"sort_by": "name"},
        {"sort_by": "duration_minutes"},
        {"sort_order": "up"},
        {"status": "done"},
        {"status": ""},
        {"training_mode": "hybrid"},
        {"limit": 0},
        {"limit": 1001},
        {"limit": "ten"},
        {"limit": "1.5"},
        {"offset": -1},
        {"offset": 10**9 + 1},
        {"offset": 2**64},
        {"started_after": "yesterday"},
        {"started_before": "2025-13-01T00:00:00Z"},
        {"page": 2},
    ],
)
def test_invalid_query_is_422_naming_the_parameter(client, query):
    response = client.get("/api/runs/list", query_string=query)
    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == 422 and body["status"] == "Unprocessable Entity"
    (name,) = query
    assert name in body["errors"]["query"]
    assert name in body["message"]


def test_bounds_are_accepted(client, sample):
    assert len(list_runs(client, limit=1000)["runs"]) == 7
    assert len(list_runs(client, limit=1)["runs"]) == 1


def test_centralized_summary_uses_the_final_epoch_and_best_over_epochs(client, auth, create_run):
    run = create_run(
        status="completed",
        start_time="2025-03-01T10:00:00Z",
        end_time="2025-03-01T10:45:30Z",
        run_description="ResNet50",
    )
    # Written out of order; counts at step 5 alone make no epoch.
    log_epochs(
        client,
        auth,
        run["id"],
        {
            2: {"val_acc": 0.85, "val_recall": 0.7, "val_cm_tp": 90, "val_cm_tn": 80},
            0: {"val_acc": 0.6, "val_recall": 0.95, "val_cm_tp": 1, "val_cm_tn": 1},
            1: {"val_accuracy": 0.9, "train_loss": 0.3},
            5: {"val_cm_tp": 1, "val_cm_tn": 1, "val_cm_fp": 1, "val_cm_fn": 1},
        },
    )
    log_epochs(client, auth, run["id"], {2: {"val_cm_fp": 20, "val_cm_fn": 10, "custom": 3.0}})
    (summary,) = list_runs(client)["runs"]
    assert summary == {
        "id": run["id"],
        "training_mode": "centralized",
        "status": "completed",
        "start_time": "2025-03-01T10:00:00+00:00",
        "end_time": "2025-03-01T10:45:30+00:00",
        "run_description": "ResNet50",
        "experiment": None,
        "tags": [],
        "duration_minutes": 45.5,
        "best_val_accuracy": 0.9,
        "best_val_recall": 0.95,
        "metrics_count": 17,
        "federated_info": None,
        "final_epoch_stats": {
            "true_positives": 90,
            "true_negatives": 80,
            "false_positives": 20,
            "false_negatives": 10,
            "total": 200,
            "sensitivity": 0.9,
            "specificity": 0.8,
            "precision_cm": 0.8182,
            "accuracy_cm": 0.85,
            "f1_cm": 0.8571,
            "sensitivity_ci95": [0.8256, 0.9448],
            "specificity_ci95": [0.7112, 0.8666],
        },
    }


def test_canonical_metric_wins_over_its_alias_in_the_same_epoch(client, auth, create_run):
    run = create_run()
    log_epochs(client, auth, run["id"], {0: {"val_acc": 0.7, "val_accuracy": 0.9}})
    assert list_runs(client)["runs"][0]["best_val_accuracy"] == 0.7


def test_run_without_metrics_has_nulls_and_zero_count(client, create_run):
    run = create_run()
    (summary,) = list_runs(client)["runs"]
    assert summary["id"] == run["id"]
    assert summary["best_val_accuracy"] is None and summary["best_val_recall"] is None
    assert summary["metrics_count"] == 0
    assert summary["final_epoch_stats"] is None
    assert summary["duration_minutes"] is None


def test_federated_summary_counts_training_rounds_only(client, auth, create_run):
    run = create_run("federated", config={"num_clients": 5})
    log_rounds(
        client,
        auth,
        run["id"],
        [
            {"round_number": 0, "accuracy": 0.99, "recall": 0.99},
            {"round_number": 2, "accuracy": 0.75, "recall": 0.8},
            {
                "round_number": 1,
                "accuracy": 0.8,
                "recall": 0.7,
                "true_positives": 1,
                "true_negatives": 1,
                "false_positives": 1,
                "false_negatives": 1,
            },
        ],
    )
    # Client-local metrics count as metric points but never as the run's best.
    log_metrics(
        client,
        auth,
        run["id"],
        [
            {"metric_name": "val_acc", "metric_value": 1.0, "step": 0, "client_identifier": c}
            for c in ("a", "b")
        ],
    )
    (summary,) = list_runs(client)["runs"]
    assert summary["best_val_accuracy"] == 0.8
    assert summary["best_val_recall"] == 0.8
    assert summary["metrics_count"] == 2
    # The latest training round has no counts: no statistics from an earlier round.
    assert summary["final_epoch_stats"] is None
    assert summary["federated_info"] == {
        "num_rounds": 2,
        "num_clients": 2,
        "has_server_evaluation": True,
        "best_accuracy": 0.8,
        "best_recall": 0.8,
        "latest_round": 2,
        "latest_accuracy": 0.75,
    }


def test_client_metrics_rebuild_a_missing_summary_whole(app, client, auth, create_run):
    run = create_run("federated")
    log_rounds(client, auth, run["id"], [{"round_number": 1, "accuracy": 0.7}])
    with app.app_context():  # as after a restore that left the summaries out
        db.session.execute(delete(RunSummary).where(RunSummary.run_id == run["id"]))
        db.session.commit()
    point = {"metric_name": "train_loss", "metric_value": 0.5, "step": 0}
    log_metrics(client, auth, run["id"], [{**point, "client_identifier": "a"}])
    (summary,) = list_runs(client)["runs"]
    assert summary["metrics_count"] == 1
    assert summary["best_val_accuracy"] == 0.7
    assert summary["federated_info"]["num_clients"] == 1


def test_federated_run_with_only_round_zero_has_null_bests(client, auth, create_run):
    run = create_run("federated")
    counts = {"true_positives": 5, "true_negatives": 5, "false_positives": 0, "false_negatives": 0}
    log_rounds(client, auth, run["id"], [{"round_number": 0, "accuracy": 0.5, **counts}])
    (summary,) = list_runs(client)["runs"]
    assert summary["best_val_accuracy"] is None
    assert summary["final_epoch_stats"] is None
    assert summary["federated_info"] == {
        "num_rounds": 0,
        "num_clients": 0,
        "has_server_evaluation": True,
        "best_accuracy": None,
        "best_recall": None,
        "latest_round": None,
        "latest_accuracy": None,
    }


def test_federated_run_without_evaluations_uses_the_configured_clients(client, create_run):
    create_run("federated", config={"num_clients": 3})
    info = list_runs(client)["runs"][0]["federated_info"]
    assert info["has_server_evaluation"] is False
    assert info["num_clients"] == 3 and info["num_rounds"] == 0


def _random_centralized_points(rng: random.Random) -> list[dict[str, Any]]:
    names = ["val_acc", "val_accuracy", "val_recall", "val_loss", "train_loss"]
    names += ["val_cm_tp", "val_cm_tn", "val_cm_fp", "val_cm_fn"]
    points = []
    for step in range(rng.randint(0, 6)):
        for name in rng.sample(names, rng.randint(0, len(names))):
            if "_cm_" in name:
                value = float(rng.randint(0, 50))
            else:
                value = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0])
            points.append({"metric_name": name, "metric_value": value, "step": step})
    return points


def _random_evaluations(rng: random.Random) -> list[dict[str, Any]]:
    fields = ["accuracy", "recall", "true_positives", "true_negatives"]
    fields += ["false_positives", "false_negatives"]
    evaluations = []
    for round_number in rng.sample(range(6), rng.randint(0, 6)):
        evaluation = {"round_number": round_number}
        for field in rng.sample(fields, rng.randint(0, len(fields))):
            if field in ("accuracy", "recall"):
                evaluation[field] = rng.choice([0.0, 0.5, 0.9])
            else:
                evaluation[field] = rng.randint(0, 50)
        evaluations.append(evaluation)
    return evaluations


def test_summaries_agree_with_the_definitions_on_random_runs(client, auth, create_run):
    rng = random.Random(20251126)
    expected = {}
    for _ in range(12):
        run = create_run("centralized")
        points = _random_centralized_points(rng)
        if points:
            log_metrics(client, auth, run["id"], points)
        view = summarize_centralized(
            (p["metric_name"], p["step"], p["metric_value"]) for p in points
        )
        expected[run["id"]] = (
            view.bests["best_val_accuracy"],
            view.bests["best_val_recall"],
            view.final_confusion_matrix,
            None,
        )
    for _ in range(12):
        run = create_run("federated")
        evaluations = _random_evaluations(rng)
        if evaluations:
            log_rounds(client, auth, run["id"], evaluations)
        view = summarize_federated(evaluations)
        expected[run["id"]] = (
            view.bests["best_val_accuracy"],
            view.bests["best_val_recall"],
            view.final_confusion_matrix,
            (view.num_rounds, view.latest_round, view.final_metrics["accuracy"]),
        )
    for run in list_runs(client)["runs"]:
        info = run["federated_info"]
        federated = (
            None
            if info is None
            else tuple(info[key] for key in ("num_rounds", "latest_round", "latest_accuracy"))
        )
        actual = (run["best_val_accuracy"], run["best_val_recall"], run["final_epoch_stats"])
        assert (*actual, federated) == expected[run["id"]], run


def add_runs(app, count: int, offset: int) -> None:
    """Write `count` runs of both modes with metrics, evaluations and clients via the services."""
    with app.app_context():
        for number in range(offset, offset + count):
            mode = TrainingMode.FEDERATED if number % 2 else TrainingMode.CENTRALIZED
            run = create_run_record(
                {
                    "training_mode": mode,
                    "status": RunStatus.COMPLETED,
                    "start_time": datetime.fromisoformat(f"2025-01-01T00:00:{number % 60:02d}Z"),
                    "end_time": datetime.fromisoformat("2025-01-02T00:00:00Z"),
                }
            )
            if mode is TrainingMode.CENTRALIZED:
                points = [
                    {"metric_name": name, "metric_value": value, "step": step}
                    for step in range(3)
                    for name, value in [
                        ("val_acc", 0.5 + step / 10),
                        ("val_cm_tp", 3),
                        ("val_cm_tn", 4),
                        ("val_cm_fp", 1),
                        ("val_cm_fn", 2),
                    ]
                ]
                ingest.log_metrics(run.id, points)
            else:
                ingest.register_clients(run.id, [{"client_identifier": "a"}])
                ingest.log_server_evaluations(
                    run.id,
                    [
                        {"round_number": r, "accuracy": 0.5, "recall": 0.4, "true_positives": 1}
                        for r in range(3)
                    ],
                )
        assert db.session.scalar(select(func.count()).select_from(Run)) == offset + count


@pytest.mark.parametrize("sort_by", ["start_time", "best_val_accuracy", "duration"])
def test_statement_count_does_not_grow_with_runs_or_page_size(
    app, client, count_statements, sort_by
):
    add_runs(app, 5, 0)
    with count_statements() as few:
        assert len(list_runs(client, sort_by=sort_by)["runs"]) == 5
    add_runs(app, 195, 5)
    with count_statements() as many:
        assert len(list_runs(client, sort_by=sort_by, limit=1000)["runs"]) == 200
    # The page, with its stored summaries and the total on every row.
    assert few.count == many.count == 1, many.statements


@pytest.mark.parametrize(
    "query",
    [{}, {"training_mode": "federated"}, {"started_after": "2024-12-31T00:00:00Z"}],
    ids=["no filter", "counted by the roll-ups", "counted over the runs"],
)
def test_a_page_past_the_last_run_still_says_the_total(app, client, count_statements, query):
    add_runs(app, 7, 0)
    total = list_runs(client, **query)["total"]
    with count_statements() as counter:
        body = list_runs(client, **query, offset=50)
    assert body["runs"] == [] and body["total"] == total > 0
    # The empty page carries no total: it is counted apart.
    assert counter.count == 2, counter.statements


def test_openapi_documents_the_list(client):
    spec = client.get("/api/openapi.json").get_json()
    operation = spec["paths"]["/api/runs/list"]["get"]
    assert operation["tags"] == ["runs"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    assert set(parameters) == {
        "limit",
        "offset",
        "status",
        "training_mode",
        "sort_by",
        "sort_order",
        "started_after",
        "started_before",
        "sort_metric",
        "sort_stat",
        "metrics",
        "experiment",
        "tag",
        "q",
    }
    assert parameters["limit"]["schema"]["maximum"] == 1000
    assert parameters["offset"]["schema"]["maximum"] == 10**9
    assert parameters["sort_by"]["schema"]["enum"] == list(SORT_KEYS)
    assert all(parameter.get("description") for parameter in parameters.values())
    assert {"200", "422"} <= set(operation["responses"])
    summary = spec["components"]["schemas"]["RunSummary"]
    # metrics: only with the metrics parameter (tests/api/test_list_metrics.py).
    assert set(summary["properties"]) == SUMMARY_KEYS | {"metrics"}


def test_summaries_have_exactly_the_documented_fields(client, create_run, auth):
    """The route sends the service's summaries as they are, so they must match the schema."""
    from runs_service.schemas.listing import FederatedInfoSchema, RunSummarySchema

    create_run("centralized", start_time="2025-01-01T00:00:00.5Z", end_time="2025-01-01T01:00:00Z")
    federated = create_run("federated")
    client.post(
        f"/api/runs/{federated['id']}/server-evaluations",
        json={
            "evaluations": [
                {
                    "round_number": 1,
                    "accuracy": 0.5,
                    "true_positives": 1,
                    "true_negatives": 1,
                    "false_positives": 1,
                    "false_negatives": 1,
                }
            ]
        },
        headers=auth,
    )
    runs = client.get("/api/runs/list?sort_by=id&sort_order=asc").get_json()["runs"]
    for run in runs:
        # metrics comes only with the metrics parameter.
        assert set(run) == set(RunSummarySchema().fields) - {"metrics"}
    with_metrics = client.get("/api/runs/list?metrics=val_acc").get_json()["runs"]
    for run in with_metrics:
        assert set(run) == set(RunSummarySchema().fields)
    centralized_run, federated_run = runs
    assert centralized_run["start_time"] == "2025-01-01T00:00:00.500000+00:00"
    assert centralized_run["training_mode"] == "centralized"
    assert set(federated_run["federated_info"]) == set(FederatedInfoSchema().fields)
    assert federated_run["final_epoch_stats"]["total"] == 4
