"""The client against a real gunicorn-served runs_service (see conftest.Service)."""

from __future__ import annotations

import logging
import math

import pytest
from conftest import WRITER_TOKEN
from helpers import epoch_metrics, expected_points

from runs_client import RunsClient, RunsClientError
from runs_client import _points as points_module


@pytest.fixture
def client(service, spool_dir):
    made = RunsClient(service.url, token=WRITER_TOKEN, spool_dir=spool_dir, strict=True)
    yield made
    made.close()


def test_happy_path_stores_every_point_and_completes_the_run(service, client):
    with client.start_run(
        training_mode="centralized", run_description="happy path", config={"lr": 1e-4}
    ) as run:
        for epoch in range(5):
            run.log_metrics(epoch_metrics(epoch), step=epoch)
    assert run.run_id is not None
    record = service.get(f"/api/runs/{run.run_id}")
    assert record["status"] == "completed"
    assert record["end_time"] is not None
    assert record["external_id"] == run.external_id
    assert record["config"] == {"lr": 1e-4}
    assert record["run_description"] == "happy path"
    assert service.metrics_count(run.run_id) == 5 * 9
    # Re-sending what the loop logged changes nothing: every point is stored as logged.
    answer = service.resend(run.run_id, "metrics", expected_points(5))
    assert answer == {"inserted": 0, "updated": 0, "unchanged": 45}
    history = service.get(f"/api/runs/{run.run_id}/metrics")["training_history"]
    assert [row["val_acc"] for row in history] == [epoch_metrics(e)["val_acc"] for e in range(5)]


def test_an_exception_marks_the_run_failed_and_still_propagates(service, client):
    with pytest.raises(ZeroDivisionError):
        with client.start_run(training_mode="centralized") as run:
            run.log_metrics(epoch_metrics(0), step=0)
            1 / 0  # noqa: B018 - the training step that fails
    record = service.get(f"/api/runs/{run.run_id}")
    assert record["status"] == "failed"
    assert record["end_time"] is not None
    assert service.metrics_count(run.run_id) == 9


def test_federated_run_stores_evaluations_clients_and_client_metrics(service, client):
    with client.start_run(training_mode="federated", config={"num_rounds": 2}) as run:
        run.register_clients(["client-a", {"client_identifier": "client-b", "client_config": {}}])
        for round_number in range(3):
            run.log_server_evaluation(
                round_number=round_number,
                loss=0.7 - 0.1 * round_number,
                accuracy=0.5 + 0.1 * round_number,
                true_positives=40.0,
                true_negatives=30,
                false_positives=20,
                false_negatives=10,
                server_custom=1.5,
            )
            if round_number:
                run.log_metrics({"train_loss": 0.3}, step=round_number)
                run.log_metrics(
                    {"train_loss": 0.25}, step=0, client_identifier="client-a", round_number=1
                )
    evaluation = service.get(f"/api/runs/{run.run_id}/server-evaluation")
    rounds = evaluation["evaluations"]
    assert [entry["round"] for entry in rounds] == [0, 1, 2]
    assert rounds[2]["confusion_matrix"]["true_positives"] == 40
    assert rounds[2]["num_samples"] == 100
    assert rounds[2]["additional_metrics"] == {"server_custom": 1.5}
    assert service.resend(run.run_id, "clients", [{"client_identifier": "client-a"}]) == {
        "inserted": 0,
        "updated": 0,
        "unchanged": 1,
    }
    local = [
        {
            "metric_name": "train_loss",
            "metric_value": 0.25,
            "step": 0,
            "client_identifier": "client-a",
            "round_number": 1,
        }
    ]
    assert service.resend(run.run_id, "metrics", local)["unchanged"] == 1


def test_invalid_points_are_dropped_with_a_warning_and_valid_ones_arrive(
    service, spool_dir, caplog
):
    caplog.set_level(logging.WARNING, logger="runs_client")
    with RunsClient(service.url, token=WRITER_TOKEN, spool_dir=spool_dir) as client:
        with client.start_run() as run:
            run.log_metrics(
                {
                    "train_loss": 0.5,
                    "val_acc": 1.5,
                    "val_loss": math.nan,
                    "val_cm_tp": 3.5,
                    "": 1.0,
                    "learning_rate": "fast",
                    "val_f1": 0.75,
                },
                step=0,
            )
            run.log_metrics({"train_loss": 0.4}, step=-1)
    warnings = " ".join(record.getMessage() for record in caplog.records)
    for named in ("val_acc", "val_loss", "val_cm_tp", "learning_rate", "step"):
        assert named in warnings
    assert service.metrics_count(run.run_id) == 2
    valid = [
        {"metric_name": "train_loss", "metric_value": 0.5, "step": 0},
        {"metric_name": "val_f1", "metric_value": 0.75, "step": 0},
    ]
    assert service.resend(run.run_id, "metrics", valid)["unchanged"] == 2


def test_points_the_service_refuses_are_dropped_alone(service, spool_dir, caplog, monkeypatch):
    # Without the client's own checks, the service's 422 names the bad item: the client
    # drops that one with a warning and sends the rest of the batch again.
    monkeypatch.setattr(points_module, "name_category", lambda name: points_module.PLAIN)
    caplog.set_level(logging.WARNING, logger="runs_client")
    with RunsClient(service.url, token=WRITER_TOKEN, spool_dir=spool_dir) as client:
        with client.start_run() as run:
            for step in range(3):
                run.log_metrics({"train_loss": 0.1 * step, "val_acc": 0.5 + step}, step=step)
    assert service.metrics_count(run.run_id) == 4
    warnings = " ".join(record.getMessage() for record in caplog.records)
    assert "val_acc=1.5 (step 1)" in warnings and "val_acc=2.5 (step 2)" in warnings


def test_strict_mode_raises_on_invalid_points(service, client):
    with client.start_run() as run:
        with pytest.raises(RunsClientError, match="val_acc"):
            run.log_metrics({"val_acc": 2.0}, step=0)
        with pytest.raises(RunsClientError, match="federated"):
            run.log_server_evaluation(round_number=1, accuracy=0.5)


def test_strict_mode_raises_at_flush_for_data_the_service_refused(service, client, monkeypatch):
    monkeypatch.setattr(points_module, "name_category", lambda name: points_module.PLAIN)
    run = client.start_run()
    run.log_metrics({"val_acc": 3.0, "train_loss": 1.0}, step=0)
    with pytest.raises(RunsClientError, match="val_acc"):
        client.flush(30)
    run.finish()
    assert service.metrics_count(run.run_id) == 1


def test_a_token_without_write_scope_keeps_the_data_in_the_spool(service, spool_dir):
    client = RunsClient(
        service.url, token="not-a-token", spool_dir=spool_dir, max_retries=0, backoff_base=0.05
    )
    run = client.start_run()
    run.log_metrics({"train_loss": 1.0}, step=0)
    assert client.flush(30)
    client.close()
    assert run.run_id is None
    with RunsClient(service.url, token=WRITER_TOKEN, spool_dir=spool_dir) as replaying:
        assert replaying.flush(30)
    record = service.run_by_external_id(run.external_id)
    assert service.metrics_count(record["id"]) == 1
