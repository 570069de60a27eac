"""Batch write bodies: metric points, server evaluations and clients."""

from __future__ import annotations

import math
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from runs_service.models.client import MAX_CLIENT_IDENTIFIER_LENGTH
from runs_service.models.metric import MAX_METRIC_NAME_LENGTH, DatasetType
from runs_service.schemas.fields import (
    MAX_ROUND,
    MAX_STEP,
    Count,
    FiniteFloat,
    Score,
    StrictInteger,
    UTCDateTimeField,
)
from runs_service.services.definitions import is_count_name, is_score_name

MAX_METRICS_PER_BATCH = 10_000
MAX_EVALUATIONS_PER_BATCH = 1_000
MAX_CLIENTS_PER_BATCH = 1_000
MAX_ADDITIONAL_METRICS = 100


class MetricPointSchema(Schema):
    """One value of one named metric at one (0-indexed) epoch."""

    metric_name = fields.String(
        required=True,
        validate=validate.Length(1, MAX_METRIC_NAME_LENGTH),
        metadata={
            "description": "Scores (…acc, …accuracy, …precision, …recall, …f1, …f1_score, "
            "…auroc, …auc) must lie in [0, 1]; counts (…_cm_tp/tn/fp/fn) are integers ≥ 0."
        },
    )
    metric_value = FiniteFloat(required=True)
    step = StrictInteger(required=True, validate=validate.Range(0, MAX_STEP))
    dataset_type = fields.Enum(
        DatasetType,
        by_value=True,
        metadata={"description": "Derived from the name prefix train_/val_/test_ when absent."},
    )
    client_identifier = fields.String(
        validate=validate.Length(1, MAX_CLIENT_IDENTIFIER_LENGTH),
        metadata={"description": "Client of a federated run; registered on first use."},
    )
    round_number = StrictInteger(validate=validate.Range(0, MAX_ROUND))

    @validates_schema
    def check_value_range(self, data: dict[str, Any], **kwargs: Any) -> None:
        name, value = data.get("metric_name"), data.get("metric_value")
        if name is None or value is None:
            return
        if is_score_name(name) and not 0.0 <= value <= 1.0:
            raise ValidationError(f"{name} is a score and must lie in [0, 1].", "metric_value")
        if is_count_name(name) and (value < 0 or not float(value).is_integer()):
            raise ValidationError(f"{name} is a count and must be an integer ≥ 0.", "metric_value")


class MetricBatchSchema(Schema):
    """Body of POST /api/runs/{run_id}/metrics."""

    metrics = fields.List(
        fields.Nested(MetricPointSchema),
        required=True,
        validate=validate.Length(1, MAX_METRICS_PER_BATCH),
        metadata={"description": f"1 to {MAX_METRICS_PER_BATCH:,} points, all or nothing."},
    )


def _check_additional_metrics(values: dict[str, Any]) -> None:
    if len(values) > MAX_ADDITIONAL_METRICS:
        raise ValidationError(f"At most {MAX_ADDITIONAL_METRICS} additional metrics.")
    for key, value in values.items():
        numbers = value if isinstance(value, list) else [value]
        for number in numbers:
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise ValidationError(f"{key} must be a number or a list of numbers.")
            if isinstance(number, float) and not math.isfinite(number):
                raise ValidationError(f"{key} must be finite.")


class ServerEvaluationSchema(Schema):
    """The server-side evaluation of the global model after one round (0 = initial model)."""

    round_number = StrictInteger(required=True, validate=validate.Range(0, MAX_ROUND))
    loss = FiniteFloat(allow_none=True)
    accuracy = Score(allow_none=True)
    precision = Score(allow_none=True)
    recall = Score(allow_none=True)
    f1_score = Score(allow_none=True)
    auroc = Score(allow_none=True)
    true_positives = Count(allow_none=True)
    true_negatives = Count(allow_none=True)
    false_positives = Count(allow_none=True)
    false_negatives = Count(allow_none=True)
    num_samples = Count(
        allow_none=True,
        metadata={"description": "Defaults to the sum of the four counts when they are given."},
    )
    evaluation_time = UTCDateTimeField(allow_none=True)
    additional_metrics = fields.Dict(
        keys=fields.String(validate=validate.Length(1, MAX_METRIC_NAME_LENGTH)),
        allow_none=True,
        validate=_check_additional_metrics,
        metadata={"description": "Other numeric keys: numbers or lists of numbers."},
    )


class ServerEvaluationBatchSchema(Schema):
    """Body of POST /api/runs/{run_id}/server-evaluations."""

    evaluations = fields.List(
        fields.Nested(ServerEvaluationSchema),
        required=True,
        validate=validate.Length(1, MAX_EVALUATIONS_PER_BATCH),
        metadata={"description": f"1 to {MAX_EVALUATIONS_PER_BATCH:,} rounds, all or nothing."},
    )


class ClientSchema(Schema):
    """A federated participant to register."""

    client_identifier = fields.String(
        required=True, validate=validate.Length(1, MAX_CLIENT_IDENTIFIER_LENGTH)
    )
    client_config = fields.Dict(keys=fields.String(), allow_none=True)


class ClientBatchSchema(Schema):
    """Body of POST /api/runs/{run_id}/clients."""

    clients = fields.List(
        fields.Nested(ClientSchema),
        required=True,
        validate=validate.Length(1, MAX_CLIENTS_PER_BATCH),
    )
