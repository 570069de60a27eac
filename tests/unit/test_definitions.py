"""Table-driven tests of the SPEC §3 definitions, with no app and no database."""

import math
import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from runs_service.catalogue import (
    CENTRALIZED_METRIC_NAMES,
    canonical_metric_name,
    dataset_type_for,
    is_count_name,
    is_score_name,
)
from runs_service.catalogue import HISTORY_FIELDS as CENTRALIZED_HISTORY_FIELDS
from runs_service.services.definitions import (
    CSV_COLUMNS,
    HistoryEntry,
    best,
    best_value_and_round,
    client_count,
    confusion_statistics,
    confusion_statistics_or_none,
    csv_row,
    csv_safe_cell,
    difference,
    duration_minutes,
    round4,
    server_evaluation_entry,
    server_evaluation_summary,
    success_rate,
    summarize_centralized,
    summarize_federated,
    wilson_interval,
)

NO_BEST = {"value": None, "round": None}


def average(values: Iterable[float | None]) -> float | None:
    """The mean of the present values to 4 places, or None when there are none."""
    present = [value for value in values if value is not None]
    if not present:
        return None
    return round4(math.fsum(present) / len(present))


def build_centralized_history(
    points: Iterable[tuple[str, int, float | None]],
) -> list[HistoryEntry]:
    """One history entry per epoch, ascending, from (name, step, value) points."""
    return summarize_centralized(points).history


def evaluation(round_number, **fields):
    """Return a server-evaluation mapping with every field present and None by default."""
    row = dict.fromkeys(
        (
            "loss",
            "accuracy",
            "precision",
            "recall",
            "f1_score",
            "auroc",
            "true_positives",
            "true_negatives",
            "false_positives",
            "false_negatives",
            "num_samples",
            "evaluation_time",
        )
    )
    row.update(round_number=round_number, additional_metrics={})
    row.update(fields)
    return row


# --- names -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("val_accuracy", "val_acc"),
        ("val_auc", "val_auroc"),
        ("val_acc", "val_acc"),
        ("train_loss", "train_loss"),
        ("custom_metric", "custom_metric"),
    ],
)
def test_canonical_metric_name_resolves_aliases(name, expected):
    assert canonical_metric_name(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("val_acc", True),
        ("val_accuracy", True),
        ("test_precision", True),
        ("val_recall", True),
        ("train_f1", True),
        ("f1_score", True),
        ("val_auroc", True),
        ("val_auc", True),
        ("train_loss", False),
        ("val_loss", False),
        ("learning_rate", False),
        ("val_cm_tp", False),
    ],
)
def test_is_score_name(name, expected):
    assert is_score_name(name) is expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("val_cm_tp", True),
        ("val_cm_tn", True),
        ("test_cm_fp", True),
        ("train_cm_fn", True),
        ("val_cm_total", False),
        ("val_acc", False),
    ],
)
def test_is_count_name(name, expected):
    assert is_count_name(name) is expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("train_loss", "train"),
        ("val_acc", "validation"),
        ("test_auroc", "test"),
        ("learning_rate", "other"),
        ("validation_loss", "other"),
    ],
)
def test_dataset_type_for_derives_from_prefix(name, expected):
    assert dataset_type_for(name) == expected


# --- rounding, averages --------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), (0.0, 0.0), (0.123456, 0.1235), (1, 1.0), (-2.00004, -2.0)],
)
def test_round4(value, expected):
    assert round4(value) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [([], None), ([None, None], None), ([0.0, None, 1.0], 0.5), ([0.1, 0.2, 0.2], 0.1667)],
)
def test_average_skips_missing_but_counts_zero(values, expected):
    assert average(values) == expected


@pytest.mark.parametrize(
    ("minuend", "subtrahend", "expected"),
    [(0.9, 0.85, 0.05), (0.0, 0.0, 0.0), (None, 0.5, None), (0.5, None, None)],
)
def test_difference(minuend, subtrahend, expected):
    assert difference(minuend, subtrahend) == expected


# --- Wilson interval, confusion statistics ---------------------------------------


@pytest.mark.parametrize(
    ("successes", "total", "expected"),
    [
        (8, 10, [0.4902, 0.9433]),
        (40, 50, [0.6696, 0.8876]),
        (5, 10, [0.2366, 0.7634]),
        (0, 10, [0.0, 0.2775]),
        (10, 10, [0.7225, 1.0]),
        (1, 1, [0.2065, 1.0]),
        (0, 0, None),
    ],
)
def test_wilson_interval_known_values(successes, total, expected):
    assert wilson_interval(successes, total) == expected


@pytest.mark.parametrize(("successes", "total"), [(11, 10), (-1, 10), (0, -1)])
def test_wilson_interval_rejects_impossible_proportions(successes, total):
    with pytest.raises(ValueError):
        wilson_interval(successes, total)


def test_confusion_statistics_hand_computed_example():
    assert confusion_statistics(tp=40, tn=45, fp=5, fn=10) == {
        "true_positives": 40,
        "true_negatives": 45,
        "false_positives": 5,
        "false_negatives": 10,
        "total": 100,
        "sensitivity": 0.8,
        "specificity": 0.9,
        "precision_cm": 0.8889,
        "accuracy_cm": 0.85,
        "f1_cm": 0.8421,
        "sensitivity_ci95": [0.6696, 0.8876],
        "specificity_ci95": [0.7864, 0.9565],
    }


def test_confusion_statistics_answers_are_independent_of_each_other():
    # The derived numbers are remembered per count: a caller changing its answer must not
    # change the next caller's.
    first = confusion_statistics(tp=40, tn=45, fp=5, fn=10)
    first["sensitivity_ci95"].append(1.0)
    first["specificity_ci95"][0] = 0.0
    first["sensitivity"] = -1.0
    again = confusion_statistics(tp=40, tn=45, fp=5, fn=10)
    assert again["sensitivity"] == 0.8
    assert again["sensitivity_ci95"] == [0.6696, 0.8876]
    assert again["specificity_ci95"] == [0.7864, 0.9565]
    # Counts stored as floats (metric values) answer as the integers they are.
    assert confusion_statistics(tp=40.0, tn=45.0, fp=5.0, fn=10.0) == again


def test_confusion_statistics_f1_uses_unrounded_precision_and_sensitivity():
    # p = 1.0, s = 1/6: 2ps/(p+s) = 2/7 = 0.285714..., while rounded p and s would give 0.2858.
    stats = confusion_statistics(tp=1, tn=4, fp=0, fn=5)
    assert stats["sensitivity"] == 0.1667
    assert stats["precision_cm"] == 1.0
    assert stats["f1_cm"] == 0.2857
    assert stats["accuracy_cm"] == 0.5
    assert stats["sensitivity_ci95"] == [0.0301, 0.5635]
    assert stats["specificity_ci95"] == [0.5101, 1.0]


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        (
            (0, 0, 0, 0),
            {
                "total": 0,
                "sensitivity": 0.0,
                "specificity": 0.0,
                "precision_cm": 0.0,
                "accuracy_cm": 0.0,
                "f1_cm": 0.0,
                "sensitivity_ci95": None,
                "specificity_ci95": None,
            },
        ),
        (
            # No positives at all: sensitivity, precision and f1 have zero denominators.
            (0, 7, 3, 0),
            {
                "total": 10,
                "sensitivity": 0.0,
                "specificity": 0.7,
                "precision_cm": 0.0,
                "accuracy_cm": 0.7,
                "f1_cm": 0.0,
                "sensitivity_ci95": None,
                "specificity_ci95": wilson_interval(7, 10),
            },
        ),
        (
            # The legacy round 0: everything predicted positive.
            (475, 0, 475, 0),
            {
                "total": 950,
                "sensitivity": 1.0,
                "specificity": 0.0,
                "precision_cm": 0.5,
                "accuracy_cm": 0.5,
                "f1_cm": 0.6667,
                "sensitivity_ci95": wilson_interval(475, 475),
                "specificity_ci95": wilson_interval(0, 475),
            },
        ),
    ],
)
def test_confusion_statistics_zero_denominators_give_zero(counts, expected):
    stats = confusion_statistics(*counts)
    assert {key: stats[key] for key in expected} == expected


@pytest.mark.parametrize(
    "counts", [(-1, 0, 0, 0), (0, -1, 0, 0), (0, 0, -1, 0), (0, 0, 0, -1), (1.5, 0, 0, 0)]
)
def test_confusion_statistics_rejects_invalid_counts(counts):
    with pytest.raises(ValueError):
        confusion_statistics(*counts)


def test_confusion_statistics_accepts_integral_floats_as_ints():
    stats = confusion_statistics(475.0, 0.0, 475.0, 0.0)
    assert stats["true_positives"] == 475
    assert isinstance(stats["true_positives"], int)


@pytest.mark.parametrize(
    "counts", [(None, 1, 1, 1), (1, None, 1, 1), (1, 1, None, 1), (1, 1, 1, None)]
)
def test_confusion_statistics_or_none_needs_all_four_counts(counts):
    assert confusion_statistics_or_none(*counts) is None


def test_confusion_statistics_or_none_with_all_counts():
    assert confusion_statistics_or_none(1, 2, 3, 4) == confusion_statistics(1, 2, 3, 4)


# --- duration, success rate -------------------------------------------------------

START = datetime(2025, 11, 4, 12, 0, 0)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (START, START + timedelta(minutes=90), 90.0),
        (START, START + timedelta(seconds=100), 1.67),
        (START, START + timedelta(seconds=1), 0.02),
        (START, START, 0.0),
        # Naive is UTC, so it compares correctly with an aware value.
        (START, datetime(2025, 11, 4, 12, 30, tzinfo=UTC), 30.0),
        (
            datetime(2025, 11, 4, 12, 0, tzinfo=UTC),
            datetime(2025, 11, 4, 14, 0, tzinfo=timezone(timedelta(hours=2))),
            0.0,
        ),
        (None, START, None),
        (START, None, None),
        (None, None, None),
    ],
)
def test_duration_minutes(start, end, expected):
    assert duration_minutes(start, end) == expected


@pytest.mark.parametrize(
    ("completed", "failed", "expected"),
    [(0, 0, None), (3, 0, 1.0), (0, 2, 0.0), (2, 1, 0.6667), (1, 3, 0.25)],
)
def test_success_rate(completed, failed, expected):
    assert success_rate(completed, failed) == expected


@pytest.mark.parametrize(
    ("registered", "config", "expected"),
    [
        (3, {"num_clients": 5}, 3),
        (0, {"num_clients": 5}, 5),
        (0, {"num_clients": 0}, 0),
        (0, None, 0),
        (0, {}, 0),
        (0, {"num_clients": "5"}, 0),
        (0, {"num_clients": True}, 0),
        (0, {"num_clients": -2}, 0),
        (0, {"num_clients": 2.5}, 0),
    ],
)
def test_client_count_prefers_registered_clients(registered, config, expected):
    assert client_count(registered, config) == expected


# --- best ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "higher_is_better", "expected"),
    [
        ([], True, None),
        ([(1, None), (2, None)], True, None),
        ([(1, 0.5), (2, 0.9), (3, 0.7)], True, (0.9, 2)),
        ([(1, 0.5), (2, 0.3), (3, 0.7)], False, (0.3, 2)),
        # Ties go to the earliest epoch whatever the input order.
        ([(3, 0.9), (1, 0.9), (2, 0.5)], True, (0.9, 1)),
        ([(5, 0.2), (4, 0.2), (6, 0.4)], False, (0.2, 4)),
        # A real 0.0 is a value: it can be the best score and is the lowest loss.
        ([(1, None), (2, 0.0), (3, None)], True, (0.0, 2)),
        ([(1, 0.4), (2, 0.0), (3, None)], False, (0.0, 2)),
        ([(1, None), (2, 0.6)], False, (0.6, 2)),
        ([(1, float("nan")), (2, 0.6)], True, (0.6, 2)),
    ],
)
def test_best(values, higher_is_better, expected):
    assert best(values, higher_is_better) == expected
    assert best(list(reversed(values)), higher_is_better) == expected


@pytest.mark.parametrize(
    ("values", "higher_is_better", "expected"),
    [
        ([], True, NO_BEST),
        ([(1, None)], False, NO_BEST),
        ([(2, 0.8), (1, 0.8)], True, {"value": 0.8, "round": 1}),
    ],
)
def test_best_value_and_round(values, higher_is_better, expected):
    assert best_value_and_round(values, higher_is_better) == expected


# --- centralized --------------------------------------------------------------------

EPOCHS = {
    0: {"train_loss": 0.7, "val_loss": 0.6, "val_acc": 0.70, "val_auroc": 0.75},
    1: {"train_loss": 0.5, "val_loss": 0.4, "val_acc": 0.90, "val_auroc": 0.95},
    2: {"train_loss": 0.3, "val_loss": 0.45, "val_acc": 0.90, "val_auroc": 0.93},
    3: {"train_loss": 0.2, "val_loss": 0.5, "val_acc": 0.85, "val_auroc": 0.91},
}


def centralized_points(epochs=EPOCHS):
    return [(name, step, value) for step, row in epochs.items() for name, value in row.items()]


def test_centralized_history_is_one_indexed_and_ascending_from_any_order():
    points = centralized_points()
    random.Random(7).shuffle(points)
    history = build_centralized_history(points)
    assert [entry["epoch"] for entry in history] == [1, 2, 3, 4]
    assert list(history[0]) == ["epoch", *CENTRALIZED_HISTORY_FIELDS]
    assert history[1]["val_acc"] == 0.90
    assert history[1]["train_acc"] is None


def test_centralized_final_metrics_come_from_the_highest_epoch_only():
    points = centralized_points()
    random.Random(3).shuffle(points)
    view = summarize_centralized(points)
    assert view.final_metrics == {
        "accuracy": 0.85,
        "precision": None,
        "recall": None,
        "f1_score": None,
        "auc": 0.91,
        "loss": 0.5,
    }
    assert view.total_epochs == 4


def test_centralized_bests_take_earliest_tie_and_min_loss():
    view = summarize_centralized(reversed(centralized_points()))
    assert view.bests == {
        "best_epoch": 2,
        "best_val_accuracy": 0.90,
        "best_val_precision": None,
        "best_val_recall": None,
        "best_val_loss": 0.4,
        "best_val_f1": None,
        "best_val_auroc": 0.95,
    }


def test_centralized_keeps_real_zero_and_missing_as_none():
    points = [
        ("val_loss", 0, 0.3),
        ("val_acc", 0, None),
        ("val_loss", 1, 0.0),
        ("val_acc", 1, 0.0),
        ("val_recall", 2, 0.5),
    ]
    view = summarize_centralized(points)
    assert [entry["val_loss"] for entry in view.history] == [0.3, 0.0, None]
    assert [entry["val_acc"] for entry in view.history] == [None, 0.0, None]
    assert view.bests["best_val_loss"] == 0.0
    assert view.bests["best_val_accuracy"] == 0.0
    assert view.bests["best_epoch"] == 2
    # The final epoch lacks a loss: final metrics never fall back to an earlier epoch.
    assert view.final_metrics["loss"] is None
    assert view.final_metrics["recall"] == 0.5


@pytest.mark.parametrize(
    "points",
    [
        [("val_accuracy", 0, 0.8), ("val_auc", 0, 0.9)],
        [("val_auc", 0, 0.9), ("val_accuracy", 0, 0.8)],
    ],
)
def test_centralized_aliases_are_canonicalised(points):
    (entry,) = build_centralized_history(points)
    assert entry["val_acc"] == 0.8
    assert entry["val_auroc"] == 0.9


@pytest.mark.parametrize(
    "points",
    [
        [("val_acc", 0, 0.8), ("val_accuracy", 0, 0.1)],
        [("val_accuracy", 0, 0.1), ("val_acc", 0, 0.8)],
    ],
)
def test_centralized_canonical_name_wins_over_alias_in_any_order(points):
    (entry,) = build_centralized_history(points)
    assert entry["val_acc"] == 0.8


def test_centralized_steps_without_history_metrics_are_not_epochs():
    points = [("val_acc", 0, 0.6), ("learning_rate", 1, 0.001), ("custom", 2, 3.0)]
    view = summarize_centralized(points)
    assert [entry["epoch"] for entry in view.history] == [1]
    assert view.final_metrics["accuracy"] == 0.6


def test_centralized_final_confusion_matrix_is_the_final_epochs():
    epochs = {
        0: {"val_acc": 0.5, "val_cm_tp": 1.0, "val_cm_tn": 1.0, "val_cm_fp": 1.0, "val_cm_fn": 1.0},
        1: {"val_acc": 0.85, "val_cm_tp": 40.0, "val_cm_tn": 45.0, "val_cm_fp": 5.0},
    }
    points = centralized_points(epochs)
    # The final epoch lacks val_cm_fn: no matrix, never the earlier epoch's.
    assert summarize_centralized(points).final_confusion_matrix is None
    points.append(("val_cm_fn", 1, 10.0))
    random.Random(1).shuffle(points)
    assert summarize_centralized(points).final_confusion_matrix == confusion_statistics(
        40, 45, 5, 10
    )


def test_centralized_summary_reads_only_centralized_metric_names():
    points = [
        ("val_acc", 0, 0.5),
        ("val_accuracy", 1, 0.6),
        ("val_auc", 1, 0.7),
        ("train_loss", 1, 0.4),
        *((name, 1, 3.0) for name in ("val_cm_tp", "val_cm_tn", "val_cm_fp", "val_cm_fn")),
        ("test_acc", 0, 0.9),
        ("learning_rate", 1, 0.001),
        ("custom_metric", 2, 1.0),
    ]
    # The loader filters by these names in SQL; the summary must not change.
    kept = [point for point in points if point[0] in CENTRALIZED_METRIC_NAMES]
    assert len(kept) == len(points) - 3
    assert summarize_centralized(kept) == summarize_centralized(points)


def test_centralized_without_points_is_empty():
    view = summarize_centralized([])
    assert view.history == []
    assert view.total_epochs == 0
    assert set(view.final_metrics.values()) == {None}
    assert set(view.bests.values()) == {None}
    assert view.final_confusion_matrix is None


# --- federated ----------------------------------------------------------------------

ROUNDS = [
    evaluation(2, loss=0.4, accuracy=0.8, recall=0.7, f1_score=0.75, auroc=0.85),
    evaluation(0, loss=0.1, accuracy=0.99, precision=0.99, recall=0.99, auroc=0.99),
    evaluation(3, loss=0.45, accuracy=0.78, recall=0.9, f1_score=0.75, auroc=0.8),
    evaluation(
        1,
        loss=0.6,
        accuracy=0.8,
        precision=0.0,
        recall=0.5,
        true_positives=3,
        true_negatives=4,
        false_positives=1,
        false_negatives=2,
    ),
]


def test_federated_history_excludes_round_zero_and_uses_round_as_epoch():
    view = summarize_federated(ROUNDS)
    assert [entry["epoch"] for entry in view.history] == [1, 2, 3]
    assert list(view.history[0]) == ["epoch", *CENTRALIZED_HISTORY_FIELDS]
    assert view.history[0] == {
        "epoch": 1,
        "train_loss": None,
        "val_loss": 0.6,
        "train_acc": None,
        "val_acc": 0.8,
        "train_f1": None,
        "val_precision": 0.0,
        "val_recall": 0.5,
        "val_f1": None,
        "val_auroc": None,
    }
    assert view.num_rounds == 3
    assert view.total_epochs == 3
    assert view.latest_round == 3
    assert view.initial["round_number"] == 0


def test_federated_final_and_bests_over_training_rounds_only():
    view = summarize_federated(ROUNDS)
    assert view.final_metrics == {
        "accuracy": 0.78,
        "precision": None,
        "recall": 0.9,
        "f1_score": 0.75,
        "auc": 0.8,
        "loss": 0.45,
    }
    # Round 0 has better values everywhere, yet never counts.
    assert view.bests == {
        "best_epoch": 1,
        "best_val_accuracy": 0.8,
        "best_val_precision": 0.0,
        "best_val_recall": 0.9,
        "best_val_loss": 0.4,
        "best_val_f1": 0.75,
        "best_val_auroc": 0.85,
    }
    # Round 3, the final one, has no counts.
    assert view.final_confusion_matrix is None


def test_federated_final_confusion_matrix_from_latest_round():
    view = summarize_federated(ROUNDS[1:2] + ROUNDS[3:])
    assert view.final_confusion_matrix == confusion_statistics(3, 4, 1, 2)


def test_federated_with_only_round_zero_has_null_bests():
    view = summarize_federated([ROUNDS[1]])
    assert view.history == []
    assert view.num_rounds == 0
    assert view.latest_round is None
    assert view.initial is ROUNDS[1]
    assert set(view.final_metrics.values()) == {None}
    assert set(view.bests.values()) == {None}
    assert view.final_confusion_matrix is None


def test_federated_without_round_zero_has_no_initial_evaluation():
    assert summarize_federated(ROUNDS[:1]).initial is None


def test_server_evaluation_summary_is_empty_without_evaluations():
    assert server_evaluation_summary([]) == {}


def test_server_evaluation_summary_over_training_rounds():
    assert server_evaluation_summary(ROUNDS) == {
        "total_rounds": 3,
        "latest_round": 3,
        "latest_metrics": {
            "loss": 0.45,
            "accuracy": 0.78,
            "precision": None,
            "recall": 0.9,
            "f1_score": 0.75,
            "auroc": 0.8,
        },
        "best_accuracy": {"value": 0.8, "round": 1},
        "best_precision": {"value": 0.0, "round": 1},
        "best_recall": {"value": 0.9, "round": 3},
        "best_f1_score": {"value": 0.75, "round": 2},
        "best_auroc": {"value": 0.85, "round": 2},
        "lowest_loss": {"value": 0.4, "round": 2},
    }


def test_server_evaluation_summary_with_only_round_zero():
    assert server_evaluation_summary([ROUNDS[1]]) == {
        "total_rounds": 0,
        "latest_round": None,
        "latest_metrics": None,
        "best_accuracy": NO_BEST,
        "best_precision": NO_BEST,
        "best_recall": NO_BEST,
        "best_f1_score": NO_BEST,
        "best_auroc": NO_BEST,
        "lowest_loss": NO_BEST,
    }


@pytest.mark.parametrize(
    ("fields", "has_matrix", "has_additional"),
    [
        ({}, False, False),
        ({"true_positives": 1, "true_negatives": 1, "false_positives": 1}, False, False),
        (
            {"true_positives": 1, "true_negatives": 1, "false_positives": 1, "false_negatives": 0},
            True,
            False,
        ),
        ({"additional_metrics": {"server_ece": 0.03}}, False, True),
    ],
)
def test_server_evaluation_entry_optional_parts(fields, has_matrix, has_additional):
    entry = server_evaluation_entry(evaluation(4, accuracy=0.5, **fields))
    assert entry["round"] == 4
    assert entry["accuracy"] == 0.5
    assert ("confusion_matrix" in entry) is has_matrix
    assert ("additional_metrics" in entry) is has_additional
    if has_matrix:
        assert entry["confusion_matrix"] == confusion_statistics(1, 1, 1, 0)


# --- CSV -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        (0.0, "0.0"),
        (-0.5, "-0.5"),
        (3, "3"),
        ("plain", "plain"),
        ("=SUM(A1:A2)", "'=SUM(A1:A2)"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_csv_safe_cell(value, expected):
    assert csv_safe_cell(value) == expected


def test_csv_row_follows_csv_columns_with_empty_cells_for_null():
    entry = {"epoch": 2, "train_loss": 0.5, "val_acc": 0.0, "val_auroc": None}
    row = csv_row(entry)
    assert len(row) == len(CSV_COLUMNS)
    assert row == ["2", "0.5", "", "", "", "0.0", "", "", "", ""]
