"""Unit tests of the deterministic demo-data generator."""

import inspect
import json
import math
from collections import Counter, defaultdict
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import pytest

from runs_service.demo_data import (
    DEMO_NOW,
    TRAINER_METRIC_NAMES,
    VALIDATION_POSITIVES,
    VALIDATION_SIZE,
    DemoRun,
    generate_demo_runs,
    results_document,
)
from runs_service.services.results_file import parse_results_document

NOW = datetime(2025, 11, 4, 12, 0, 0, tzinfo=UTC)
SCORE_SUFFIXES = ("acc", "accuracy", "precision", "recall", "f1", "f1_score", "auroc", "auc")
EVALUATION_SCORES = ("accuracy", "precision", "recall", "f1_score", "auroc")
EVALUATION_COUNTS = ("true_positives", "true_negatives", "false_positives", "false_negatives")
CM_NAMES = ("val_cm_tp", "val_cm_tn", "val_cm_fp", "val_cm_fn")


@pytest.fixture(scope="module")
def runs() -> list[DemoRun]:
    return list(generate_demo_runs(seed=42, now=NOW))


def _of_mode(runs: list[DemoRun], mode: str) -> list[DemoRun]:
    return [demo for demo in runs if demo.run["training_mode"] == mode]


def _by_step(demo: DemoRun) -> dict[int, dict[str, float]]:
    steps: dict[int, dict[str, float]] = defaultdict(dict)
    for point in demo.metrics:
        steps[point["step"]][point["metric_name"]] = point["metric_value"]
    return dict(steps)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _decimals(value: float) -> int:
    text = repr(value)
    return len(text.split(".")[1]) if "." in text and "e" not in text else 99


def test_returns_a_generator_yielding_demo_runs():
    generator = generate_demo_runs(count=3, now=NOW)
    assert inspect.isgenerator(generator)
    assert isinstance(next(generator), DemoRun)


def test_same_seed_and_now_give_identical_runs(runs):
    assert list(generate_demo_runs(seed=42, now=NOW)) == runs


def test_other_seed_gives_other_runs(runs):
    assert list(generate_demo_runs(seed=7, now=NOW)) != runs


def test_naive_now_is_taken_as_utc(runs):
    assert list(generate_demo_runs(seed=42, now=NOW.replace(tzinfo=None))) == runs


def test_default_run_mix_has_both_modes_and_every_status(runs):
    assert len(runs) == 60
    modes = Counter(demo.run["training_mode"] for demo in runs)
    assert modes == {"centralized": 30, "federated": 30}
    statuses = Counter(demo.run["status"] for demo in runs)
    assert set(statuses) == {"completed", "failed", "in_progress"}
    assert statuses["completed"] > len(runs) / 2
    assert statuses["failed"] > statuses["in_progress"] >= 1


@pytest.mark.parametrize("count", [0, 1, 2, 3, 7])
def test_count_is_respected(count):
    assert len(list(generate_demo_runs(count=count, now=NOW))) == count


@pytest.mark.parametrize(
    "kwargs",
    [{"count": -1}, {"epochs": (0, 5)}, {"epochs": (8, 4)}, {"rounds": (0, 0)}],
)
def test_invalid_arguments_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        list(generate_demo_runs(now=NOW, **kwargs))


def test_bodies_are_strict_json(runs):
    for demo in runs:
        json.dumps(asdict(demo), allow_nan=False)


def test_runs_come_in_start_time_order(runs):
    starts = [datetime.fromisoformat(demo.run["start_time"]) for demo in runs]
    assert starts == sorted(starts)


def test_times_are_utc_within_the_last_90_days(runs):
    starts = []
    for demo in runs:
        assert demo.run["start_time"].endswith("+00:00")
        start = datetime.fromisoformat(demo.run["start_time"])
        assert NOW - timedelta(days=90) <= start < NOW
        starts.append(start)
    assert max(starts) - min(starts) > timedelta(days=30)


def test_in_progress_runs_have_no_end_time(runs):
    for demo in runs:
        assert (demo.run["end_time"] is None) == (demo.run["status"] == "in_progress")


def test_finished_runs_end_after_start_and_before_now(runs):
    for demo in runs:
        if demo.run["end_time"] is None:
            continue
        assert demo.run["end_time"].endswith("+00:00")
        start = datetime.fromisoformat(demo.run["start_time"])
        end = datetime.fromisoformat(demo.run["end_time"])
        assert start < end <= NOW
        assert end - start < timedelta(hours=12)


def test_descriptions_and_external_ids(runs):
    for demo in runs:
        description = demo.run["run_description"]
        assert 0 < len(description) <= 1024 and "lr=" in description
    external_ids = [demo.run["external_id"] for demo in runs if demo.run["external_id"]]
    assert 0 < len(external_ids) < len(runs)
    assert all(external_id.startswith("wandb-") for external_id in external_ids)
    assert len(set(external_ids)) == len(external_ids)


def test_all_values_are_finite_and_rounded(runs):
    for demo in runs:
        for point in demo.metrics:
            value = point["metric_value"]
            assert isinstance(value, int | float) and not isinstance(value, bool)
            assert math.isfinite(value)
            if point["metric_name"] != "learning_rate" and isinstance(value, float):
                assert _decimals(value) <= 6, point
        for evaluation in demo.evaluations:
            for key in ("loss", *EVALUATION_SCORES):
                assert math.isfinite(evaluation[key]) and _decimals(evaluation[key]) <= 6


def test_metric_scores_lie_in_unit_interval(runs):
    checked = 0
    for demo in runs:
        for point in demo.metrics:
            if point["metric_name"].endswith(SCORE_SUFFIXES):
                assert 0.0 <= point["metric_value"] <= 1.0, point
                checked += 1
    assert checked > 0


def test_centralized_epochs_within_range_and_consistent_with_status(runs):
    for demo in _of_mode(runs, "centralized"):
        configured = demo.run["config"]["epochs"]
        assert 10 <= configured <= 30
        steps = sorted(_by_step(demo))
        assert steps == list(range(len(steps)))
        if demo.run["status"] == "completed":
            assert len(steps) == configured
        else:
            assert 1 <= len(steps) < configured
        assert demo.evaluations == [] and demo.clients == []


def test_every_trainer_metric_is_logged_once_per_epoch(runs):
    for demo in _of_mode(runs, "centralized"):
        names_per_step = defaultdict(list)
        for point in demo.metrics:
            assert set(point) == {"metric_name", "metric_value", "step"}
            names_per_step[point["step"]].append(point["metric_name"])
        for names in names_per_step.values():
            assert sorted(names) == sorted(TRAINER_METRIC_NAMES)


def test_validation_confusion_matrix_matches_set_and_scores(runs):
    for demo in _of_mode(runs, "centralized"):
        for values in _by_step(demo).values():
            tp, tn, fp, fn = (values[name] for name in CM_NAMES)
            assert all(_is_count(count) for count in (tp, tn, fp, fn))
            assert tp + tn + fp + fn == VALIDATION_SIZE
            assert tp + fn == VALIDATION_POSITIVES
            assert values["val_acc"] == pytest.approx((tp + tn) / VALIDATION_SIZE, abs=1e-4)
            assert values["val_recall"] == pytest.approx(tp / (tp + fn), abs=1e-4)
            if tp + fp:
                assert values["val_precision"] == pytest.approx(tp / (tp + fp), abs=1e-4)


def test_centralized_learning_curves_improve(runs):
    completed = [d for d in _of_mode(runs, "centralized") if d.run["status"] == "completed"]
    assert completed
    for demo in completed:
        history = _by_step(demo)
        first, last = history[0], history[max(history)]
        assert last["train_loss"] < first["train_loss"]
        assert last["val_loss"] < first["val_loss"]
        assert last["train_acc"] > first["train_acc"]
        assert last["val_acc"] > first["val_acc"] + 0.05
        assert 0.75 < last["val_acc"] < 0.99


def test_learning_rate_starts_at_config_and_decays(runs):
    for demo in _of_mode(runs, "centralized"):
        history = _by_step(demo)
        rates = [history[step]["learning_rate"] for step in sorted(history)]
        assert rates[0] == demo.run["config"]["learning_rate"]
        assert all(rate > 0 for rate in rates)
        assert all(later <= earlier for earlier, later in zip(rates, rates[1:], strict=False))
        if len(rates) >= 10:
            assert rates[-1] < rates[0]


def test_federated_rounds_and_clients_within_range(runs):
    for demo in _of_mode(runs, "federated"):
        config = demo.run["config"]
        assert 5 <= config["num_rounds"] <= 20
        assert 2 <= config["num_clients"] <= 10
        assert "epochs" not in config
        identifiers = [client["client_identifier"] for client in demo.clients]
        assert identifiers == [f"client_{index}" for index in range(config["num_clients"])]
        sizes = [client["client_config"]["num_examples"] for client in demo.clients]
        assert all(_is_count(size) and size > 0 for size in sizes)


def test_federated_runs_evaluate_round_zero_and_every_finished_round(runs):
    for demo in _of_mode(runs, "federated"):
        rounds = [evaluation["round_number"] for evaluation in demo.evaluations]
        assert rounds == list(range(len(rounds)))
        trained = len(rounds) - 1
        if demo.run["status"] == "completed":
            assert trained == demo.run["config"]["num_rounds"]
        else:
            assert 1 <= trained < demo.run["config"]["num_rounds"]


def test_round_zero_is_near_chance(runs):
    for demo in _of_mode(runs, "federated"):
        initial = demo.evaluations[0]
        assert 0.4 <= initial["accuracy"] <= 0.6
        assert initial["loss"] >= 0.65
        final = demo.evaluations[-1]
        if demo.run["status"] == "completed":
            assert final["accuracy"] > initial["accuracy"] + 0.1


def test_server_evaluations_have_valid_scores_and_counts(runs):
    for demo in _of_mode(runs, "federated"):
        start = datetime.fromisoformat(demo.run["start_time"])
        end = datetime.fromisoformat(demo.run["end_time"] or NOW.isoformat())
        for evaluation in demo.evaluations:
            for key in EVALUATION_SCORES:
                assert 0.0 <= evaluation[key] <= 1.0, (key, evaluation)
            counts = [evaluation[key] for key in EVALUATION_COUNTS]
            assert all(_is_count(count) for count in counts)
            assert evaluation["num_samples"] == sum(counts) == VALIDATION_SIZE
            assert start <= datetime.fromisoformat(evaluation["evaluation_time"]) <= end


def test_federated_metrics_are_client_local_points_of_training_rounds(runs):
    for demo in _of_mode(runs, "federated"):
        identifiers = {client["client_identifier"] for client in demo.clients}
        trained = len(demo.evaluations) - 1
        assert len(demo.metrics) == 2 * trained * len(identifiers)
        for point in demo.metrics:
            assert point["step"] == 0
            assert point["client_identifier"] in identifiers
            assert 1 <= point["round_number"] <= trained
            assert point["metric_name"] in {"train_loss", "train_acc"}


def test_custom_epoch_and_round_ranges_are_respected():
    demos = list(generate_demo_runs(count=20, seed=1, now=NOW, epochs=(3, 3), rounds=(2, 4)))
    for demo in demos:
        if demo.run["training_mode"] == "centralized":
            assert demo.run["config"]["epochs"] == 3
            assert len(_by_step(demo)) <= 3
        else:
            assert 2 <= demo.run["config"]["num_rounds"] <= 4
            assert len(demo.evaluations) <= demo.run["config"]["num_rounds"] + 1


def test_default_now_is_a_fixed_date_so_demo_data_is_the_same_every_day():
    assert list(generate_demo_runs(count=10, seed=3)) == list(
        generate_demo_runs(count=10, seed=3, now=DEMO_NOW)
    )
    for demo in generate_demo_runs(count=10, seed=3):
        start = datetime.fromisoformat(demo.run["start_time"])
        assert DEMO_NOW - timedelta(days=90) <= start <= DEMO_NOW


def test_the_oldest_completed_federated_run_keeps_its_evaluations_in_a_results_file(runs):
    flagged = [demo for demo in runs if demo.evaluations_in_results_file]
    assert len(flagged) == 1
    oldest = next(
        demo
        for demo in runs
        if demo.run["training_mode"] == "federated" and demo.run["status"] == "completed"
    )
    assert flagged[0] is oldest
    assert oldest.evaluations


def test_results_document_is_what_the_backfill_parses_back(runs):
    demo = next(demo for demo in runs if demo.evaluations_in_results_file)
    document = results_document(demo.evaluations)
    rounds = document["evaluate_metrics_serverapp"]
    assert all(isinstance(text, str) and "'server_cm_tp': " in text for text in rounds.values())
    parsed = parse_results_document(json.loads(json.dumps(document)))
    expected = [
        {key: value for key, value in evaluation.items() if key != "evaluation_time"}
        for evaluation in demo.evaluations
    ]
    assert parsed == expected
