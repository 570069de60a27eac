"""Examples for the API documentation: one realistic value for every schema field.

Swagger UI builds request bodies and responses from these, so they come from the demo
data (`flask demo-data`: run 27, a centralized ResNet50, and run 4, a federated
DenseNet121 with 8 clients) instead of random strings or `additionalProp1`. A field's
own `metadata={"example": ...}` wins; otherwise `Schema.field` (the schema's name
without its `Schema` suffix), then the field name, is looked up here.
`tests/test_openapi_docs.py` fails on a schema property without an example.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from marshmallow import fields

START = "2026-09-04T13:04:32+00:00"
END = "2026-09-04T14:21:13+00:00"
CENTRALIZED_CONFIG = {
    "model": "ResNet50",
    "learning_rate": 0.0001,
    "batch_size": 32,
    "epochs": 14,
    "optimizer": "adamw",
    "weight_decay": 0.0001,
    "scheduler": "cosine",
    "image_size": 224,
    "augmentation": True,
    "seed": 1234,
}
CLIENT_CONFIG = {
    "partition_id": 0,
    "partition": "dirichlet",
    "num_examples": 1043,
    "local_epochs": 2,
    "batch_size": 32,
}

# By field name: the meaning is the same wherever the name appears.
FIELD_EXAMPLES: dict[str, Any] = {
    # runs
    "id": 27,
    "run_id": 27,
    "training_mode": "centralized",
    "status": "completed",
    "start_time": START,
    "end_time": END,
    "duration_minutes": 76.68,
    "run_description": "ResNet50 label smoothing lr=1e-4",
    "source_path": "results/centralized/20260904_130432_resnet50",
    "external_id": "wandb-3k9x2m7q",
    "config": CENTRALIZED_CONFIG,
    "experiment": "resnet-ablation",
    "tags": ["baseline", "non-iid"],
    "experiment_id": "run_27",
    "experiment_name": "ResNet50 label smoothing lr=1e-4",
    # scores and losses of one evaluation
    "accuracy": 0.9087,
    "precision": 0.9173,
    "recall": 0.9385,
    "f1_score": 0.9278,
    "f1": 0.9278,
    "auroc": 0.9524,
    "auc": 0.9524,
    "loss": 0.23179,
    "value": 0.9311,
    # confusion matrix (624 validation images, 390 with pneumonia)
    "true_positives": 366,
    "true_negatives": 201,
    "false_positives": 33,
    "false_negatives": 24,
    "total": 624,
    "num_samples": 624,
    "sensitivity": 0.9385,
    "specificity": 0.859,
    "precision_cm": 0.9173,
    "accuracy_cm": 0.9087,
    "f1_cm": 0.9278,
    "sensitivity_ci95": [0.9101, 0.9583],
    "specificity_ci95": [0.8086, 0.8978],
    # training history (one epoch)
    "epoch": 12,
    "train_loss": 0.11874,
    "train_acc": 0.9618,
    "train_f1": 0.9702,
    "val_loss": 0.21046,
    "val_acc": 0.9311,
    "val_precision": 0.9322,
    "val_recall": 0.9641,
    "val_f1": 0.9479,
    "val_auroc": 0.9701,
    "total_epochs": 14,
    "best_epoch": 12,
    "best_val_accuracy": 0.9311,
    "best_val_precision": 0.9322,
    "best_val_recall": 0.9641,
    "best_val_loss": 0.19873,
    "best_val_f1": 0.9479,
    "best_val_auroc": 0.9701,
    "final_accuracy": 0.9087,
    "final_precision": 0.9173,
    "final_recall": 0.9385,
    "final_f1": 0.9278,
    "final_auc": 0.9524,
    "final_auroc": 0.9524,
    "final_loss": 0.23179,
    "metrics_count": 196,
    # federated runs
    "is_federated": True,
    "num_rounds": 11,
    "num_clients": 8,
    "has_server_evaluation": True,
    "best_accuracy": 0.8734,
    "best_precision": 0.9148,
    "best_recall": 0.9026,
    "best_f1": 0.9033,
    "best_auroc": 0.9215,
    "latest_round": 11,
    "latest_accuracy": 0.8718,
    "round": 3,
    "round_number": 3,
    "total_rounds": 11,
    "evaluation_time": "2026-08-06T14:52:41+00:00",
    "additional_metrics": {"server_ece": 0.0412, "server_brier": 0.0897},
    "client_identifier": "client_0",
    "client_config": CLIENT_CONFIG,
    # metric points
    "metric_name": "val_acc",
    "metric_value": 0.9311,
    "step": 11,
    "dataset_type": "validation",
    "timestamp": "2026-09-04T14:12:47+00:00",
    # metric series (run 27's val_acc, 14 epochs)
    "name": "val_acc",
    "client": None,
    "direction": "max",
    "mean": 0.8646,
    "total_points": 14,
    "downsampled": False,
    "max_points": 1000,
    "steps": list(range(14)),
    "values": [
        0.6506,
        0.7516,
        0.8077,
        0.8446,
        0.8638,
        0.8814,
        0.891,
        0.9006,
        0.9087,
        0.9183,
        0.9247,
        0.9311,
        0.9215,
        0.9087,
    ],
    "metric_names": ["train_acc", "train_loss"],
    "timestamps": [
        "2026-09-04T13:08:02+00:00",
        "2026-09-04T13:13:29+00:00",
        "2026-09-04T13:18:56+00:00",
        "2026-09-04T13:24:23+00:00",
        "2026-09-04T13:29:50+00:00",
        "2026-09-04T13:35:17+00:00",
        "2026-09-04T13:40:44+00:00",
        "2026-09-04T13:46:11+00:00",
        "2026-09-04T13:51:38+00:00",
        "2026-09-04T13:57:05+00:00",
        "2026-09-04T14:02:32+00:00",
        "2026-09-04T14:07:59+00:00",
        "2026-09-04T14:13:26+00:00",
        "2026-09-04T14:18:53+00:00",
    ],
    # batch answers
    "inserted": 2,
    "updated": 0,
    "unchanged": 0,
    "success": True,
    "rounds_processed": 16,
    # analytics
    "total_runs": 48,
    "success_rate": 0.8421,
    "completed": 48,
    "failed": 9,
    "in_progress": 3,
    "count": 26,
    "avg_accuracy": 0.8979,
    "avg_precision": 0.9021,
    "avg_recall": 0.9289,
    "avg_f1": 0.915,
    "avg_auroc": 0.9312,
    "avg_duration_minutes": 69.9712,
    "max_accuracy": 0.9311,
    # the list
    "limit": 100,
    "offset": 0,
    # errors (a 422; each documented status has its own example in ERROR_EXAMPLES)
    "code": 422,
    "message": "Invalid input: json.metrics[2].metric_value: val_acc is a score and must "
    "lie in [0, 1].",
    "errors": {
        "json": {"metrics": {"2": {"metric_value": ["val_acc is a score and must lie in [0, 1]."]}}}
    },
    # flask-smorest's pagination header schema (documented by the library, unused here)
    "total_pages": 3,
    "first_page": 1,
    "last_page": 3,
    "page": 2,
    "previous_page": 1,
    "next_page": 3,
}

# Where one name means something else in one schema.
SCHEMA_FIELD_EXAMPLES: dict[str, Any] = {
    "Error.status": "Unprocessable Entity",
    "Probe.status": "ok",
    "RunList.total": 60,
    "ComparedSummary.count": 14,
    "MetricColumn.best": 0.9311,
    "MetricColumn.last": 0.9087,
    "RunSummary.metrics": {"val_acc": {"best": 0.9311, "last": 0.9087}},
    "MetricName.runs": 31,
    "AtBest.values": {"val_loss": 0.21046, "val_f1": 0.9479, "train_acc": 0.9618},
    # The examples show a centralized run (27): no federated facts, no round 0.
    "RunSummary.federated_info": None,
    "ExperimentMetadata.initial_evaluation": None,
    # A run being created is in progress and has no end yet.
    "RunCreate.status": "in_progress",
    "RunCreate.end_time": None,
    "PaginationMetadata.total": 60,
    "Comparison.accuracy": -0.0603,
    "Comparison.precision": -0.0412,
    "Comparison.recall": -0.0486,
    "Comparison.f1": -0.0451,
    "Comparison.auroc": -0.0388,
    "Comparison.duration_minutes": -38.6651,
    "TopRun.best_accuracy": 0.9311,
    "TopRun.best_precision": 0.9322,
    "TopRun.best_recall": 0.9641,
    "TopRun.best_f1": 0.9479,
    "TopRun.best_auroc": 0.9701,
    "HistoryEntry.epoch": 12,
    "BackfillResult.run_id": 1,
    "BackfillResult.message": "Backfilled 16 rounds of server evaluations from results_1.json.",
    "BackfillResult.inserted": 16,
    "MetricPoint.client_identifier": "client_0",
    "ServerEvaluation.loss": 0.41262,
    "ServerEvaluationEntry.loss": 0.41262,
    "RoundMetrics.loss": 0.41262,
    # A batch as a training job sends it: the two validation points of one epoch.
    "MetricBatch.metrics": [
        {"metric_name": "val_acc", "metric_value": 0.9311, "step": 11},
        {"metric_name": "val_loss", "metric_value": 0.21046, "step": 11},
    ],
    "ServerEvaluationBatch.evaluations": [
        {
            "round_number": 0,
            "loss": 0.71261,
            "accuracy": 0.4968,
            "precision": 0.6557,
            "recall": 0.4103,
            "f1_score": 0.5047,
            "auroc": 0.5007,
            "true_positives": 160,
            "true_negatives": 150,
            "false_positives": 84,
            "false_negatives": 230,
            "evaluation_time": "2026-08-06T13:34:23+00:00",
        },
        {
            "round_number": 1,
            "loss": 0.58327,
            "accuracy": 0.7019,
            "precision": 0.7681,
            "recall": 0.7385,
            "f1_score": 0.753,
            "auroc": 0.7412,
            "true_positives": 288,
            "true_negatives": 150,
            "false_positives": 87,
            "false_negatives": 102,
            "evaluation_time": "2026-08-06T13:39:02+00:00",
        },
    ],
    "ClientBatch.clients": [
        {"client_identifier": "client_0", "client_config": CLIENT_CONFIG},
        {
            "client_identifier": "client_1",
            "client_config": {**CLIENT_CONFIG, "partition_id": 1, "num_examples": 587},
        },
    ],
}


# The error answer of each documented status code, as the service gives it.
ERROR_MESSAGES = {
    400: "Malformed JSON body: Expecting value: line 1 column 19 (char 18).",
    401: "Send 'Authorization: Bearer <token>' with one of the configured API tokens.",
    403: "This operation needs an API token, and none is configured: set RUNS_API_TOKENS "
    "to a comma-separated list of tokens and send 'Authorization: Bearer <token>'.",
    404: "Run 2147483647 not found",
    405: "The method is not allowed for the requested URL.",
    409: "Run 27 is centralized; clients belong to federated runs.",
    413: "The request body is larger than the limit of 16 MiB (RUNS_MAX_CONTENT_LENGTH).",
    415: "Send the request body as application/json, not text/plain.",
    422: FIELD_EXAMPLES["message"],
    500: "The server encountered an internal error and was unable to complete your request.",
    503: "The database is unavailable; retry shortly.",
}


def error_example(status: int) -> dict[str, Any]:
    """The JSON error answer documented for a status code."""
    example: dict[str, Any] = {
        "code": status,
        "status": HTTPStatus(status).phrase,
        "message": ERROR_MESSAGES.get(status, HTTPStatus(status).description),
    }
    if status == 422:
        example["errors"] = FIELD_EXAMPLES["errors"]
    return example


_MISSING = object()


def example_for(schema_name: str, field_name: str) -> Any:
    """The documented example of a field, or _MISSING when there is none."""
    qualified = f"{schema_name}.{field_name}"
    if qualified in SCHEMA_FIELD_EXAMPLES:
        return SCHEMA_FIELD_EXAMPLES[qualified]
    return FIELD_EXAMPLES.get(field_name, _MISSING)


def _holds_schemas(field) -> bool:
    if isinstance(field, fields.List):
        return _holds_schemas(field.inner)
    return isinstance(field, fields.Nested | fields.Pluck)


def field_example(converter, field, ret: dict, **kwargs) -> dict:
    """apispec attribute function: give a field without its own example the one above.

    A nested schema (or a list of them) shows its own fields' examples; only an entry
    for that very `Schema.field` replaces them (a request body's list, say).
    """
    if "example" in ret or "example" in field.metadata or field.parent is None:
        return {}
    schema_name = type(field.parent).__name__.removesuffix("Schema")
    name = field.data_key or field.name
    if _holds_schemas(field):
        example = SCHEMA_FIELD_EXAMPLES.get(f"{schema_name}.{name}", _MISSING)
    else:
        example = example_for(schema_name, name)
    return {} if example is _MISSING else {"example": example}
