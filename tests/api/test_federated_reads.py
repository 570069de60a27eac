"""GET /api/runs/{run_id}/federated-rounds and /server-evaluation through the client."""

from __future__ import annotations

import pytest

from tests.helpers import log_evaluations

NO_BEST = {"value": None, "round": None}
BEST_KEYS = (
    "best_accuracy",
    "best_precision",
    "best_recall",
    "best_f1_score",
    "best_auroc",
    "lowest_loss",
)


def register_clients(client, auth, run_id: int, *identifiers: str) -> None:
    body = {"clients": [{"client_identifier": identifier} for identifier in identifiers]}
    response = client.post(f"/api/runs/{run_id}/clients", json=body, headers=auth)
    assert response.status_code == 200, response.get_json()


def get_json(client, path: str) -> dict:
    response = client.get(path)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


# Round 0 (the untrained model) scores best on every metric: it must never count.
ROUNDS = [
    {"round_number": 2, "loss": 0.4, "accuracy": 0.85, "precision": 0.8, "recall": 0.9,
     "f1_score": 0.85, "auroc": 0.9, "true_positives": 90, "true_negatives": 80,
     "false_positives": 20, "false_negatives": 10,
     "evaluation_time": "2025-11-04T14:00:00+02:00"},
    {"round_number": 0, "loss": 0.01, "accuracy": 0.99, "precision": 0.99, "recall": 0.99,
     "f1_score": 0.99, "auroc": 0.99},
    {"round_number": 1, "loss": 0.5, "accuracy": 0.85, "precision": 0.7, "recall": 0.6,
     "f1_score": 0.65, "auroc": None, "additional_metrics": {"client_losses": [0.5, 0.6]}},
]  # fmt: skip


@pytest.fixture
def federated_run(client, auth, create_run) -> int:
    run = create_run("federated", config={"num_clients": 5})
    log_evaluations(client, auth, run["id"], ROUNDS)
    return run["id"]


def test_federated_rounds_include_round_zero_but_do_not_count_it(client, federated_run):
    body = get_json(client, f"/api/runs/{federated_run}/federated-rounds")
    assert body["is_federated"] is True
    assert body["num_rounds"] == 2
    assert [entry["round"] for entry in body["rounds"]] == [0, 1, 2]
    assert body["rounds"][0]["metrics"] == {
        "loss": 0.01,
        "accuracy": 0.99,
        "precision": 0.99,
        "recall": 0.99,
        "f1": 0.99,
        "auroc": 0.99,
    }


def test_federated_rounds_leave_out_null_metrics(client, federated_run):
    body = get_json(client, f"/api/runs/{federated_run}/federated-rounds")
    round_one = body["rounds"][1]["metrics"]
    assert "auroc" not in round_one
    assert round_one["f1"] == 0.65


def test_federated_rounds_count_registered_clients_else_configured(client, auth, federated_run):
    path = f"/api/runs/{federated_run}/federated-rounds"
    assert get_json(client, path)["num_clients"] == 5
    register_clients(client, auth, federated_run, "hospital-a", "hospital-b")
    assert get_json(client, path)["num_clients"] == 2


def test_server_evaluation_lists_every_round_and_summarises_training_rounds(client, federated_run):
    body = get_json(client, f"/api/runs/{federated_run}/server-evaluation")
    assert body["run_id"] == federated_run
    assert body["is_federated"] is True
    assert body["has_server_evaluation"] is True
    assert [entry["round"] for entry in body["evaluations"]] == [0, 1, 2]
    summary = body["summary"]
    assert summary["total_rounds"] == 2
    assert summary["latest_round"] == 2
    assert summary["latest_metrics"] == {
        "loss": 0.4,
        "accuracy": 0.85,
        "precision": 0.8,
        "recall": 0.9,
        "f1_score": 0.85,
        "auroc": 0.9,
    }
    # Ties (accuracy 0.85 in rounds 1 and 2) go to the earliest round.
    assert summary["best_accuracy"] == {"value": 0.85, "round": 1}
    assert summary["best_precision"] == {"value": 0.8, "round": 2}
    assert summary["best_recall"] == {"value": 0.9, "round": 2}
    assert summary["best_f1_score"] == {"value": 0.85, "round": 2}
    assert summary["best_auroc"] == {"value": 0.9, "round": 2}
    assert summary["lowest_loss"] == {"value": 0.4, "round": 2}


def test_server_evaluation_entries_carry_optional_parts_only_when_present(client, federated_run):
    initial, first, second = get_json(client, f"/api/runs/{federated_run}/server-evaluation")[
        "evaluations"
    ]
    assert "confusion_matrix" not in initial and "additional_metrics" not in initial
    assert first["additional_metrics"] == {"client_losses": [0.5, 0.6]}
    assert "confusion_matrix" not in first
    matrix = second["confusion_matrix"]
    assert matrix["total"] == 200
    assert matrix["sensitivity"] == 0.9
    assert matrix["specificity"] == 0.8
    assert len(matrix["specificity_ci95"]) == 2
    assert second["num_samples"] == 200
    assert second["evaluation_time"] == "2025-11-04T12:00:00+00:00"
    assert first["auroc"] is None


def test_run_with_only_round_zero_has_null_bests(client, auth, create_run):
    run = create_run("federated")
    log_evaluations(client, auth, run["id"], [{"round_number": 0, "loss": 0.7, "accuracy": 0.5}])
    rounds = get_json(client, f"/api/runs/{run['id']}/federated-rounds")
    assert rounds["num_rounds"] == 0
    assert [entry["round"] for entry in rounds["rounds"]] == [0]
    body = get_json(client, f"/api/runs/{run['id']}/server-evaluation")
    assert body["has_server_evaluation"] is True
    assert [entry["round"] for entry in body["evaluations"]] == [0]
    summary = body["summary"]
    assert summary["total_rounds"] == 0
    assert summary["latest_round"] is None
    assert summary["latest_metrics"] is None
    assert all(summary[key] == NO_BEST for key in BEST_KEYS)


def test_federated_run_without_evaluations_answers_empty_data(client, create_run):
    run = create_run("federated")
    rounds = get_json(client, f"/api/runs/{run['id']}/federated-rounds")
    assert rounds == {"is_federated": True, "num_rounds": 0, "num_clients": 0, "rounds": []}
    body = get_json(client, f"/api/runs/{run['id']}/server-evaluation")
    assert body == {
        "run_id": run["id"],
        "is_federated": True,
        "has_server_evaluation": False,
        "evaluations": [],
        "summary": {},
    }


def test_centralized_run_on_federated_routes_is_not_federated_with_empty_data(client, create_run):
    run = create_run("centralized")
    assert get_json(client, f"/api/runs/{run['id']}/federated-rounds") == {
        "is_federated": False,
        "num_rounds": 0,
        "num_clients": 0,
        "rounds": [],
    }
    assert get_json(client, f"/api/runs/{run['id']}/server-evaluation") == {
        "run_id": run["id"],
        "is_federated": False,
        "has_server_evaluation": False,
        "evaluations": [],
        "summary": {},
    }


@pytest.mark.parametrize("route", ["/federated-rounds", "/server-evaluation"])
def test_federated_reads_statement_count_does_not_grow_with_rounds(
    client, auth, create_run, count_statements, route
):
    counts = []
    for rounds in (3, 300):
        run = create_run("federated")
        log_evaluations(
            client,
            auth,
            run["id"],
            [{"round_number": number, "loss": 0.5} for number in range(rounds + 1)],
        )
        with count_statements() as counter:
            get_json(client, f"/api/runs/{run['id']}{route}")
        counts.append(counter.count)
    assert counts[0] == counts[1]
