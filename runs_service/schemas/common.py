"""Shapes shared by several blueprints."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from runs_service.catalogue import MAX_TAGS_PER_RUN
from runs_service.schemas.fields import CommaSeparated, Experiment, Tag


class BatchResultSchema(Schema):
    """What a batch write did; re-sending the same batch answers all unchanged."""

    inserted = fields.Integer(metadata={"description": "Items that did not exist before."})
    updated = fields.Integer(metadata={"description": "Existing items whose values changed."})
    unchanged = fields.Integer(
        metadata={"description": "Items that already existed with the same values."}
    )


class ExperimentTagFilters(Schema):
    """The experiment and tag filters of the run list and the analytics summary."""

    experiment = Experiment(
        metadata={"description": "Only runs of this experiment (exact name)."},
    )
    tag = CommaSeparated(
        Tag(),
        validate=validate.Length(1, MAX_TAGS_PER_RUN),
        metadata={
            "description": "Only runs carrying every one of these tags: comma-separated "
            f"(`tag=baseline,non-iid`) or repeated; at most {MAX_TAGS_PER_RUN}."
        },
    )
