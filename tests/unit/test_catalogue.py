"""The catalogue of metric names: directions, rules, mappings and limits (no app)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runs_service import catalogue
from runs_service.catalogue import (
    CENTRALIZED_METRIC_NAMES,
    HISTORY_FIELDS,
    LOSS_SUFFIXES,
    RESULTS_FILE_FIELDS,
    SCORE_KEYS,
    SCORE_SUFFIXES,
    SERVER_SERIES_NAMES,
    VALIDATION_METRICS,
    additional_series_name,
    canonical_metric_name,
    dataset_type_for,
    direction,
    display_name,
    is_count_name,
    is_score_name,
    server_series,
)

# --- direction (SPEC §7) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("val_acc", "max"),
        ("val_accuracy", "max"),
        ("train_acc", "max"),
        ("train_f1", "max"),
        ("val_f1_score", "max"),
        ("val_precision", "max"),
        ("test_recall", "max"),
        ("val_auroc", "max"),
        ("val_auc", "max"),
        ("server_accuracy", "max"),
        ("server_f1", "max"),
        ("server_auroc", "max"),
        ("balanced_acc", "max"),
        ("Val_Accuracy", "max"),
        ("train_loss", "min"),
        ("val_loss", "min"),
        ("server_loss", "min"),
        ("reconstruction_error", "min"),
        ("val_mse", "min"),
        ("val_mae", "min"),
        ("val_rmse", "min"),
        ("VAL_LOSS", "min"),
        ("val_cm_tp", None),
        ("server_cm_fn", None),
        ("server_num_samples", None),
        ("learning_rate", None),
        ("epoch_seconds", None),
        ("loss_scale", None),
        ("accuracy_top5", None),
        ("", None),
    ],
)
def test_direction_of_a_name(name, expected):
    assert direction(name) == expected


any_name = st.text(max_size=40)


@given(any_name, st.sampled_from(SCORE_SUFFIXES))
def test_every_name_ending_in_a_score_is_maximised(stem, suffix):
    assert direction(stem + suffix) == "max"
    assert direction(catalogue.SERVER_PREFIX + stem + suffix) == "max"


@given(any_name, st.sampled_from(LOSS_SUFFIXES))
def test_every_name_ending_in_a_loss_or_error_is_minimised(stem, suffix):
    assert direction(stem + suffix) == "min"


@given(any_name)
def test_direction_is_total_and_agrees_with_the_score_rule(name):
    found = direction(name)
    assert found in ("max", "min", None)
    assert (found == "max") == is_score_name(name)
    lowered = name.lower()
    if found is None:
        assert not lowered.endswith(SCORE_SUFFIXES + LOSS_SUFFIXES)


@given(any_name, st.sampled_from(("_cm_tp", "_cm_tn", "_cm_fp", "_cm_fn", "num_samples", "rate")))
def test_counts_and_rates_have_no_direction(stem, suffix):
    assert direction(stem + suffix) is None


# --- score and count rules (SPEC §4.0) --------------------------------------------------


@pytest.mark.parametrize(
    ("name", "score", "count"),
    [
        ("val_acc", True, False),
        ("val_auc", True, False),
        ("server_f1", True, False),
        ("val_loss", False, False),
        ("val_cm_tp", False, True),
        ("server_cm_fn", False, True),
        ("test_CM_FP", False, True),
        ("learning_rate", False, False),
        ("num_samples", False, False),
    ],
)
def test_score_and_count_rules(name, score, count):
    assert is_score_name(name) is score
    assert is_count_name(name) is count


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("train_loss", "train"),
        ("val_acc", "validation"),
        ("test_f1", "test"),
        ("server_loss", "other"),
        ("learning_rate", "other"),
        ("Train_loss", "other"),
    ],
)
def test_dataset_type_follows_the_prefix(name, expected):
    assert dataset_type_for(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("val_accuracy", "val_acc"),
        ("val_auc", "val_auroc"),
        ("val_acc", "val_acc"),
        ("server_accuracy", "server_accuracy"),
    ],
)
def test_trainer_aliases_resolve_to_one_name(name, expected):
    assert canonical_metric_name(name) == expected


# --- display names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("val_acc", "Validation accuracy"),
        ("val_accuracy", "Validation accuracy"),
        ("train_loss", "Train loss"),
        ("test_f1", "Test F1"),
        ("val_auc", "Validation AUROC"),
        ("server_auroc", "Server AUROC"),
        ("server_cm_tp", "Server true positives"),
        ("val_cm_fn", "Validation false negatives"),
        ("server_num_samples", "Server samples"),
        ("learning_rate", "Learning rate"),
        ("loss", "Loss"),
        ("val_balanced_acc", "val_balanced_acc"),
        ("my_metric", "my_metric"),
    ],
)
def test_display_names(name, expected):
    assert display_name(name) == expected


# --- the fixed vocabulary -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "history_name", "server_field", "series_name", "final_key", "best_key", "best"),
    [
        ("loss", "val_loss", "loss", "server_loss", "loss", "best_val_loss", "min"),
        ("accuracy", "val_acc", "accuracy", "server_accuracy", "accuracy",
         "best_val_accuracy", "max"),
        ("precision", "val_precision", "precision", "server_precision", "precision",
         "best_val_precision", "max"),
        ("recall", "val_recall", "recall", "server_recall", "recall", "best_val_recall", "max"),
        ("f1", "val_f1", "f1_score", "server_f1", "f1_score", "best_val_f1", "max"),
        ("auroc", "val_auroc", "auroc", "server_auroc", "auc", "best_val_auroc", "max"),
    ],
)  # fmt: skip
def test_each_validation_metric_under_each_of_its_names(
    key, history_name, server_field, series_name, final_key, best_key, best
):
    (metric,) = [metric for metric in VALIDATION_METRICS if metric.key == key]
    assert (metric.history_name, metric.server_field, metric.series_name) == (
        history_name,
        server_field,
        series_name,
    )
    assert (metric.final_key, metric.best_key, metric.direction) == (final_key, best_key, best)


def test_the_scores_with_a_stored_best():
    assert SCORE_KEYS == ("accuracy", "precision", "recall", "f1", "auroc")
    assert catalogue.ACCURACY_METRIC.history_name == "val_acc"


def test_results_file_keys_map_onto_server_evaluation_columns():
    assert dict(RESULTS_FILE_FIELDS) == {
        "server_loss": "loss",
        "server_accuracy": "accuracy",
        "server_precision": "precision",
        "server_recall": "recall",
        "server_f1": "f1_score",
        "server_auroc": "auroc",
        "server_cm_tp": "true_positives",
        "server_cm_tn": "true_negatives",
        "server_cm_fp": "false_positives",
        "server_cm_fn": "false_negatives",
        "num_samples": "num_samples",
    }


def test_server_series_are_named_as_in_the_spec():
    assert SERVER_SERIES_NAMES == (
        "server_loss",
        "server_accuracy",
        "server_precision",
        "server_recall",
        "server_f1",
        "server_auroc",
        "server_cm_tp",
        "server_cm_tn",
        "server_cm_fp",
        "server_cm_fn",
        "server_num_samples",
    )


def test_a_centralized_history_reads_every_trainer_name_and_alias():
    assert set(CENTRALIZED_METRIC_NAMES) == {
        *HISTORY_FIELDS,
        "val_cm_tp",
        "val_cm_tn",
        "val_cm_fp",
        "val_cm_fn",
        "val_accuracy",
        "val_auc",
    }
    assert {metric.history_name for metric in VALIDATION_METRICS} <= set(HISTORY_FIELDS)


# --- server evaluations as series ----------------------------------------------------------

FULL_EVALUATION = {
    "round_number": 3,
    "loss": 0.5,
    "accuracy": 0.8,
    "precision": 0.75,
    "recall": 0.9,
    "f1_score": 0.82,
    "auroc": 0.88,
    "true_positives": 351,
    "true_negatives": 120,
    "false_positives": 114,
    "false_negatives": 39,
    "num_samples": 624,
    "evaluation_time": None,
    "additional_metrics": None,
}


@pytest.mark.parametrize(
    ("key", "expected"),
    [("kappa", "server_kappa"), ("server_kappa", "server_kappa"), ("Server_x", "server_Server_x")],
)
def test_additional_series_names(key, expected):
    assert additional_series_name(key) == expected


def test_every_column_of_an_evaluation_is_a_series():
    assert server_series(FULL_EVALUATION) == {
        "server_loss": 0.5,
        "server_accuracy": 0.8,
        "server_precision": 0.75,
        "server_recall": 0.9,
        "server_f1": 0.82,
        "server_auroc": 0.88,
        "server_cm_tp": 351.0,
        "server_cm_tn": 120.0,
        "server_cm_fp": 114.0,
        "server_cm_fn": 39.0,
        "server_num_samples": 624.0,
    }


@pytest.mark.parametrize(
    ("evaluation", "expected"),
    [
        ({"round_number": 0}, {}),
        ({"round_number": 0, "loss": None, "accuracy": 0.0}, {"server_accuracy": 0.0}),
        ({"round_number": 1, "additional_metrics": {}}, {}),
        ({"round_number": 1, "additional_metrics": {"kappa": 0.4}}, {"server_kappa": 0.4}),
        ({"round_number": 1, "additional_metrics": {"server_kappa": 2}}, {"server_kappa": 2.0}),
        ({"round_number": 1, "additional_metrics": {"per_class": [0.1, 0.2]}}, {}),
        ({"round_number": 1, "additional_metrics": {"flag": True}}, {}),
        ({"round_number": 1, "additional_metrics": {"x": math.nan}}, {}),
        ({"round_number": 1, "additional_metrics": {"x": 10**400}}, {}),
        # A column's series belongs to the column, even where the column is null.
        ({"round_number": 1, "loss": 0.3, "additional_metrics": {"loss": 9.0}},
         {"server_loss": 0.3}),
        ({"round_number": 1, "additional_metrics": {"server_loss": 9.0}}, {}),
        ({"round_number": 1, "additional_metrics": {"num_samples": 9}}, {}),
    ],
)  # fmt: skip
def test_server_series_of_an_evaluation(evaluation, expected):
    assert server_series(evaluation) == expected


additional_values = st.one_of(
    st.integers(-(2**53), 2**53),
    st.floats(),
    st.booleans(),
    st.lists(st.floats(allow_nan=False), max_size=3),
    st.none(),
)


@given(
    st.fixed_dictionaries(
        {"round_number": st.integers(0, 10**6)},
        optional={field: st.none() | st.floats(0, 1) for field in catalogue.SERVER_NUMBER_FIELDS}
        | {
            "additional_metrics": st.dictionaries(
                st.text(min_size=1, max_size=catalogue.MAX_METRIC_NAME_LENGTH),
                additional_values,
                max_size=5,
            )
        },
    )
)
def test_server_series_are_finite_floats_under_server_names(evaluation):
    series = server_series(evaluation)
    for name, value in series.items():
        assert name.startswith(catalogue.SERVER_PREFIX)
        assert len(name) <= catalogue.MAX_SERIES_NAME_LENGTH
        assert type(value) is float and math.isfinite(value)
    for field, name in catalogue.SERVER_FIELD_SERIES.items():
        assert (name in series) == (evaluation.get(field) is not None)


# --- limits (SPEC §4.0) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_RUN_ID", 2**31 - 1),
        ("MAX_OFFSET", 10**9),
        ("MAX_STEP", 10**6),
        ("MAX_ROUND", 10**6),
        ("MAX_COUNT", 2**31 - 1),
        ("MAX_METRICS_PER_BATCH", 10_000),
        ("MAX_EVALUATIONS_PER_BATCH", 1_000),
        ("MAX_CLIENTS_PER_BATCH", 1_000),
        ("MAX_LIST_LIMIT", 1000),
        ("MAX_METRIC_NAME_LENGTH", 128),
        ("MAX_SERIES_NAME_LENGTH", 135),
    ],
)
def test_limits(name, value):
    assert getattr(catalogue, name) == value


def test_the_vocabulary_is_frozen():
    with pytest.raises(TypeError):
        catalogue.RESULTS_FILE_FIELDS["x"] = "y"  # type: ignore[index]
    with pytest.raises(AttributeError):
        VALIDATION_METRICS[0].key = "x"  # type: ignore[misc]
