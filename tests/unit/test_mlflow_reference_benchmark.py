"""The MLflow reference sends MLflow the same workload and reports ours ÷ MLflow's right."""

from __future__ import annotations

from benchmarks.mlflow_reference import (
    EVALUATION_KEYS,
    MLFLOW_BATCH,
    Comparison,
    Figure,
    chunks,
    summary,
    table,
    to_mlflow,
)
from benchmarks.workload import big_run, generate_workload


def test_every_point_goes_to_mlflow_with_its_step_and_a_timestamp():
    centralized, federated = generate_workload(2)
    run = to_mlflow(centralized, 0, "7")
    assert run.create["experiment_id"] == "7"
    assert {"key": "training_mode", "value": "centralized"} in run.create["tags"]
    assert len(run.points) == len(centralized.metrics)
    assert run.points[0]["key"] == centralized.metrics[0]["metric_name"]
    assert all(isinstance(point["timestamp"], int) for point in run.points)

    fed = to_mlflow(federated, 1, "7")
    client_point = federated.metrics[0]
    assert fed.points[0]["key"] == f"{client_point['client_identifier']}/train_loss"
    assert fed.points[0]["step"] == client_point["round_number"]
    assert len(fed.setup["metrics"]) == len(federated.evaluations) * len(EVALUATION_KEYS)
    assert {p["key"] for p in fed.setup["params"]} == set(federated.run["config"])


def test_status_and_end_time_follow_the_run():
    for workload_run in generate_workload(40):
        run = to_mlflow(workload_run, 0, "1")
        if workload_run.run["status"] == "in_progress":
            assert run.update is None
        else:
            assert run.update is not None
            assert run.update["status"] in ("FINISHED", "FAILED")
            assert run.update["end_time"] > run.create["start_time"]


def test_the_big_run_needs_fourteen_batches_of_at_most_a_thousand():
    run = to_mlflow(big_run(), 0, "1")
    parts = chunks(run.points, MLFLOW_BATCH)
    assert len(parts) == 14
    assert all(len(part) <= MLFLOW_BATCH for part in parts)


def _run(run_id: str, status: str, mode: str, acc: float, minutes: int) -> dict:
    return {
        "info": {
            "run_id": run_id,
            "status": status,
            "start_time": "0",
            "end_time": str(minutes * 60_000),
        },
        "data": {
            "tags": [{"key": "training_mode", "value": mode}],
            "metrics": [{"key": "val_acc", "value": acc}],
        },
    }


def test_the_client_side_summary_averages_finished_runs_per_mode():
    runs = [
        _run("a", "FINISHED", "centralized", 0.8, 10),
        _run("b", "FINISHED", "centralized", 0.6, 20),
        _run("c", "FINISHED", "federated", 0.9, 30),
        _run("d", "FAILED", "federated", 0.1, 5),
        _run("e", "RUNNING", "federated", 0.2, 5),
    ]
    result = summary(runs)
    assert result["total_runs"] == 5
    assert result["status_counts"] == {"FINISHED": 3, "FAILED": 1, "RUNNING": 1}
    assert result["success_rate"] == 0.75
    centralized = result["modes"]["centralized"]
    assert centralized["count"] == 2
    assert abs(centralized["val_acc"] - 0.7) < 1e-9
    assert centralized["max_accuracy"] == 0.8
    assert centralized["duration"] == 15
    assert result["top_runs"][0] == (0.9, "c")


def test_advantage_is_the_speed_up_for_times_and_the_factor_for_rates():
    latency = Figure("a", "page", "ms", ours=5.0, theirs=50.0, asked_of_mlflow="")
    assert latency.ratio == 0.1 and latency.advantage == 10.0
    rate = Figure("b", "ingestion", "points/s", ours=40_000, theirs=8_000, asked_of_mlflow="")
    assert rate.ratio == 5.0 and rate.advantage == 5.0
    memory = Figure("c", "RSS", "MB", ours=250.0, theirs=2_500.0, asked_of_mlflow="")
    assert memory.advantage == 10.0
    missing = Figure("d", "csv", "ms", ours=30.0, theirs=None, asked_of_mlflow="no equivalent")
    assert missing.ratio is None and missing.advantage is None


def test_the_table_marks_each_case_against_the_ten_times_target():
    comparison = Comparison(
        database="sqlite",
        runs=2_000,
        figures=[
            Figure("a", "page", "ms", 5.0, 60.0, ""),
            Figure("b", "ingestion", "points/s", 40_000, 8_000, ""),
            Figure("c", "csv", "ms", 30.0, None, "no equivalent"),
            Figure("d", "database size", "MB", 50.0, 60.0, "", targeted=False),
        ],
    )
    lines = table([comparison]).splitlines()
    assert lines[2] == "| page (p50 ms) | sqlite N=2,000 | 5.0 | 60.0 | 0.083 | 12.0× ✓ |"
    assert lines[3] == (
        "| ingestion (points/s) | sqlite N=2,000 | 40,000 | 8,000 | 5.000 | 5.0× ✗ below |"
    )
    assert lines[4] == "| csv (p50 ms) | sqlite N=2,000 | 30.0 | no equivalent | — | — |"
    assert lines[5] == "| database size (MB) | sqlite N=2,000 | 50 | 60 | 0.833 | 1.2× |"


def test_slices_cover_every_item_once_in_order():
    from benchmarks.mlflow_reference import slices

    items = list(range(10))
    parts = slices(items, 4)
    assert len(parts) == 4
    assert [item for part in parts for item in part] == items
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
