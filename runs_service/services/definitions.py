"""The definitions of SPEC §3 as pure functions on plain data: every route and export uses these.

Metric names come from runs_service.catalogue; this module says what is derived from them.
"""

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from runs_service.catalogue import (
    ACCURACY_METRIC,
    CENTRALIZED_METRIC_NAMES,
    CONFUSION_METRIC_NAMES,
    FINAL_METRICS,
    HISTORY_FIELDS,
    LOSS_METRIC,
    SERVER_COUNT_FIELDS,
    SERVER_METRIC_FIELDS,
    TRAINING_METRIC_NAMES,
    VALIDATION_METRICS,
    canonical_metric_name,
)
from runs_service.models.types import duration_minutes as duration_minutes

# The CSV download: the training metrics, then the validation ones in server-column order.
CSV_COLUMNS = (
    "epoch",
    *TRAINING_METRIC_NAMES,
    *(metric.history_name for metric in VALIDATION_METRICS),
)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
WILSON_Z_95 = 1.959963984540054

# final_metrics key -> history field it is read from.
FINAL_METRIC_SOURCES = tuple((metric.final_key, metric.history_name) for metric in FINAL_METRICS)
# bests key -> (history field, higher_is_better).
BEST_METRIC_SOURCES = tuple(
    (metric.best_key, metric.history_name, metric.direction == "max")
    for metric in VALIDATION_METRICS
)
# server-evaluation field -> history field of a federated history entry.
SERVER_TO_HISTORY = tuple(
    (metric.server_field, metric.history_name) for metric in VALIDATION_METRICS
)
# server-evaluation summary key -> (server-evaluation field, higher_is_better).
SERVER_SUMMARY_BESTS = tuple(
    (
        "lowest_loss" if metric is LOSS_METRIC else f"best_{metric.server_field}",
        metric.server_field,
        metric.direction == "max",
    )
    for metric in FINAL_METRICS
)

HistoryEntry = dict[str, float | int | None]


def round4(x: float | None) -> float | None:
    """Round to 4 places, keeping None as None."""
    return None if x is None else round(float(x), 4)


def difference(minuend: float | None, subtrahend: float | None) -> float | None:
    """Return minuend minus subtrahend to 4 places, or None when either is missing."""
    if minuend is None or subtrahend is None:
        return None
    return round4(minuend - subtrahend)


def wilson_interval(successes: int, total: int, z: float = WILSON_Z_95) -> list[float] | None:
    """Return the Wilson score interval [low, high] to 4 places, or None when total is 0."""
    if total < 0 or successes < 0 or successes > total:
        raise ValueError(f"invalid proportion {successes}/{total}")
    if total == 0:
        return None
    p = successes / total
    z2 = z * z
    denominator = 1 + z2 / total
    centre = (p + z2 / (2 * total)) / denominator
    margin = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total)) / denominator
    return [round(max(0.0, centre - margin), 4), round(min(1.0, centre + margin), 4)]


def _ratio(numerator: float, denominator: float) -> float:
    return 0.0 if denominator == 0 else numerator / denominator


def _count(name: str, value: int | float) -> int:
    if type(value) is int and value >= 0:  # the stored final counts: checked once, cheaply
        return value
    # Counts stored as metric values arrive as floats such as 475.0.
    if isinstance(value, bool) or not float(value).is_integer() or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def confusion_statistics(tp: int, tn: int, fp: int, fn: int) -> dict[str, Any]:
    """Return the counts and statistics of a confusion matrix (positive = pneumonia)."""
    tp, tn, fp, fn = (
        _count(name, value)
        for name, value in zip(SERVER_COUNT_FIELDS, (tp, tn, fp, fn), strict=True)
    )
    statistics = _matrix_statistics(tp, tn, fp, fn)
    return {
        "true_positives": tp,
        "true_negatives": tn,
        "false_positives": fp,
        "false_negatives": fn,
        "total": tp + tn + fp + fn,
        **statistics,
        # Fresh lists: the cached answer is shared.
        "sensitivity_ci95": _list_or_none(statistics["sensitivity_ci95"]),
        "specificity_ci95": _list_or_none(statistics["specificity_ci95"]),
    }


def _list_or_none(interval: tuple[float, float] | None) -> list[float] | None:
    return None if interval is None else list(interval)


# A page of the run list derives the same final matrices on every request: remembered,
# a matrix costs 3.9 instead of 11.7 µs (BENCHMARKS.md). 4,096: many pages' worth.
@functools.lru_cache(maxsize=4096)
def _matrix_statistics(tp: int, tn: int, fp: int, fn: int) -> dict[str, Any]:
    """The ratios and intervals of valid counts (read-only: shared by every caller)."""
    sensitivity = _ratio(tp, tp + fn)
    specificity = _ratio(tn, tn + fp)
    precision = _ratio(tp, tp + fp)
    sensitivity_ci95 = wilson_interval(tp, tp + fn)
    specificity_ci95 = wilson_interval(tn, tn + fp)
    return {
        "sensitivity": round(sensitivity, 4),
        "specificity": round(specificity, 4),
        "precision_cm": round(precision, 4),
        "accuracy_cm": round(_ratio(tp + tn, tp + tn + fp + fn), 4),
        "f1_cm": round(_ratio(2 * precision * sensitivity, precision + sensitivity), 4),
        "sensitivity_ci95": None if sensitivity_ci95 is None else tuple(sensitivity_ci95),
        "specificity_ci95": None if specificity_ci95 is None else tuple(specificity_ci95),
    }


def confusion_statistics_or_none(
    tp: int | None, tn: int | None, fp: int | None, fn: int | None
) -> dict[str, Any] | None:
    """Return confusion_statistics when all four counts are present, else None."""
    if tp is None or tn is None or fp is None or fn is None:
        return None
    return confusion_statistics(tp, tn, fp, fn)


def client_count(registered: int, config: Mapping[str, Any] | None) -> int:
    """Return the registered clients of a run, else the num_clients of its config, else 0."""
    if registered:
        return registered
    configured = (config or {}).get("num_clients")
    # Runs imported from results files register no clients; their config still says how many.
    if isinstance(configured, int) and not isinstance(configured, bool) and configured >= 0:
        return configured
    return 0


def success_rate(completed: int, failed: int) -> float | None:
    """Return completed / (completed + failed) to 4 places, or None with no finished runs."""
    finished = completed + failed
    return None if finished == 0 else round4(completed / finished)


def best(
    values: Iterable[tuple[int, float | None]], higher_is_better: bool
) -> tuple[float, int] | None:
    """Return (value, epoch) of the best present value, ties going to the earliest epoch."""
    # NaN is no value: it would make max/min depend on input order.
    candidates = [
        (value, epoch) for epoch, value in values if value is not None and not math.isnan(value)
    ]
    if not candidates:
        return None
    if higher_is_better:
        return max(candidates, key=lambda candidate: (candidate[0], -candidate[1]))
    return min(candidates)


def best_value_and_round(
    values: Iterable[tuple[int, float | None]], higher_is_better: bool
) -> dict[str, float | int | None]:
    """Return the best as {"value", "round"}, both None when there is no value."""
    found = best(values, higher_is_better)
    if found is None:
        return {"value": None, "round": None}
    return {"value": found[0], "round": found[1]}


def _final_metrics(history: list[HistoryEntry]) -> dict[str, float | None]:
    last = history[-1] if history else {}
    return {key: last.get(field) for key, field in FINAL_METRIC_SOURCES}


def _bests(history: list[HistoryEntry]) -> dict[str, float | int | None]:
    bests: dict[str, float | int | None] = {}
    for key, field, higher_is_better in BEST_METRIC_SOURCES:
        found = best(((entry["epoch"], entry[field]) for entry in history), higher_is_better)
        if field == ACCURACY_METRIC.history_name:
            bests["best_epoch"] = None if found is None else found[1]
        bests[key] = None if found is None else found[0]
    return bests


@dataclass(frozen=True)
class CentralizedView:
    """Everything derived from a centralized run's metric points."""

    history: list[HistoryEntry]
    final_metrics: dict[str, float | None]
    bests: dict[str, float | int | None]
    final_confusion_matrix: dict[str, Any] | None
    total_epochs: int


@dataclass(frozen=True)
class FederatedView:
    """Everything derived from a federated run's server-side evaluations."""

    history: list[HistoryEntry]
    initial: Mapping[str, Any] | None
    final_metrics: dict[str, float | None]
    bests: dict[str, float | int | None]
    final_confusion_matrix: dict[str, Any] | None
    num_rounds: int
    latest_round: int | None

    @property
    def total_epochs(self) -> int:
        """Return the number of training rounds shown as epochs."""
        return len(self.history)


def _values_by_step(points: Iterable[tuple[str, int, float | None]]) -> dict[int, dict[str, float]]:
    wanted = set(CENTRALIZED_METRIC_NAMES)
    by_step: dict[int, dict[str, float]] = {}
    for name, step, value in points:
        canonical = canonical_metric_name(name)
        if value is None or canonical not in wanted:
            continue
        row = by_step.setdefault(step, {})
        # The canonical name wins over its alias whatever order the rows arrive in.
        if name != canonical and canonical in row:
            continue
        row[canonical] = value
    return by_step


def summarize_centralized(points: Iterable[tuple[str, int, float | None]]) -> CentralizedView:
    """Build history, final metrics, bests and final confusion matrix from (name, step, value)."""
    by_step = _values_by_step(points)
    # An epoch is a step with at least one history metric; counts alone do not make one.
    steps = sorted(step for step, row in by_step.items() if any(f in row for f in HISTORY_FIELDS))
    history: list[HistoryEntry] = [
        {"epoch": step + 1, **{f: by_step[step].get(f) for f in HISTORY_FIELDS}} for step in steps
    ]
    final_confusion_matrix = None
    if steps:
        final_row = by_step[steps[-1]]
        final_confusion_matrix = confusion_statistics_or_none(
            *(final_row.get(name) for name in CONFUSION_METRIC_NAMES)
        )
    return CentralizedView(
        history=history,
        final_metrics=_final_metrics(history),
        bests=_bests(history),
        final_confusion_matrix=final_confusion_matrix,
        total_epochs=len(history),
    )


def _rounds(evaluations: Iterable[Mapping[str, Any]]) -> dict[int, Mapping[str, Any]]:
    by_round = {evaluation["round_number"]: evaluation for evaluation in evaluations}
    return {number: by_round[number] for number in sorted(by_round)}


def _training_rounds(by_round: dict[int, Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [evaluation for number, evaluation in by_round.items() if number >= 1]


def _counts(evaluation: Mapping[str, Any]) -> tuple[int | None, ...]:
    return tuple(evaluation.get(field) for field in SERVER_COUNT_FIELDS)


def summarize_federated(evaluations: Iterable[Mapping[str, Any]]) -> FederatedView:
    """Build history, initial evaluation, final metrics and bests from server evaluations."""
    by_round = _rounds(evaluations)
    training = _training_rounds(by_round)
    history: list[HistoryEntry] = [
        {
            "epoch": evaluation["round_number"],
            **dict.fromkeys(HISTORY_FIELDS),
            **{field: evaluation.get(source) for source, field in SERVER_TO_HISTORY},
        }
        for evaluation in training
    ]
    latest = training[-1] if training else {}
    return FederatedView(
        history=history,
        initial=by_round.get(0),
        final_metrics=_final_metrics(history),
        bests=_bests(history),
        final_confusion_matrix=confusion_statistics_or_none(*_counts(latest)),
        num_rounds=len(training),
        latest_round=latest.get("round_number"),
    )


def server_evaluation_entry(evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """Shape one server evaluation, adding confusion_matrix and additional_metrics when present."""
    entry = {
        "round": evaluation["round_number"],
        **{field: evaluation.get(field) for field in SERVER_METRIC_FIELDS},
        "num_samples": evaluation.get("num_samples"),
        "evaluation_time": evaluation.get("evaluation_time"),
    }
    confusion_matrix = confusion_statistics_or_none(*_counts(evaluation))
    if confusion_matrix is not None:
        entry["confusion_matrix"] = confusion_matrix
    if evaluation.get("additional_metrics"):
        entry["additional_metrics"] = evaluation["additional_metrics"]
    return entry


def server_evaluation_summary(evaluations: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Summarize a run's server evaluations over training rounds; {} when there are none."""
    by_round = _rounds(evaluations)
    if not by_round:
        return {}
    training = _training_rounds(by_round)
    latest = training[-1] if training else None
    summary: dict[str, Any] = {
        "total_rounds": len(training),
        "latest_round": None if latest is None else latest["round_number"],
        "latest_metrics": (
            None if latest is None else {field: latest.get(field) for field in SERVER_METRIC_FIELDS}
        ),
    }
    for key, field, higher_is_better in SERVER_SUMMARY_BESTS:
        summary[key] = best_value_and_round(
            ((evaluation["round_number"], evaluation.get(field)) for evaluation in training),
            higher_is_better,
        )
    return summary


def csv_safe_cell(value: object) -> str:
    """Render a CSV cell, quoting text that a spreadsheet would run as a formula."""
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def csv_row(entry: Mapping[str, Any]) -> list[str]:
    """Return the CSV cells of one history entry in CSV_COLUMNS order."""
    return [csv_safe_cell(entry.get(column)) for column in CSV_COLUMNS]
