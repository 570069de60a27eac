"""Per-run read shapes: ExperimentResults, federated rounds and server evaluations."""

from __future__ import annotations

import inspect
from typing import Any

from marshmallow import Schema, fields

from runs_service.models.run import RunStatus, TrainingMode

ROUND_ZERO_NOTE = "Round 0 is the model before any training."


class DescribedSchema(Schema):
    """A response schema whose docstring is also its OpenAPI description."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # apispec reads Meta.description; marshmallow reads Meta right after this hook.
        description = inspect.cleandoc(cls.__doc__ or "")
        cls.Meta = type("Meta", (cls.Meta,), {"description": description})


def _metric(description: str) -> fields.Float:
    return fields.Float(allow_none=True, metadata={"description": description})


class ConfusionMatrixSchema(DescribedSchema):
    """Counts and statistics of a confusion matrix (positive = pneumonia)."""

    true_positives = fields.Integer()
    true_negatives = fields.Integer()
    false_positives = fields.Integer()
    false_negatives = fields.Integer()
    total = fields.Integer(metadata={"description": "Sum of the four counts."})
    sensitivity = fields.Float(metadata={"description": "tp/(tp+fn); 0.0 when tp+fn is 0."})
    specificity = fields.Float(metadata={"description": "tn/(tn+fp); 0.0 when tn+fp is 0."})
    precision_cm = fields.Float(metadata={"description": "tp/(tp+fp); 0.0 when tp+fp is 0."})
    accuracy_cm = fields.Float(metadata={"description": "(tp+tn)/total; 0.0 when total is 0."})
    f1_cm = fields.Float(metadata={"description": "2·precision·sensitivity/(sum), unrounded."})
    sensitivity_ci95 = fields.List(
        fields.Float(),
        allow_none=True,
        metadata={"description": "95 % Wilson interval [low, high]; null when tp+fn is 0."},
    )
    specificity_ci95 = fields.List(
        fields.Float(),
        allow_none=True,
        metadata={"description": "95 % Wilson interval [low, high]; null when tn+fp is 0."},
    )


class FinalMetricsSchema(DescribedSchema):
    """Validation metrics of the highest epoch (or training round); null when not logged."""

    accuracy = _metric("val_acc of the final epoch.")
    precision = _metric("val_precision of the final epoch.")
    recall = _metric("val_recall of the final epoch.")
    f1_score = _metric("val_f1 of the final epoch.")
    auc = _metric("val_auroc of the final epoch.")
    loss = _metric("val_loss of the final epoch.")


class HistoryEntrySchema(DescribedSchema):
    """One epoch of the training history; a metric that was not logged is null."""

    epoch = fields.Integer(
        metadata={"description": "Centralized: step + 1. Federated: the training round (≥ 1)."}
    )
    train_loss = _metric("Null for federated runs.")
    val_loss = _metric("Validation (federated: server-side) loss.")
    train_acc = _metric("Null for federated runs.")
    val_acc = _metric("Validation accuracy.")
    train_f1 = _metric("Null for federated runs.")
    val_precision = _metric("Validation precision.")
    val_recall = _metric("Validation recall.")
    val_f1 = _metric("Validation F1.")
    val_auroc = _metric("Validation AUROC.")


class ServerEvaluationEntrySchema(DescribedSchema):
    """The server-side evaluation of the global model after one round."""

    round = fields.Integer(metadata={"description": ROUND_ZERO_NOTE})
    loss = _metric("Server-side loss.")
    accuracy = _metric("Server-side accuracy.")
    precision = _metric("Server-side precision.")
    recall = _metric("Server-side recall.")
    f1_score = _metric("Server-side F1.")
    auroc = _metric("Server-side AUROC.")
    num_samples = fields.Integer(allow_none=True)
    evaluation_time = fields.AwareDateTime(allow_none=True)
    confusion_matrix = fields.Nested(
        ConfusionMatrixSchema,
        metadata={"description": "Present only when all four counts were logged."},
    )
    additional_metrics = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        metadata={"description": "Other numeric keys; present only when not empty."},
    )


class ExperimentMetadataSchema(DescribedSchema):
    """Run facts, bests (max for scores, min for loss, earliest on ties) and finals."""

    experiment_name = fields.String(
        metadata={"description": "The run description, or the experiment id when it has none."}
    )
    start_time = fields.AwareDateTime()
    end_time = fields.AwareDateTime(allow_none=True)
    duration_minutes = fields.Float(allow_none=True)
    total_epochs = fields.Integer()
    best_epoch = fields.Integer(
        allow_none=True, metadata={"description": "Epoch (or round) of the best val_acc."}
    )
    best_val_accuracy = _metric("Highest val_acc over the epochs (training rounds).")
    best_val_precision = _metric("Highest val_precision.")
    best_val_recall = _metric("Highest val_recall.")
    best_val_loss = _metric("Lowest val_loss.")
    best_val_f1 = _metric("Highest val_f1.")
    best_val_auroc = _metric("Highest val_auroc.")
    final_accuracy = _metric("final_metrics.accuracy.")
    final_precision = _metric("final_metrics.precision.")
    final_recall = _metric("final_metrics.recall.")
    final_f1 = _metric("final_metrics.f1_score.")
    final_auc = _metric("final_metrics.auc.")
    final_loss = _metric("final_metrics.loss.")
    initial_evaluation = fields.Nested(
        ServerEvaluationEntrySchema,
        allow_none=True,
        metadata={"description": "Federated: the round-0 evaluation, else null."},
    )


class PreshapedList(fields.List):
    """A documented list whose items services.definitions already shaped: dumped as they are.

    Re-dumping a long history field by field is slow in marshmallow (BENCHMARKS.md); the
    entries are plain dicts with exactly the item schema's keys and JSON-ready values
    (tests/unit/test_results_shapes.py holds the two together).
    """

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return value


class ExperimentResultsSchema(DescribedSchema):
    """A run's results: final metrics, per-epoch history, bests and confusion matrix."""

    experiment_id = fields.String(metadata={"description": '"run_{id}".'})
    training_mode = fields.Enum(TrainingMode, by_value=True)
    status = fields.Enum(RunStatus, by_value=True)
    final_metrics = fields.Nested(FinalMetricsSchema)
    training_history = PreshapedList(
        fields.Nested(HistoryEntrySchema),
        metadata={
            "description": "One entry per epoch, ascending. Centralized: the run's own metrics "
            "(client-local metrics excluded). Federated: server evaluations of training rounds."
        },
    )
    total_epochs = fields.Integer()
    metadata = fields.Nested(ExperimentMetadataSchema)
    confusion_matrix = fields.Nested(
        ConfusionMatrixSchema,
        allow_none=True,
        metadata={"description": "Counts of the final epoch (round) with statistics, or null."},
    )


class RoundMetricsSchema(DescribedSchema):
    """Server-side metrics of one round; metrics that were not logged are left out."""

    loss = fields.Float()
    accuracy = fields.Float()
    precision = fields.Float()
    recall = fields.Float()
    f1 = fields.Float(metadata={"description": "The evaluation's f1_score."})
    auroc = fields.Float()


class FederatedRoundSchema(DescribedSchema):
    """One round of a federated run, for charts."""

    round = fields.Integer(metadata={"description": ROUND_ZERO_NOTE})
    metrics = fields.Nested(RoundMetricsSchema)


class FederatedRoundsSchema(DescribedSchema):
    """Per-round server metrics of a federated run; empty for a centralized run."""

    is_federated = fields.Boolean()
    num_rounds = fields.Integer(
        metadata={"description": "Training rounds (≥ 1); round 0 does not count."}
    )
    num_clients = fields.Integer(
        metadata={
            "description": "Registered clients; when none are registered, config.num_clients."
        }
    )
    rounds = fields.List(
        fields.Nested(FederatedRoundSchema),
        metadata={"description": "Every evaluated round ascending, round 0 included."},
    )


class BestValueSchema(DescribedSchema):
    """A best over training rounds; both null when no training round has the value."""

    value = fields.Float(allow_none=True)
    round = fields.Integer(allow_none=True)


class LatestMetricsSchema(DescribedSchema):
    """The server-side metrics of the latest training round."""

    loss = fields.Float(allow_none=True)
    accuracy = fields.Float(allow_none=True)
    precision = fields.Float(allow_none=True)
    recall = fields.Float(allow_none=True)
    f1_score = fields.Float(allow_none=True)
    auroc = fields.Float(allow_none=True)


class ServerEvaluationSummarySchema(DescribedSchema):
    """Summary over training rounds (round 0 excluded); {} when there are no evaluations."""

    total_rounds = fields.Integer(metadata={"description": "Training rounds evaluated."})
    latest_round = fields.Integer(allow_none=True)
    latest_metrics = fields.Nested(LatestMetricsSchema, allow_none=True)
    best_accuracy = fields.Nested(BestValueSchema)
    best_precision = fields.Nested(BestValueSchema)
    best_recall = fields.Nested(BestValueSchema)
    best_f1_score = fields.Nested(BestValueSchema)
    best_auroc = fields.Nested(BestValueSchema)
    lowest_loss = fields.Nested(BestValueSchema)


class ServerEvaluationReportSchema(DescribedSchema):
    """A run's server-side evaluations, every round, with a summary."""

    run_id = fields.Integer()
    is_federated = fields.Boolean()
    has_server_evaluation = fields.Boolean()
    evaluations = fields.List(
        fields.Nested(ServerEvaluationEntrySchema),
        metadata={"description": "Every round ascending, round 0 included."},
    )
    summary = fields.Nested(ServerEvaluationSummarySchema)
