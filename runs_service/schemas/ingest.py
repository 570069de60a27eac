"""Batch write bodies: metric points, server evaluations and clients."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from runs_service.catalogue import (
    MAX_ABS_NUMBER,
    MAX_ADDITIONAL_LIST_LENGTH,
    MAX_ADDITIONAL_METRICS,
    MAX_CLIENT_IDENTIFIER_LENGTH,
    MAX_CLIENTS_PER_BATCH,
    MAX_COUNT,
    MAX_EVALUATIONS_PER_BATCH,
    MAX_METRIC_NAME_LENGTH,
    MAX_METRICS_PER_BATCH,
    MAX_ROUND,
    MAX_STEP,
    SERVER_COUNT_FIELDS,
    is_count_name,
    is_score_name,
)
from runs_service.models.metric import DatasetType
from runs_service.schemas.fields import (
    Count,
    FiniteFloat,
    Score,
    StrictInteger,
    UTCDateTimeField,
    storable_text,
)

BOUNDED_NUMBER = {"type": "number", "minimum": -MAX_ABS_NUMBER, "maximum": MAX_ABS_NUMBER}
NUMBER_LIST = {"type": "array", "items": BOUNDED_NUMBER, "maxItems": MAX_ADDITIONAL_LIST_LENGTH}


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
    timestamp = UTCDateTimeField(
        allow_none=True,
        metadata={
            "description": "When the point was measured (optional; null is the same as "
            "absent). Writing the point again replaces it, timestamp included."
        },
    )

    @validates_schema
    def check_value_range(self, data: dict[str, Any], **kwargs: Any) -> None:
        name, value = data.get("metric_name"), data.get("metric_value")
        if name is None or value is None:
            return
        if is_score_name(name) and not 0.0 <= value <= 1.0:
            raise ValidationError(f"{name} is a score and must lie in [0, 1].", "metric_value")
        if is_count_name(name) and (value < 0 or not float(value).is_integer()):
            raise ValidationError(f"{name} is a count and must be an integer ≥ 0.", "metric_value")


# Integers beyond 2^53 lose precision as floats; leave them to the schema's checks.
_EXACT_FLOAT_INT = MAX_ABS_NUMBER
_POINT_FIELDS = frozenset(MetricPointSchema().fields)
_DATASET_TYPES = {member.value: member for member in DatasetType}


def _plain_point(item: Any) -> dict[str, Any] | None:
    """The loaded point if it is plainly valid, else None (the schema decides)."""
    if type(item) is not dict or not item.keys() <= _POINT_FIELDS:
        return None
    name, value, step = item.get("metric_name"), item.get("metric_value"), item.get("step")
    if type(name) is not str or not 1 <= len(name) <= MAX_METRIC_NAME_LENGTH:
        return None
    if not name.isprintable():
        return None
    if type(value) is int and -_EXACT_FLOAT_INT <= value <= _EXACT_FLOAT_INT:
        value = float(value)
    if type(value) is not float or not -MAX_ABS_NUMBER <= value <= MAX_ABS_NUMBER:
        return None
    if type(step) is not int or not 0 <= step <= MAX_STEP:
        return None
    if is_score_name(name) and not 0.0 <= value <= 1.0:
        return None
    if is_count_name(name) and (value < 0 or not value.is_integer()):
        return None
    point = {**item, "metric_value": value}
    if len(item) > 3 and not _load_optional_fields(point):
        return None
    return point


def _load_optional_fields(point: dict[str, Any]) -> bool:
    """Check and convert the optional fields in place; False when any is not plain."""
    if "dataset_type" in point:
        raw_type = point["dataset_type"]
        dataset_type = _DATASET_TYPES.get(raw_type) if type(raw_type) is str else None
        if dataset_type is None:
            return False
        point["dataset_type"] = dataset_type
    if "client_identifier" in point:
        client = point["client_identifier"]
        if type(client) is not str or not 1 <= len(client) <= MAX_CLIENT_IDENTIFIER_LENGTH:
            return False
        if not client.isprintable():
            return False
    if "round_number" in point:
        round_number = point["round_number"]
        if type(round_number) is not int or not 0 <= round_number <= MAX_ROUND:
            return False
    if point.get("timestamp") is not None:
        timestamp = _plain_timestamp(point["timestamp"])
        if timestamp is None:
            return False
        point["timestamp"] = timestamp
    return True


def _plain_timestamp(value: Any) -> datetime | None:
    """The UTC time UTCDateTime would load from value, or None to let the schema decide."""
    if type(value) is not str or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


class MetricPointList(fields.List):
    """A list of metric points validated exactly as MetricPointSchema does, only faster.

    Loading a full batch through marshmallow is slow (BENCHMARKS.md). Plainly valid points
    (the common case) are checked here in a few microseconds each; every other point
    goes through MetricPointSchema, which gives the errors and the final word. A
    property test holds both paths to the same verdicts.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(fields.Nested(MetricPointSchema), **kwargs)

    def _deserialize(self, value: Any, attr, data, **kwargs) -> list[dict[str, Any]]:
        if not isinstance(value, list):
            raise self.make_error("invalid")
        # The batch cap first, so an oversized batch costs no per-item work.
        if len(value) > MAX_METRICS_PER_BATCH:
            raise ValidationError(f"Longer than maximum length {MAX_METRICS_PER_BATCH}.")
        schema = self.inner.schema  # the Nested field's instance, built once
        points: list[dict[str, Any]] = []
        errors: dict[int, Any] = {}
        for index, item in enumerate(value):
            point = _plain_point(item)
            if point is None:
                try:
                    point = schema.load(item)
                except ValidationError as error:
                    errors[index] = error.messages
                    continue
            points.append(point)
        if errors:
            raise ValidationError(errors)
        return points


class MetricBatchSchema(Schema):
    """Body of POST /api/runs/{run_id}/metrics."""

    metrics = MetricPointList(
        required=True,
        validate=validate.Length(1, MAX_METRICS_PER_BATCH),
        metadata={
            "description": f"1 to {MAX_METRICS_PER_BATCH:,} points, all or nothing; each "
            "(metric_name, step, client_identifier, round_number) at most once."
        },
    )


def _check_additional_metrics(values: dict[str, Any]) -> None:
    if len(values) > MAX_ADDITIONAL_METRICS:
        raise ValidationError(f"At most {MAX_ADDITIONAL_METRICS} additional metrics.")
    for key, value in values.items():
        numbers = value if isinstance(value, list) else [value]
        if len(numbers) > MAX_ADDITIONAL_LIST_LENGTH:
            raise ValidationError(f"{key} has more than {MAX_ADDITIONAL_LIST_LENGTH} items.")
        for number in numbers:
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise ValidationError(f"{key} must be a number or a list of numbers.")
            if isinstance(number, float) and not math.isfinite(number):
                raise ValidationError(f"{key} must be finite.")
            if abs(number) > MAX_ABS_NUMBER:
                raise ValidationError(f"{key} must lie within ±2^53.")


class ServerEvaluationSchema(Schema):
    """The server-side evaluation of the global model after one round (0 = initial model)."""

    round_number = StrictInteger(required=True, validate=validate.Range(0, MAX_ROUND))
    loss = FiniteFloat(allow_none=True, validate=validate.Range(-MAX_ABS_NUMBER, MAX_ABS_NUMBER))
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
        metadata={
            "description": "Defaults to the sum of the four counts when they are given; "
            f"the four counts may add up to at most {MAX_COUNT:,}."
        },
    )
    evaluation_time = UTCDateTimeField(allow_none=True)
    additional_metrics = fields.Dict(
        # Results files reach this schema without the request parser's text checks.
        keys=fields.String(validate=[validate.Length(1, MAX_METRIC_NAME_LENGTH), storable_text]),
        values=fields.Raw(metadata={"oneOf": [BOUNDED_NUMBER, NUMBER_LIST]}),
        allow_none=True,
        validate=_check_additional_metrics,
        metadata={
            "description": f"Other numeric keys (at most {MAX_ADDITIONAL_METRICS}): finite "
            "numbers within ±2^53, or lists of at most "
            f"{MAX_ADDITIONAL_LIST_LENGTH:,} of them.",
            "maxProperties": MAX_ADDITIONAL_METRICS,
            "propertyNames": {"minLength": 1, "maxLength": MAX_METRIC_NAME_LENGTH},
        },
    )

    @validates_schema
    def check_matrix_total(self, data: dict[str, Any], **kwargs: Any) -> None:
        # num_samples is stored as that total, in a column of the counts' own size.
        counts = [data.get(name) for name in SERVER_COUNT_FIELDS]
        if None not in counts and sum(counts) > MAX_COUNT:
            raise ValidationError(
                f"The four counts add up to {sum(counts):,}; a confusion matrix holds at "
                f"most {MAX_COUNT:,} samples.",
                "num_samples",
            )


class ServerEvaluationBatchSchema(Schema):
    """Body of POST /api/runs/{run_id}/server-evaluations."""

    evaluations = fields.List(
        fields.Nested(ServerEvaluationSchema),
        required=True,
        validate=validate.Length(1, MAX_EVALUATIONS_PER_BATCH),
        metadata={
            "description": f"1 to {MAX_EVALUATIONS_PER_BATCH:,} rounds, all or nothing; each "
            "round_number at most once."
        },
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
        metadata={
            "description": f"1 to {MAX_CLIENTS_PER_BATCH:,} clients, all or nothing; each "
            "client_identifier at most once."
        },
    )
