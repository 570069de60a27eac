"""GET /api/runs/{run_id}/metric-summaries and /api/runs/metric-names (SPEC §7)."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, validate

from runs_service.catalogue import (
    MAX_CLIENT_IDENTIFIER_LENGTH,
    MAX_SERIES_NAME_LENGTH,
    MAX_SUMMARY_NAMES,
)
from runs_service.schemas.fields import NameList, storable_text


def SeriesName(**kwargs: Any) -> fields.String:
    """One series name."""
    return fields.String(
        validate=[validate.Length(1, MAX_SERIES_NAME_LENGTH), storable_text], **kwargs
    )


class MetricSummariesQuerySchema(Schema):
    """Which series of the run to summarise."""

    class Meta:
        unknown = RAISE

    names = NameList(
        MAX_SUMMARY_NAMES,
        metadata={"description": "Only these series (default: every series)."},
    )
    client = fields.String(
        validate=[validate.Length(1, MAX_CLIENT_IDENTIFIER_LENGTH), storable_text],
        metadata={
            "description": "Only this client's series (client-local metrics). Default: the "
            "run-level series, server_* series included."
        },
    )
    at_best_of = SeriesName(
        metadata={
            "description": "A run-level series: adds at_best, every other run-level series' "
            "value at the step of its best (e.g. every metric at the epoch of the lowest "
            "val_loss)."
        }
    )


class SummaryPointSchema(Schema):
    """One point of a series."""

    step = fields.Integer(metadata={"description": "Epoch index (0-based) or round number."})
    value = fields.Float()


class MetricSummarySchema(Schema):
    """The summary of one series (SPEC §7), kept at write time."""

    name = fields.String(metadata={"description": "Metric name, or server_* series name."})
    client = fields.String(
        allow_none=True, metadata={"description": "Client identifier; null for run-level."}
    )
    direction = fields.String(
        allow_none=True,
        metadata={
            "description": "max (higher is better: scores), min (lower is better: losses, "
            "errors) or null (counts, learning_rate, anything else).",
            "enum": ["max", "min", None],
        },
    )
    count = fields.Integer(metadata={"description": "Points in the series."})
    mean = fields.Float(metadata={"description": "Mean of the values, 4 places."})
    first = fields.Nested(SummaryPointSchema, metadata={"description": "Lowest step."})
    last = fields.Nested(SummaryPointSchema, metadata={"description": "Highest step."})
    min = fields.Nested(
        SummaryPointSchema, metadata={"description": "Smallest value, earliest step on ties."}
    )
    max = fields.Nested(
        SummaryPointSchema, metadata={"description": "Largest value, earliest step on ties."}
    )
    best = fields.Nested(
        SummaryPointSchema,
        allow_none=True,
        metadata={
            "description": "max or min by direction, earliest step on ties; null without a "
            "direction. server_* series count training rounds (≥ 1) only, null when none."
        },
    )


class AtBestSchema(Schema):
    """The run-level values at the step of one series' best."""

    name = fields.String(metadata={"description": "The series whose best gives the step."})
    step = fields.Integer(metadata={"description": "The step (epoch index or round) of it."})
    values = fields.Dict(
        keys=fields.String(),
        values=fields.Float(allow_none=True),
        metadata={
            "description": "Every other run-level series answered (names filter applied) -> "
            "its value at that step, null where it has no point there."
        },
    )


class MetricSummariesSchema(Schema):
    """A run's series summaries, ordered by name, then client (run-level first)."""

    run_id = fields.Integer()
    metrics = fields.List(fields.Nested(MetricSummarySchema))
    at_best = fields.Nested(
        AtBestSchema,
        allow_none=True,
        metadata={
            "description": "Only with at_best_of; null when that series has no run-level best."
        },
    )


class MetricNameSchema(Schema):
    """A run-level metric name in use."""

    name = fields.String()
    direction = fields.String(allow_none=True, metadata={"enum": ["max", "min", None]})
    runs = fields.Integer(metadata={"description": "How many runs have this series."})


class MetricNamesSchema(Schema):
    """Every run-level series name in use (server_* included), by name."""

    names = fields.List(fields.Nested(MetricNameSchema))
