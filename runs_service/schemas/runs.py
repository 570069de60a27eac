"""Run records: create, update and the record returned by the API."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from runs_service.catalogue import MAX_EXPERIMENT_LENGTH, MAX_TAGS_PER_RUN
from runs_service.models.run import MAX_DESCRIPTION_LENGTH, RunStatus, TrainingMode
from runs_service.schemas.fields import TAG_RULE, Experiment, Tags, UTCDateTimeField


def _check_time_order(data: dict[str, Any]) -> None:
    start, end = data.get("start_time"), data.get("end_time")
    if start is not None and end is not None and end < start:
        raise ValidationError("end_time must not be before start_time.", "end_time")


class RunWritableFields(Schema):
    """Fields a client may set on create and update."""

    status = fields.Enum(RunStatus, by_value=True, metadata={"description": "Run status."})
    end_time = UTCDateTimeField(
        allow_none=True,
        metadata={"description": "When the run ended; not before the run's start_time."},
    )
    run_description = fields.String(
        allow_none=True,
        validate=validate.Length(max=MAX_DESCRIPTION_LENGTH),
        metadata={"description": "Free text shown in lists and reports."},
    )
    source_path = fields.String(
        allow_none=True,
        validate=validate.Length(max=1024),
        metadata={"description": "Where the run's artefacts live."},
    )
    external_id = fields.String(
        allow_none=True,
        validate=validate.Length(max=255),
        metadata={"description": "Id in another tracker (W&B, MLflow)."},
    )
    config = fields.Dict(
        keys=fields.String(),
        allow_none=True,
        metadata={
            "description": "Hyperparameters: learning_rate, batch_size, epochs, ...; a PATCH "
            "replaces the whole object."
        },
    )
    experiment = Experiment(
        allow_none=True,
        metadata={
            "description": f"The experiment the run belongs to (1..{MAX_EXPERIMENT_LENGTH} "
            "characters), e.g. resnet-ablation; null for none.",
            "example": "resnet-ablation",
        },
    )
    tags = Tags(
        metadata={
            "description": f"The run's tags, a set of at most {MAX_TAGS_PER_RUN}: each "
            f"{TAG_RULE}. A tag given twice counts once; a PATCH replaces the whole set "
            "([] removes every tag).",
            "example": ["baseline", "non-iid"],
        },
    )


class RunCreateSchema(RunWritableFields):
    """Body of POST /api/runs."""

    training_mode = fields.Enum(TrainingMode, by_value=True, required=True)
    status = fields.Enum(RunStatus, by_value=True, load_default=RunStatus.IN_PROGRESS)
    start_time = UTCDateTimeField(
        metadata={"description": "When the run started; defaults to now. Naive times are UTC."}
    )

    @validates_schema
    def check_time_order(self, data: dict[str, Any], **kwargs: Any) -> None:
        _check_time_order(data)


class RunUpdateSchema(RunWritableFields):
    """Body of PATCH /api/runs/{run_id}: any subset of the writable fields."""


class RunSchema(Schema):
    """A run record."""

    id = fields.Integer(dump_only=True)
    training_mode = fields.Enum(TrainingMode, by_value=True)
    status = fields.Enum(RunStatus, by_value=True)
    start_time = fields.AwareDateTime()
    end_time = fields.AwareDateTime(allow_none=True)
    run_description = fields.String(allow_none=True)
    source_path = fields.String(allow_none=True)
    external_id = fields.String(allow_none=True)
    config = fields.Dict(allow_none=True)
    experiment = fields.String(allow_none=True)
    tags = fields.List(fields.String(), metadata={"description": "The run's tags, sorted."})
    duration_minutes = fields.Float(
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "end_time - start_time in minutes (2 places); null without end_time."
        },
    )
