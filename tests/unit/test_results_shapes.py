"""Pure shaping of per-run reads (services.results), with no app and no database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runs_service.models import Run, RunStatus, TrainingMode
from runs_service.schemas.results import HistoryEntrySchema
from runs_service.services.definitions import summarize_centralized, summarize_federated
from runs_service.services.results import RunResults, experiment_results, federated_round_entry


@pytest.mark.parametrize(
    ("evaluation", "metrics"),
    [
        (
            {"round_number": 0, "loss": 0.7, "accuracy": 0.5, "precision": None},
            {"loss": 0.7, "accuracy": 0.5},
        ),
        (
            {"round_number": 3, "f1_score": 0.0, "auroc": 0.9, "recall": 0.8},
            {"f1": 0.0, "auroc": 0.9, "recall": 0.8},
        ),
        ({"round_number": 1}, {}),
    ],
)
def test_federated_round_entry_leaves_out_missing_metrics(evaluation, metrics):
    entry = federated_round_entry(evaluation)
    assert entry == {"round": evaluation["round_number"], "metrics": metrics}


def _run(training_mode: TrainingMode, description: str | None = None) -> Run:
    return Run(
        id=12,
        training_mode=training_mode,
        status=RunStatus.COMPLETED,
        start_time=datetime(2025, 1, 1, tzinfo=UTC),
        end_time=datetime(2025, 1, 1, 1, 0, 30, tzinfo=UTC),
        run_description=description,
    )


def test_experiment_results_repeats_finals_in_metadata():
    points = [("val_acc", 1, 0.8), ("val_acc", 0, 0.9), ("val_loss", 1, 0.2), ("val_auc", 1, 0.7)]
    view = summarize_centralized(points)
    results = experiment_results(RunResults(_run(TrainingMode.CENTRALIZED, "baseline"), view))
    assert results["experiment_id"] == "run_12"
    assert results["final_metrics"]["accuracy"] == 0.8
    metadata = results["metadata"]
    assert metadata["experiment_name"] == "baseline"
    assert metadata["duration_minutes"] == 60.5
    assert (metadata["final_accuracy"], metadata["final_auc"], metadata["final_loss"]) == (
        0.8,
        0.7,
        0.2,
    )
    assert (metadata["best_val_accuracy"], metadata["best_epoch"]) == (0.9, 1)
    assert metadata["initial_evaluation"] is None
    assert results["total_epochs"] == metadata["total_epochs"] == 2


def test_experiment_results_of_a_federated_run_shapes_round_zero():
    evaluations = [
        {"round_number": 0, "loss": 0.7, "accuracy": 0.5, "additional_metrics": {"k": 1}},
        {"round_number": 1, "loss": 0.5, "accuracy": 0.6},
    ]
    view = summarize_federated(evaluations)
    results = experiment_results(RunResults(_run(TrainingMode.FEDERATED), view))
    assert results["metadata"]["experiment_name"] == "run_12"
    initial = results["metadata"]["initial_evaluation"]
    assert initial["round"] == 0
    assert initial["additional_metrics"] == {"k": 1}
    assert [entry["epoch"] for entry in results["training_history"]] == [1]


@pytest.mark.parametrize(
    "view",
    [
        summarize_centralized([("val_acc", 0, 0.5), ("train_loss", 1, 0.3), ("val_cm_tp", 1, 3)]),
        summarize_federated(
            [{"round_number": 0, "accuracy": 0.5}, {"round_number": 1, "loss": 0.2}]
        ),
    ],
    ids=["centralized", "federated"],
)
def test_history_entries_have_exactly_the_documented_keys(view):
    """training_history is dumped as shaped, so its entries must match the schema."""
    documented = set(HistoryEntrySchema().fields)
    assert view.history
    for entry in view.history:
        assert set(entry) == documented
        assert all(value is None or isinstance(value, int | float) for value in entry.values())
