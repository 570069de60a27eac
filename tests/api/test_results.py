"""GET /api/runs/{run_id}/metrics (ExperimentResults) through the client, written like a trainer."""

from __future__ import annotations

import pytest

from tests.helpers import log_evaluations, log_metrics, points

PER_RUN_ROUTES = (
    "/metrics",
    "/download/csv",
    "/download/json",
    "/download/summary",
    "/federated-rounds",
    "/server-evaluation",
)
BEST_KEYS = (
    "best_epoch",
    "best_val_accuracy",
    "best_val_precision",
    "best_val_recall",
    "best_val_loss",
    "best_val_f1",
    "best_val_auroc",
)


def results_of(client, run_id: int) -> dict:
    response = client.get(f"/api/runs/{run_id}/metrics")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def cm(tp: int, tn: int, fp: int, fn: int) -> dict[str, int]:
    return {"val_cm_tp": tp, "val_cm_tn": tn, "val_cm_fp": fp, "val_cm_fn": fn}


@pytest.mark.parametrize("route", PER_RUN_ROUTES)
def test_unknown_run_returns_404_json_on_every_per_run_route(client, route):
    response = client.get(f"/api/runs/987654{route}")
    assert response.status_code == 404
    assert response.get_json() == {
        "code": 404,
        "status": "Not Found",
        "message": "Run 987654 not found",
    }


def test_metrics_written_out_of_order_take_finals_from_the_last_epoch_only(
    client, auth, create_run
):
    run = create_run()
    # The last epoch arrives first and lacks val_precision, which earlier epochs have.
    log_metrics(
        client,
        auth,
        run["id"],
        points(2, val_acc=0.7, val_loss=0.45, val_recall=0.8, val_f1=0.75, val_auroc=0.81)
        + points(2, **cm(40, 30, 20, 10)),
    )
    log_metrics(
        client,
        auth,
        run["id"],
        points(1, val_acc=0.9, val_loss=0.3, val_precision=0.95, val_recall=0.9)
        + points(1, **cm(90, 90, 5, 5))
        + points(0, val_acc=0.5, val_loss=0.6, val_precision=0.5)
        + points(0, **cm(50, 50, 50, 50)),
    )

    results = results_of(client, run["id"])

    assert results["final_metrics"] == {
        "accuracy": 0.7,
        "precision": None,
        "recall": 0.8,
        "f1_score": 0.75,
        "auc": 0.81,
        "loss": 0.45,
    }
    matrix = results["confusion_matrix"]
    assert (matrix["true_positives"], matrix["true_negatives"]) == (40, 30)
    assert (matrix["false_positives"], matrix["false_negatives"]) == (20, 10)
    assert matrix["total"] == 100
    assert matrix["sensitivity"] == 0.8
    assert matrix["specificity"] == 0.6
    assert len(matrix["sensitivity_ci95"]) == 2
    metadata = results["metadata"]
    assert metadata["final_accuracy"] == 0.7
    assert metadata["final_precision"] is None
    assert metadata["final_auc"] == 0.81
    assert metadata["final_loss"] == 0.45


def test_epochs_are_one_indexed_and_ascending(client, auth, create_run):
    run = create_run()
    for step in (3, 0, 2, 1):
        log_metrics(client, auth, run["id"], points(step, train_loss=1.0 - step / 10))
    results = results_of(client, run["id"])
    assert [entry["epoch"] for entry in results["training_history"]] == [1, 2, 3, 4]
    assert [entry["train_loss"] for entry in results["training_history"]] == [1.0, 0.9, 0.8, 0.7]
    assert results["total_epochs"] == results["metadata"]["total_epochs"] == 4


def test_missing_value_is_null_and_real_zero_is_kept_and_can_be_best(client, auth, create_run):
    run = create_run()
    log_metrics(
        client,
        auth,
        run["id"],
        points(0, train_loss=0.5, val_loss=0.2, val_recall=0.0)
        + points(1, train_loss=0.4, val_loss=0.0, val_recall=0.0, train_acc=0.0),
    )
    results = results_of(client, run["id"])
    first, second = results["training_history"]
    assert first["train_acc"] is None
    assert first["val_acc"] is None
    assert second["train_acc"] == 0.0
    assert second["val_loss"] == 0.0
    metadata = results["metadata"]
    assert metadata["best_val_loss"] == 0.0
    assert metadata["best_val_recall"] == 0.0
    assert metadata["best_val_accuracy"] is None
    assert metadata["best_epoch"] is None
    assert results["final_metrics"]["loss"] == 0.0
    assert results["final_metrics"]["recall"] == 0.0


def test_best_val_loss_is_the_minimum_of_present_values(client, auth, create_run):
    run = create_run()
    log_metrics(
        client,
        auth,
        run["id"],
        points(0, val_loss=0.9, val_acc=0.5)
        + points(1, val_acc=0.6)
        + points(2, val_loss=0.35, val_acc=0.7)
        + points(3, val_loss=0.4, val_acc=0.65),
    )
    metadata = results_of(client, run["id"])["metadata"]
    assert metadata["best_val_loss"] == 0.35
    assert metadata["best_val_accuracy"] == 0.7
    assert metadata["best_epoch"] == 3


def test_ties_go_to_the_earliest_epoch(client, auth, create_run):
    run = create_run()
    log_metrics(
        client,
        auth,
        run["id"],
        points(2, val_acc=0.9)
        + points(0, val_acc=0.8)
        + points(1, val_acc=0.9)
        + points(3, val_acc=0.9),
    )
    metadata = results_of(client, run["id"])["metadata"]
    assert metadata["best_val_accuracy"] == 0.9
    assert metadata["best_epoch"] == 2


def test_accepted_aliases_fill_the_canonical_fields(client, auth, create_run):
    run = create_run()
    log_metrics(client, auth, run["id"], points(0, val_accuracy=0.8, val_auc=0.85))
    entry = results_of(client, run["id"])["training_history"][0]
    assert (entry["val_acc"], entry["val_auroc"]) == (0.8, 0.85)


def test_run_without_metrics_answers_an_empty_history(client, create_run):
    run = create_run()
    results = results_of(client, run["id"])
    assert results["training_history"] == []
    assert results["total_epochs"] == 0
    assert results["confusion_matrix"] is None
    assert set(results["final_metrics"].values()) == {None}
    assert all(results["metadata"][key] is None for key in BEST_KEYS)
    assert results["metadata"]["initial_evaluation"] is None


def test_run_facts_and_timestamps_with_offset(client, create_run):
    run = create_run(
        status="completed",
        start_time="2025-11-04T12:00:00+02:00",
        end_time="2025-11-04T10:30:30Z",
        run_description="ResNet50 baseline",
    )
    results = results_of(client, run["id"])
    assert results["experiment_id"] == f"run_{run['id']}"
    assert results["training_mode"] == "centralized"
    assert results["status"] == "completed"
    metadata = results["metadata"]
    assert metadata["experiment_name"] == "ResNet50 baseline"
    assert metadata["start_time"] == "2025-11-04T10:00:00+00:00"
    assert metadata["end_time"] == "2025-11-04T10:30:30+00:00"
    assert metadata["duration_minutes"] == 30.5


def test_experiment_name_falls_back_to_the_experiment_id(client, create_run):
    run = create_run()
    assert results_of(client, run["id"])["metadata"]["experiment_name"] == f"run_{run['id']}"


def test_federated_history_comes_from_training_rounds_of_server_evaluation(
    client, auth, create_run
):
    run = create_run("federated")
    log_evaluations(
        client,
        auth,
        run["id"],
        [
            {
                "round_number": 2,
                "loss": 0.4,
                "accuracy": 0.8,
                "true_positives": 8,
                "true_negatives": 8,
                "false_positives": 2,
                "false_negatives": 2,
            },
            {"round_number": 0, "loss": 0.1, "accuracy": 0.99, "recall": 0.99},
            {"round_number": 1, "loss": 0.5, "accuracy": 0.8, "recall": 0.7},
        ],
    )
    # Client-local metrics are not the run's history.
    log_metrics(
        client,
        auth,
        run["id"],
        [
            {
                "metric_name": "train_loss",
                "metric_value": 0.2,
                "step": 0,
                "client_identifier": "c1",
                "round_number": 1,
            }
        ],
    )

    results = results_of(client, run["id"])

    assert [entry["epoch"] for entry in results["training_history"]] == [1, 2]
    assert {entry["train_loss"] for entry in results["training_history"]} == {None}
    assert results["total_epochs"] == 2
    metadata = results["metadata"]
    # Round 0 scores best everywhere but is not a training round.
    assert metadata["best_val_accuracy"] == 0.8
    assert metadata["best_epoch"] == 1
    assert metadata["best_val_loss"] == 0.4
    assert metadata["best_val_recall"] == 0.7
    assert results["final_metrics"]["loss"] == 0.4
    assert results["final_metrics"]["recall"] is None
    assert results["confusion_matrix"]["total"] == 20
    initial = metadata["initial_evaluation"]
    assert initial["round"] == 0
    assert (initial["loss"], initial["accuracy"], initial["recall"]) == (0.1, 0.99, 0.99)
    assert "confusion_matrix" not in initial


def test_federated_run_with_only_round_zero_has_null_bests(client, auth, create_run):
    run = create_run("federated")
    log_evaluations(client, auth, run["id"], [{"round_number": 0, "loss": 0.7, "accuracy": 0.5}])
    results = results_of(client, run["id"])
    assert results["training_history"] == []
    assert results["total_epochs"] == 0
    assert all(results["metadata"][key] is None for key in BEST_KEYS)
    assert results["confusion_matrix"] is None
    assert results["metadata"]["initial_evaluation"]["accuracy"] == 0.5


def _centralized_run_with_epochs(client, auth, create_run, epochs: int) -> int:
    run = create_run()
    batch = []
    for step in range(epochs):
        batch += points(step, train_loss=0.9, val_loss=0.5, val_acc=0.6, val_recall=0.7)
        batch += points(step, **cm(5, 4, 3, 2))
    log_metrics(client, auth, run["id"], batch)
    return run["id"]


def _federated_run_with_rounds(client, auth, create_run, rounds: int) -> int:
    run = create_run("federated")
    log_evaluations(
        client,
        auth,
        run["id"],
        [
            {
                "round_number": number,
                "loss": 0.5,
                "accuracy": 0.6,
                "true_positives": 1,
                "true_negatives": 1,
                "false_positives": 1,
                "false_negatives": 1,
            }
            for number in range(rounds + 1)
        ],
    )
    return run["id"]


@pytest.mark.parametrize("make_run", [_centralized_run_with_epochs, _federated_run_with_rounds])
def test_metrics_statement_count_does_not_grow_with_epochs(
    client, auth, create_run, count_statements, make_run
):
    small = make_run(client, auth, create_run, 3)
    large = make_run(client, auth, create_run, 300)
    counts = []
    for run_id, epochs in ((small, 3), (large, 300)):
        with count_statements() as counter:
            results = results_of(client, run_id)
        assert results["total_epochs"] == epochs
        counts.append(counter.count)
    assert counts[0] == counts[1]
    assert counts[0] <= 2


def test_openapi_documents_the_results_routes(client):
    spec = client.get("/api/openapi.json").get_json()
    paths = spec["paths"]
    for route in PER_RUN_ROUTES:
        operation = paths[f"/api/runs/{{run_id}}{route}"]["get"]
        assert operation["tags"] == ["results"]
        assert "404" in operation["responses"]
        assert operation["summary"]
    csv_response = paths["/api/runs/{run_id}/download/csv"]["get"]["responses"]["200"]
    assert "text/csv" in csv_response["content"]
    assert "Content-Disposition" in csv_response["headers"]
    summary_response = paths["/api/runs/{run_id}/download/summary"]["get"]["responses"]["200"]
    assert "text/plain" in summary_response["content"]
    # POST /metrics (ingest) and GET /metrics (results) share the path.
    assert {"get", "post"} <= set(paths["/api/runs/{run_id}/metrics"])
    schemas = spec["components"]["schemas"]
    for name in ("ExperimentResults", "FederatedRounds", "ServerEvaluationReport"):
        assert schemas[name]["description"]
    assert schemas["ExperimentResults"]["properties"]["training_history"]["description"]
