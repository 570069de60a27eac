"""The vocabulary every layer shares: metric names, what they mean, and the limits.

The one place that knows metric names (SPEC §2, §4.0, §7): which are scores and
counts, which direction is better, how they are shown, and how a trainer's name, a
server-evaluation column, a results-file key and a `server_*` series name map onto
each other. Core layer: it imports nothing from the rest of the package, so schemas,
services, models and pages all take names and bounds from here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

Direction = Literal["max", "min"]

# --- Limits (SPEC §4.0) ---------------------------------------------------------------

MAX_RUN_ID = 2**31 - 1
MAX_OFFSET = 10**9
MAX_STEP = 10**6
MAX_ROUND = 10**6
MAX_COUNT = 2**31 - 1
# Largest magnitude of a server-side loss or a number kept in additional_metrics: 2^53,
# the largest integer every JSON reader (JavaScript dashboards included) keeps exact. It
# is a float too, so the bound reads the same for 9007199254740993 and 9.007199254740993e15.
MAX_ABS_NUMBER = 2**53
MAX_METRIC_NAME_LENGTH = 128
MAX_CLIENT_IDENTIFIER_LENGTH = 255

# Batch writes: a batch over its limit is refused whole (422).
MAX_METRICS_PER_BATCH = 10_000
MAX_EVALUATIONS_PER_BATCH = 1_000
MAX_CLIENTS_PER_BATCH = 1_000
MAX_ADDITIONAL_METRICS = 128
MAX_ADDITIONAL_LIST_LENGTH = 1_000

# Results files (the federated server's JSON document).
RESULTS_SERVER_SECTION = "evaluate_metrics_serverapp"
MAX_RESULTS_ROUNDS = 10_000
MAX_ROUND_TEXT_LENGTH = 64 * 1024
# As many as additional_metrics may hold, so every importable round passes the batch route.
MAX_KEYS_PER_ROUND = MAX_ADDITIONAL_METRICS
MAX_ROUND_LIST_LENGTH = MAX_ADDITIONAL_LIST_LENGTH

# GET /api/runs/list.
DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 1000
SORT_ORDERS = ("asc", "desc")
RUN_SORT_KEYS = ("start_time", "end_time", "id", "status", "training_mode", "duration")
# sort_by value -> the score whose stored best it sorts by.
BEST_SORT_KEYS: Mapping[str, str] = MappingProxyType(
    {"best_val_accuracy": "accuracy", "best_val_recall": "recall"}
)
# sort_by=metric sorts by one run-level series' stored stat (sort_metric, sort_stat).
METRIC_SORT_KEY = "metric"
LIST_SORT_KEYS = (*RUN_SORT_KEYS, *BEST_SORT_KEYS, METRIC_SORT_KEY)
METRIC_SORT_STATS = ("best", "last", "min", "max")
MAX_LIST_METRICS = 10
# GET /api/runs/{run_id}/metric-summaries.
MAX_SUMMARY_NAMES = 50

# Runs: their experiment and tags (SPEC §2), and the list's filters on them.
MAX_EXPERIMENT_LENGTH = 128
MAX_TAGS_PER_RUN = 32
MAX_TAG_LENGTH = 64
# A tag: letters, digits and - _ . : / = + (no spaces, no commas: commas separate tags in
# query strings), starting with a letter or a digit. Case matters.
TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/=+-]*$"
# GET /api/runs/list?q=: case-insensitive substring of run_description or external_id.
MAX_SEARCH_LENGTH = 100

# GET /api/runs/analytics/summary.
DEFAULT_TOP_N = 10
MAX_TOP_N = 100
MAX_DAYS = 3650

# GET /api/runs/{run_id}/metric-history and /api/runs/compare.
DEFAULT_MAX_POINTS = 1_000
MIN_MAX_POINTS = 4
MAX_MAX_POINTS = 100_000
MAX_HISTORY_NAMES = 20
MAX_COMPARE_RUNS = 20
MAX_COMPARE_NAMES = 10
ALL_STATUSES = "all"
# Which value of each run analytics aggregate: its best, or its final (SPEC §3, §7).
ANALYTICS_VALUES = ("best", "final")

# --- Name rules (SPEC §4.0, §7) ------------------------------------------------------

SCORE_SUFFIXES = ("acc", "accuracy", "precision", "recall", "f1", "f1_score", "auroc", "auc")
COUNT_SUFFIXES = ("_cm_tp", "_cm_tn", "_cm_fp", "_cm_fn")
LOSS_SUFFIXES = ("loss", "error", "mse", "mae", "rmse")
SERVER_PREFIX = "server_"
# A series name is a metric name, or server_ and an additional_metrics key.
MAX_SERIES_NAME_LENGTH = len(SERVER_PREFIX) + MAX_METRIC_NAME_LENGTH
DATASET_PREFIXES = (("train_", "train"), ("val_", "validation"), ("test_", "test"))
OTHER_DATASET = "other"


def is_score_name(name: str) -> bool:
    """Whether a metric name denotes a score, which must lie in [0, 1]."""
    return name.lower().endswith(SCORE_SUFFIXES)


def is_count_name(name: str) -> bool:
    """Whether a metric name denotes a confusion-matrix count (an integer ≥ 0)."""
    return name.lower().endswith(COUNT_SUFFIXES)


def direction(name: str) -> Direction | None:
    """Which way is better for a metric: "max" for scores, "min" for losses, else None."""
    lowered = name.lower()
    if lowered.endswith(SCORE_SUFFIXES):
        return "max"
    if lowered.endswith(LOSS_SUFFIXES):
        return "min"
    return None


def dataset_type_for(name: str) -> str:
    """The dataset type a metric name's prefix implies: train, validation, test or other."""
    for prefix, dataset_type in DATASET_PREFIXES:
        if name.startswith(prefix):
            return dataset_type
    return OTHER_DATASET


# --- The platform's fixed vocabulary -------------------------------------------------


@dataclass(frozen=True)
class ValidationMetric:
    """A validation metric every results view reports, under each of its names."""

    key: str  # short key: RunSummary.best_<key>, analytics, rank_by, federated rounds
    history_name: str  # what trainers log and the history column it fills
    server_field: str  # the ServerEvaluation column
    final_key: str  # its key in final_metrics
    aliases: tuple[str, ...] = ()  # other trainer names stored for it

    @property
    def series_name(self) -> str:
        """The server_* series (and results-file key) of its server-side value."""
        return SERVER_PREFIX + self.key

    @property
    def best_key(self) -> str:
        """Its key among an ExperimentResults' bests (best_val_<key>)."""
        return f"best_val_{self.key}"

    @property
    def direction(self) -> Direction | None:
        """Which way is better (SPEC §3: max for scores, min for loss)."""
        return direction(self.history_name)

    @property
    def label(self) -> str:
        """How people read it: accuracy, precision, recall, F1, AUROC, loss."""
        return TERM_LABELS[self.key]


@dataclass(frozen=True)
class ConfusionCount:
    """One of the four confusion-matrix counts (positive = pneumonia)."""

    key: str  # tp, tn, fp, fn
    server_field: str  # the ServerEvaluation column, and its key in confusion matrices

    @property
    def history_name(self) -> str:
        """What trainers log: val_cm_<key>."""
        return f"val_cm_{self.key}"

    @property
    def series_name(self) -> str:
        """The server_* series (and results-file key): server_cm_<key>."""
        return f"{SERVER_PREFIX}cm_{self.key}"

    @property
    def label(self) -> str:
        """How people read it: True positives, ..."""
        return TERM_LABELS[f"cm_{self.key}"].capitalize()


# In the order of the ServerEvaluation columns: loss first, then the scores.
VALIDATION_METRICS = (
    ValidationMetric("loss", "val_loss", "loss", "loss"),
    ValidationMetric("accuracy", "val_acc", "accuracy", "accuracy", ("val_accuracy",)),
    ValidationMetric("precision", "val_precision", "precision", "precision"),
    ValidationMetric("recall", "val_recall", "recall", "recall"),
    ValidationMetric("f1", "val_f1", "f1_score", "f1_score"),
    ValidationMetric("auroc", "val_auroc", "auroc", "auc", ("val_auc",)),
)
SCORE_METRICS = tuple(metric for metric in VALIDATION_METRICS if metric.direction == "max")
LOSS_METRIC = VALIDATION_METRICS[0]
# The metric whose best epoch is a run's best_epoch (SPEC §3).
ACCURACY_METRIC = VALIDATION_METRICS[1]
# The scores a run has a stored best of (RunSummary.best_<key>), in display order.
SCORE_KEYS = tuple(metric.key for metric in SCORE_METRICS)
# final_metrics order: the scores, then the loss.
FINAL_METRICS = (*SCORE_METRICS, LOSS_METRIC)

CONFUSION_COUNTS = (
    ConfusionCount("tp", "true_positives"),
    ConfusionCount("tn", "true_negatives"),
    ConfusionCount("fp", "false_positives"),
    ConfusionCount("fn", "false_negatives"),
)
CONFUSION_METRIC_NAMES = tuple(count.history_name for count in CONFUSION_COUNTS)

TRAINING_METRIC_NAMES = ("train_loss", "train_acc", "train_f1")
# The metrics of one history entry, in the order every history shows them.
HISTORY_FIELDS = (
    "train_loss",
    "val_loss",
    "train_acc",
    "val_acc",
    "train_f1",
    "val_precision",
    "val_recall",
    "val_f1",
    "val_auroc",
)
# Accepted trainer name -> the name it is read as.
METRIC_ALIASES: Mapping[str, str] = MappingProxyType(
    {alias: metric.history_name for metric in VALIDATION_METRICS for alias in metric.aliases}
)
# Every stored name a centralized history is built from (aliases included).
CENTRALIZED_METRIC_NAMES = (*HISTORY_FIELDS, *CONFUSION_METRIC_NAMES, *METRIC_ALIASES)
LEARNING_RATE = "learning_rate"


def canonical_metric_name(name: str) -> str:
    """The name a metric is read as, resolving the accepted aliases (val_accuracy -> val_acc)."""
    return METRIC_ALIASES.get(name, name)


# --- Server evaluations as series (SPEC §7) -------------------------------------------

SERVER_METRIC_FIELDS = tuple(metric.server_field for metric in VALIDATION_METRICS)
SERVER_COUNT_FIELDS = tuple(count.server_field for count in CONFUSION_COUNTS)
NUM_SAMPLES_FIELD = "num_samples"
# Every numeric column of a server evaluation.
SERVER_NUMBER_FIELDS = (*SERVER_METRIC_FIELDS, *SERVER_COUNT_FIELDS, NUM_SAMPLES_FIELD)
# Results-file key -> server-evaluation column; every other key is an additional metric.
RESULTS_FILE_FIELDS: Mapping[str, str] = MappingProxyType(
    {
        **{metric.series_name: metric.server_field for metric in VALIDATION_METRICS},
        **{count.series_name: count.server_field for count in CONFUSION_COUNTS},
        NUM_SAMPLES_FIELD: NUM_SAMPLES_FIELD,
    }
)
# Server-evaluation column -> the series its values form.
SERVER_FIELD_SERIES: Mapping[str, str] = MappingProxyType(
    {
        **{metric.server_field: metric.series_name for metric in VALIDATION_METRICS},
        **{count.server_field: count.series_name for count in CONFUSION_COUNTS},
        NUM_SAMPLES_FIELD: SERVER_PREFIX + NUM_SAMPLES_FIELD,
    }
)
SERVER_SERIES_NAMES = tuple(SERVER_FIELD_SERIES.values())
_COLUMN_SERIES = frozenset(SERVER_SERIES_NAMES)


def additional_series_name(key: str) -> str:
    """The series of an additional_metrics key: server_<key>, or the key if it has the prefix."""
    return key if key.startswith(SERVER_PREFIX) else SERVER_PREFIX + key


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) <= MAX_ABS_NUMBER
    return isinstance(value, float) and math.isfinite(value)


def server_series(evaluation: Mapping[str, Any]) -> dict[str, float]:
    """The server_* series values of one server evaluation (its round is their step).

    The columns come first; an additional metric adds a series when it is a finite
    number (lists are not series) and its name is not the series of a column.
    """
    values = {
        series: float(evaluation[field])
        for field, series in SERVER_FIELD_SERIES.items()
        if evaluation.get(field) is not None
    }
    for key, value in (evaluation.get("additional_metrics") or {}).items():
        name = additional_series_name(key)
        # A column's series stays the column's, even where the column is null.
        if _is_number(value) and name not in _COLUMN_SERIES:
            values[name] = float(value)
    return values


# --- Display names ---------------------------------------------------------------------

PREFIX_LABELS = (
    ("train_", "Train"),
    ("val_", "Validation"),
    ("test_", "Test"),
    (SERVER_PREFIX, "Server"),
)
TERM_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "loss": "loss",
        "acc": "accuracy",
        "accuracy": "accuracy",
        "precision": "precision",
        "recall": "recall",
        "f1": "F1",
        "f1_score": "F1",
        "auroc": "AUROC",
        "auc": "AUROC",
        "cm_tp": "true positives",
        "cm_tn": "true negatives",
        "cm_fp": "false positives",
        "cm_fn": "false negatives",
        "num_samples": "samples",
        LEARNING_RATE: "learning rate",
    }
)


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def display_name(name: str) -> str:
    """How a metric is shown to people: "val_acc" -> "Validation accuracy"; unknown as is."""
    for prefix, label in PREFIX_LABELS:
        term = name.removeprefix(prefix)
        if term != name and term in TERM_LABELS:
            return f"{label} {TERM_LABELS[term]}"
    if name in TERM_LABELS:
        return _capitalized(TERM_LABELS[name])
    return name
