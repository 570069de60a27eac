"""A real Flower simulation (Ray backend) with its strategy wrapped by track(), then what
the service stored: rounds, server evaluations with confusion counts, clients' metrics.

The simulation runs in a subprocess (tests/flower_app.py) so that Ray's processes and
threads start and end with it, outside pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import WRITER_TOKEN

pytest.importorskip("flwr", reason="needs the flower extra: pip install './client[flower]'")

pytestmark = pytest.mark.flower

APP = Path(__file__).with_name("flower_app.py")
ROUNDS = 3
CLIENTS = 2
SIMULATION_TIMEOUT_SECONDS = 300


def simulate(service, spool_dir: Path, api: str) -> dict:
    finished = subprocess.run(
        [sys.executable, str(APP), service.url, WRITER_TOKEN, str(spool_dir), api]
        + [str(ROUNDS), str(CLIENTS)],
        capture_output=True,
        text=True,
        timeout=SIMULATION_TIMEOUT_SECONDS,
        env={**os.environ, "RAY_DEDUP_LOGS": "0", "RAY_USAGE_STATS_ENABLED": "0"},
    )
    assert finished.returncode == 0, finished.stderr[-5000:]
    lines = [line for line in finished.stdout.splitlines() if line.startswith("{")]
    assert lines, finished.stdout[-3000:] + finished.stderr[-3000:]
    return json.loads(lines[-1])


@pytest.mark.parametrize("api", ["message", "legacy"])
def test_a_tracked_flower_simulation_is_stored_round_by_round(service, spool_dir, api):
    ids = simulate(service, spool_dir, api)
    run_id = ids["run_id"]
    assert run_id is not None
    record = service.get(f"/api/runs/{run_id}")
    assert record["status"] == "completed"
    assert record["training_mode"] == "federated"

    # Server-side evaluation of every round, round 0 (the initial model) included.
    evaluation = service.get(f"/api/runs/{run_id}/server-evaluation")
    rounds = evaluation["evaluations"]
    assert [entry["round"] for entry in rounds] == list(range(ROUNDS + 1))
    for entry in rounds:
        matrix = entry["confusion_matrix"]
        counts = [matrix[name] for name in ("true_positives", "true_negatives")]
        counts += [matrix[name] for name in ("false_positives", "false_negatives")]
        assert sum(counts) == 300 == entry["num_samples"]
        assert entry["loss"] is not None and 0 <= entry["accuracy"] <= 1
    # The trained model beats the initial one (all-zero weights predict one class).
    assert rounds[-1]["accuracy"] > rounds[0]["accuracy"]
    federated = service.get(f"/api/runs/{run_id}/federated-rounds")
    assert federated["num_rounds"] == ROUNDS

    # Clients: registered, each with its train and evaluate metrics of every round.
    clients = ids["clients"]
    assert len(clients) == CLIENTS
    answer = service.resend(run_id, "clients", [{"client_identifier": c} for c in clients])
    assert answer["unchanged"] == CLIENTS
    points = ids["points"]
    per_client = {
        (p["client_identifier"], p["round_number"], p["metric_name"])
        for p in points
        if "client_identifier" in p
    }
    for client in clients:
        for server_round in range(1, ROUNDS + 1):
            assert {
                (client, server_round, "train_loss"),
                (client, server_round, "eval_acc"),
            } <= per_client
    # Aggregated train and evaluate metrics of every round: run-level, step = round.
    aggregated = {(p["step"], p["metric_name"]) for p in points if "client_identifier" not in p}
    for server_round in range(1, ROUNDS + 1):
        assert {(server_round, "train_loss"), (server_round, "eval_acc")} <= aggregated
    # Everything the tracker logged is stored, once, with the value it logged.
    assert service.resend(run_id, "metrics", points) == {
        "inserted": 0,
        "updated": 0,
        "unchanged": len(points),
    }
    assert service.metrics_count(run_id) == len(points)
    assert not any(path.read_text() for path in spool_dir.rglob("*.jsonl"))


def test_import_result_logs_a_finished_message_api_result(service, spool_dir):
    from flwr.app import MetricRecord
    from flwr.serverapp.strategy import Result

    from runs_client import RunsClient
    from runs_client.flower import import_result

    result = Result()
    for server_round in range(3):
        result.evaluate_metrics_serverapp[server_round] = MetricRecord(
            {"loss": 0.7 - 0.1 * server_round, "accuracy": 0.5 + 0.1 * server_round}
            | {"cm_tp": 40, "cm_tn": 30, "cm_fp": 20, "cm_fn": 10}
        )
        if server_round:
            result.train_metrics_clientapp[server_round] = MetricRecord({"train_loss": 0.3})
            result.evaluate_metrics_clientapp[server_round] = MetricRecord({"loss": 0.4})
    client = RunsClient(service.url, token=WRITER_TOKEN, spool_dir=spool_dir, strict=True)
    with client.start_run(training_mode="federated") as run:
        import_result(run, result)
    client.close()
    rounds = service.get(f"/api/runs/{run.run_id}/server-evaluation")["evaluations"]
    assert [(entry["round"], entry["num_samples"]) for entry in rounds] == [
        (0, 100),
        (1, 100),
        (2, 100),
    ]
    points = [
        {"metric_name": name, "metric_value": value, "step": server_round}
        for server_round in (1, 2)
        for name, value in (("train_loss", 0.3), ("eval_loss", 0.4))
    ]
    assert service.resend(run.run_id, "metrics", points)["unchanged"] == 4


def test_import_result_logs_a_legacy_history(service, spool_dir):
    from flwr.server import History

    from runs_client import RunsClient
    from runs_client.flower import import_result

    history = History()
    for server_round in range(3):
        history.add_loss_centralized(server_round, (0.7, 0.6, 0.5)[server_round])
        history.add_metrics_centralized(server_round, {"accuracy": 0.5, "tp": 5, "tn": 5})
        if server_round:
            history.add_loss_distributed(server_round, 0.4)
            history.add_metrics_distributed_fit(server_round, {"train_loss": 0.3})
    client = RunsClient(service.url, token=WRITER_TOKEN, spool_dir=spool_dir, strict=True)
    with client.start_run(training_mode="federated") as run:
        import_result(run, history)
    client.close()
    rounds = service.get(f"/api/runs/{run.run_id}/server-evaluation")["evaluations"]
    assert [(entry["round"], entry["loss"]) for entry in rounds] == [(0, 0.7), (1, 0.6), (2, 0.5)]
    assert rounds[0]["num_samples"] is None
    assert service.metrics_count(run.run_id) == 4
