"""GET /api/runs/analytics/summary: its query and the centralized vs federated summary."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from runs_service.catalogue import (
    ALL_STATUSES,
    ANALYTICS_VALUES,
    DEFAULT_TOP_N,
    MAX_DAYS,
    MAX_TOP_N,
    SCORE_KEYS,
)
from runs_service.models.run import RunStatus, TrainingMode
from runs_service.schemas.common import ExperimentTagFilters

STATUS_CHOICES = (*(status.value for status in RunStatus), ALL_STATUSES)

AVERAGE_NOTE = "Mean over the runs that have the value (4 places); null when none has it."
DIFFERENCE_NOTE = "Federated minus centralized average (4 places); null when either is null."


class AnalyticsQuerySchema(ExperimentTagFilters):
    """Filters of the analytics summary; unknown parameters are rejected."""

    class Meta:
        unknown = RAISE

    status = fields.String(
        load_default=RunStatus.COMPLETED.value,
        validate=validate.OneOf(STATUS_CHOICES),
        metadata={
            "description": "Runs of this status, or `all`. status_counts and success_rate "
            "ignore it."
        },
    )
    training_mode = fields.Enum(
        TrainingMode, by_value=True, metadata={"description": "Only this training mode."}
    )
    days = fields.Integer(
        validate=validate.Range(1, MAX_DAYS),
        metadata={"description": f"Only runs started in the last N days, 1..{MAX_DAYS}."},
    )
    top_n = fields.Integer(
        load_default=DEFAULT_TOP_N,
        validate=validate.Range(1, MAX_TOP_N),
        metadata={"description": f"How many top runs to return, 1..{MAX_TOP_N}."},
    )
    value = fields.String(
        load_default="best",
        validate=validate.OneOf(ANALYTICS_VALUES),
        metadata={
            "description": "Which value of each run the averages, max_accuracy and the ranking "
            "use: `best` (its best validation value, SPEC §3) or `final` (the value at its "
            "highest epoch, or highest training round for federated runs; null when that "
            "epoch or round did not log it)."
        },
    )
    rank_by = fields.String(
        load_default="accuracy",
        validate=validate.OneOf(SCORE_KEYS),
        metadata={
            "description": "Validation metric that ranks top_runs (highest first): each run's "
            "best, or with value=final its final value."
        },
    )


class StatusCountsSchema(Schema):
    """Runs per status under the training_mode and days filters (status filter ignored)."""

    completed = fields.Integer()
    failed = fields.Integer()
    in_progress = fields.Integer()


def _average(description: str) -> fields.Float:
    return fields.Float(allow_none=True, metadata={"description": f"{description} {AVERAGE_NOTE}"})


def _difference(description: str) -> fields.Float:
    return fields.Float(
        allow_none=True, metadata={"description": f"{description} {DIFFERENCE_NOTE}"}
    )


class ModeMetricsSchema(Schema):
    """Averages of one training mode's runs matching every filter (best or final values)."""

    count = fields.Integer(metadata={"description": "Runs of this mode matching every filter."})
    avg_accuracy = _average("Best (value=final: final) validation accuracy.")
    avg_precision = _average("Best (value=final: final) validation precision.")
    avg_recall = _average("Best (value=final: final) validation recall.")
    avg_f1 = _average("Best (value=final: final) validation F1.")
    avg_auroc = _average("Best (value=final: final) validation AUROC.")
    max_accuracy = fields.Float(
        allow_none=True,
        metadata={
            "description": "Highest best (value=final: final) validation accuracy of these "
            "runs, as stored; null when none has it."
        },
    )
    avg_duration_minutes = _average("Duration in minutes (exact durations averaged).")


class ComparisonSchema(Schema):
    """Federated minus centralized averages."""

    accuracy = _difference("Accuracy.")
    precision = _difference("Precision.")
    recall = _difference("Recall.")
    f1 = _difference("F1.")
    auroc = _difference("AUROC.")
    duration_minutes = _difference("Duration in minutes.")


def _best(description: str) -> fields.Float:
    return fields.Float(
        allow_none=True,
        metadata={
            "description": f"Best validation {description}: over epochs (centralized) or "
            "training rounds of the server evaluation (federated); null when never logged."
        },
    )


def _final(description: str) -> fields.Float:
    return fields.Float(
        allow_none=True,
        metadata={
            "description": f"Only with value=final: the final validation {description}, at the "
            "run's highest epoch or training round; null when that epoch or round lacks it."
        },
    )


class TopRunSchema(Schema):
    """A run in the ranking."""

    run_id = fields.Integer()
    training_mode = fields.Enum(TrainingMode, by_value=True)
    status = fields.Enum(RunStatus, by_value=True)
    best_accuracy = _best("accuracy")
    best_precision = _best("precision")
    best_recall = _best("recall")
    best_f1 = _best("F1")
    best_auroc = _best("AUROC")
    final_accuracy = _final("accuracy")
    final_precision = _final("precision")
    final_recall = _final("recall")
    final_f1 = _final("F1")
    final_auroc = _final("AUROC")
    duration_minutes = fields.Float(
        allow_none=True,
        metadata={"description": "end_time - start_time in minutes (2 places); null if running."},
    )
    start_time = fields.AwareDateTime()


class AnalyticsSummarySchema(Schema):
    """Centralized vs federated analytics of the runs matching the filters."""

    total_runs = fields.Integer(metadata={"description": "Runs matching every filter."})
    success_rate = fields.Float(
        allow_none=True,
        metadata={
            "description": "completed / (completed + failed) under the training_mode and days "
            "filters (4 places); null when no run has finished."
        },
    )
    status_counts = fields.Nested(StatusCountsSchema)
    centralized = fields.Nested(ModeMetricsSchema)
    federated = fields.Nested(ModeMetricsSchema)
    comparison = fields.Nested(ComparisonSchema)
    top_runs = fields.List(
        fields.Nested(TopRunSchema),
        metadata={
            "description": "Up to top_n runs by rank_by, highest first; runs without the value "
            "come last; ties by id, highest first."
        },
    )
