"""Shapes of the series routes: metric-history, compare and a run's clients (SPEC §7)."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from runs_service.catalogue import (
    DEFAULT_MAX_POINTS,
    MAX_CLIENT_IDENTIFIER_LENGTH,
    MAX_COMPARE_NAMES,
    MAX_COMPARE_RUNS,
    MAX_HISTORY_NAMES,
    MAX_MAX_POINTS,
    MAX_RUN_ID,
    MAX_SERIES_NAME_LENGTH,
    MAX_STEP,
    MIN_MAX_POINTS,
    display_name,
)
from runs_service.models.run import RunStatus, TrainingMode
from runs_service.schemas.fields import storable_text
from runs_service.schemas.results import PreshapedList

DOWNSAMPLING_NOTE = (
    "When a series has more points in the step range than max_points, it is downsampled "
    "with M4: the range from the series' lowest to its highest step in range is cut into "
    "max_points // 4 equal-width step buckets, and each bucket keeps its first, last, lowest "
    "and highest stored point (ties go to the earliest step). So at most max_points points "
    "come back, each one exactly as stored (never an average), the first and last points in "
    "range and a point of the global minimum and maximum are always among them, and the same "
    "request gives the same answer. Otherwise every point in range comes back."
)


class CommaSeparated(fields.String):
    """A comma-separated list in one query parameter: items distinct, their count bounded.

    Items are taken as written (no trimming); `pattern` states the shape in the document.
    """

    def __init__(
        self, item: fields.Field, *, item_pattern: str, min_items: int, max_items: int, **kwargs
    ) -> None:
        metadata = dict(kwargs.pop("metadata", None) or {})
        more = f"{{{min_items - 1},{max_items - 1}}}"
        metadata["pattern"] = f"^{item_pattern}(,{item_pattern}){more}$"
        super().__init__(metadata=metadata, **kwargs)
        self.item = item
        self.min_items = min_items
        self.max_items = max_items

    def _deserialize(self, value: Any, attr, data, **kwargs) -> list[Any]:
        text = super()._deserialize(value, attr, data, **kwargs)
        parts = text.split(",")
        if not self.min_items <= len(parts) <= self.max_items:
            raise ValidationError(
                f"Give {self.min_items} to {self.max_items} comma-separated items."
            )
        items, errors = [], {}
        for index, part in enumerate(parts):
            try:
                items.append(self.item.deserialize(part))
            except ValidationError as error:
                errors[index] = error.messages
        if errors:
            raise ValidationError(errors)
        repeated = sorted({str(item) for item in items if items.count(item) > 1})
        if repeated:
            raise ValidationError(
                f"Items must be distinct; given more than once: {', '.join(repeated)}."
            )
        return items


# One series name in a list: no comma (the separator), no NUL (no database stores it).
SERIES_NAME_PATTERN = f"[^,\\x00]{{1,{MAX_SERIES_NAME_LENGTH}}}"
RUN_ID_PATTERN = "[1-9][0-9]{0,9}"


def _series_name() -> fields.String:
    return fields.String(validate=[validate.Length(1, MAX_SERIES_NAME_LENGTH), storable_text])


class StepRangeSchema(Schema):
    """The step range and point budget every series route takes."""

    class Meta:
        unknown = RAISE

    start_step = fields.Integer(
        validate=validate.Range(0, MAX_STEP),
        metadata={"description": f"Lowest step to include, 0..{MAX_STEP}; default: the first."},
    )
    end_step = fields.Integer(
        validate=validate.Range(0, MAX_STEP),
        metadata={
            "description": f"Highest step to include (inclusive), 0..{MAX_STEP}, not below "
            "start_step; default: the last."
        },
    )
    max_points = fields.Integer(
        load_default=DEFAULT_MAX_POINTS,
        validate=validate.Range(MIN_MAX_POINTS, MAX_MAX_POINTS),
        metadata={
            "description": f"Most points per series, {MIN_MAX_POINTS}..{MAX_MAX_POINTS}. "
            + DOWNSAMPLING_NOTE
        },
    )

    @validates_schema
    def _range_in_order(self, data: dict[str, Any], **kwargs) -> None:
        start, end = data.get("start_step"), data.get("end_step")
        if start is not None and end is not None and end < start:
            raise ValidationError("Must not be below start_step.", "end_step")


class MetricHistoryQuerySchema(StepRangeSchema):
    """Which series of a run, in which step range, with how many points at most."""

    names = CommaSeparated(
        _series_name(),
        item_pattern=SERIES_NAME_PATTERN,
        min_items=1,
        max_items=MAX_HISTORY_NAMES,
        metadata={
            "description": f"Series names, comma-separated, 1..{MAX_HISTORY_NAMES} distinct "
            "names taken as written (no trimming), answered in this order. Default: every "
            "run-level series of the run and, for a federated run, every server_* series it "
            "has (with client: every series of that client), ordered by name. A name with no "
            "points answers total_points 0 and empty arrays. In a federated run server_* "
            "names are the series of its server evaluations (step = round, round 0 included)."
        },
    )
    client = fields.String(
        validate=[validate.Length(1, MAX_CLIENT_IDENTIFIER_LENGTH), storable_text],
        metadata={
            "description": "A registered client's identifier: read that client's series "
            "instead of the run-level ones (404 when the run has no such client)."
        },
    )


class CompareQuerySchema(StepRangeSchema):
    """Which runs and series to compare."""

    run_ids = CommaSeparated(
        fields.Integer(strict=False, validate=validate.Range(1, MAX_RUN_ID)),
        item_pattern=RUN_ID_PATTERN,
        min_items=1,
        max_items=MAX_COMPARE_RUNS,
        required=True,
        metadata={
            "description": f"Run ids, comma-separated, 1..{MAX_COMPARE_RUNS} distinct ids, "
            f"each 1..{MAX_RUN_ID}; answered in this order. A missing run is 404 naming every "
            "missing id."
        },
    )
    names = CommaSeparated(
        _series_name(),
        item_pattern=SERIES_NAME_PATTERN,
        min_items=1,
        max_items=MAX_COMPARE_NAMES,
        required=True,
        metadata={
            "description": f"Series names, comma-separated, 1..{MAX_COMPARE_NAMES} distinct "
            "names; run-level series, or server_* series of federated runs."
        },
    )


class SeriesSchema(Schema):
    """One series: columnar steps and values, the shape chart libraries take."""

    name = fields.String()
    display_name = fields.Function(
        lambda series: display_name(series["name"]),
        metadata={
            "description": "The name as people read it (the catalogue's: val_acc is "
            "Validation accuracy); a name the catalogue does not know, as it is.",
            "example": "Validation accuracy",
        },
    )
    client = fields.String(
        allow_none=True, metadata={"description": "Client identifier; null for run-level series."}
    )
    total_points = fields.Integer(
        metadata={"description": "Stored points of the series in the step range."}
    )
    downsampled = fields.Boolean(
        metadata={"description": "Whether total_points exceeded max_points (M4 applied)."}
    )
    steps = PreshapedList(
        fields.Integer(), metadata={"description": "Steps (epoch - 1, or round), ascending."}
    )
    values = PreshapedList(
        fields.Float(), metadata={"description": "The stored value at each step of steps."}
    )
    timestamps = PreshapedList(
        fields.AwareDateTime(allow_none=True),
        metadata={
            "description": "Only when a point of the answer has one: when each point was "
            "measured (ISO 8601 UTC; a metric point's timestamp, a server evaluation's "
            "evaluation_time), null for a point without one."
        },
    )


class MetricHistorySchema(Schema):
    """Downsampled series of one run."""

    run_id = fields.Integer()
    max_points = fields.Integer()
    series = fields.List(fields.Nested(SeriesSchema))


class ComparedRunSchema(Schema):
    """The facts of one compared run."""

    id = fields.Integer()
    training_mode = fields.Enum(TrainingMode, by_value=True)
    status = fields.Enum(RunStatus, by_value=True)
    run_description = fields.String(allow_none=True)
    start_time = fields.AwareDateTime()


class ComparedSeriesSchema(SeriesSchema):
    """One series of one compared run."""

    class Meta:
        exclude = ("client",)

    run_id = fields.Integer()


class PointSchema(Schema):
    """One stored point."""

    step = fields.Integer()
    value = fields.Float()


class ComparedSummarySchema(Schema):
    """The MetricSummary of one compared series (SPEC §7)."""

    run_id = fields.Integer()
    name = fields.String()
    client = fields.String(allow_none=True)
    direction = fields.String(
        allow_none=True, metadata={"description": "max, min, or null (neither is better)."}
    )
    count = fields.Integer()
    mean = fields.Float(metadata={"description": "Mean value (4 places)."})
    first = fields.Nested(PointSchema)
    last = fields.Nested(PointSchema)
    min = fields.Nested(PointSchema)
    max = fields.Nested(PointSchema)
    best = fields.Nested(PointSchema, allow_none=True)


class CompareSchema(Schema):
    """Aligned series and summaries of several runs."""

    runs = fields.List(fields.Nested(ComparedRunSchema))
    series = fields.List(
        fields.Nested(ComparedSeriesSchema),
        metadata={
            "description": "One per run and name (runs in run_ids order, then names in names "
            "order). Every downsampled series uses the same bucket grid, spanning the lowest "
            "to the highest step any series has in range, so curves of runs of different "
            "lengths line up with no interpolation."
        },
    )
    summaries = fields.List(
        fields.Nested(ComparedSummarySchema),
        metadata={"description": "The summary of every compared series that has points."},
    )


class RunClientSchema(Schema):
    """A registered client and the metrics it logged."""

    client_identifier = fields.String()
    client_config = fields.Dict(allow_none=True)
    metric_names = fields.List(
        fields.String(), metadata={"description": "Names of its metric series, sorted."}
    )


class RunClientsSchema(Schema):
    """A run's registered clients, by identifier."""

    run_id = fields.Integer()
    clients = fields.List(
        fields.Nested(RunClientSchema),
        metadata={"description": "Ordered by client_identifier; empty for a centralized run."},
    )
