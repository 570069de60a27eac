"""GET /api/runs/list: its query and the page of run summaries it answers."""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from runs_service.catalogue import (
    DEFAULT_LIST_LIMIT,
    LIST_SORT_KEYS,
    MAX_LIST_LIMIT,
    MAX_LIST_METRICS,
    MAX_OFFSET,
    MAX_SEARCH_LENGTH,
    MAX_SERIES_NAME_LENGTH,
    METRIC_SORT_KEY,
    METRIC_SORT_STATS,
    SORT_ORDERS,
)
from runs_service.models.run import RunStatus, TrainingMode
from runs_service.schemas.common import ExperimentTagFilters
from runs_service.schemas.fields import (
    NUL_FREE_PATTERN,
    CommaSeparated,
    NameList,
    UTCDateTimeField,
    storable_text,
)
from runs_service.schemas.results import ConfusionMatrixSchema, PreshapedList


class RunListQuerySchema(ExperimentTagFilters):
    """Filters, sorting and paging of the run list; unknown parameters are rejected."""

    class Meta:
        unknown = RAISE

    limit = fields.Integer(
        load_default=DEFAULT_LIST_LIMIT,
        validate=validate.Range(1, MAX_LIST_LIMIT),
        metadata={"description": f"Page size, 1..{MAX_LIST_LIMIT}."},
    )
    offset = fields.Integer(
        load_default=0,
        validate=validate.Range(0, MAX_OFFSET),
        metadata={"description": "Runs to skip before the page starts, 0..10^9."},
    )
    status = CommaSeparated(
        fields.Enum(RunStatus, by_value=True),
        validate=validate.Length(1, len(RunStatus)),
        metadata={
            "description": "Only runs of these statuses (any of them): comma-separated "
            "(`status=failed,completed`) or repeated (`status=failed&status=completed`)."
        },
    )
    training_mode = CommaSeparated(
        fields.Enum(TrainingMode, by_value=True),
        validate=validate.Length(1, len(TrainingMode)),
        metadata={
            "description": "Only runs of these training modes (any of them): comma-separated "
            "or repeated."
        },
    )
    q = fields.String(
        validate=[validate.Length(max=MAX_SEARCH_LENGTH), validate.Regexp(NUL_FREE_PATTERN)],
        metadata={
            "description": "Only runs whose run_description or external_id contains this text, "
            f"ignoring case (ASCII letters on SQLite); at most {MAX_SEARCH_LENGTH} characters; "
            "empty means no search. Scans the runs the other filters leave.",
            "example": "resnet",
        },
    )
    sort_by = fields.String(
        load_default="start_time",
        validate=validate.OneOf(LIST_SORT_KEYS),
        metadata={
            "description": "Sort key. Nulls come last in both directions and ties are broken "
            "by id in the same direction; status and training_mode sort by their string value; "
            "duration sorts by the exact duration (duration_minutes shows it rounded); "
            "best_val_* use the run's best validation metric (SPEC §3); metric sorts by "
            "sort_stat of the run-level series sort_metric, runs without that value last."
        },
    )
    sort_metric = fields.String(
        validate=[validate.Length(1, MAX_SERIES_NAME_LENGTH), storable_text],
        metadata={
            "description": "With sort_by=metric (and only then, required): the run-level "
            "series to sort by, e.g. val_loss or server_accuracy."
        },
    )
    sort_stat = fields.String(
        validate=validate.OneOf(METRIC_SORT_STATS),
        metadata={
            "description": "With sort_by=metric: which stored value of sort_metric orders the "
            "runs: best (default; by the name's direction, null without one), last (highest "
            "step), min or max."
        },
    )
    metrics = NameList(
        MAX_LIST_METRICS,
        metadata={
            "description": "Run-level series to show: each run then carries metrics "
            "{name: {best, last}}, null where it has no such value."
        },
    )
    sort_order = fields.String(
        load_default="desc",
        validate=validate.OneOf(SORT_ORDERS),
        metadata={"description": "Sort direction."},
    )
    started_after = UTCDateTimeField(
        metadata={"description": "Only runs started at or after this time (inclusive)."}
    )
    started_before = UTCDateTimeField(
        metadata={"description": "Only runs started before this time (exclusive)."}
    )

    @validates_schema
    def _metric_sort(self, data, **kwargs) -> None:
        by_metric = data.get("sort_by") == METRIC_SORT_KEY
        if by_metric and "sort_metric" not in data:
            raise ValidationError("Required with sort_by=metric.", "sort_metric")
        for name in ("sort_metric", "sort_stat"):
            if name in data and not by_metric:
                raise ValidationError("Only with sort_by=metric.", name)


class FederatedInfoSchema(Schema):
    """Federated facts of a run; bests and rounds count training rounds (≥ 1) only."""

    num_rounds = fields.Integer(
        metadata={"description": "Training rounds evaluated (round 0 excluded)."}
    )
    num_clients = fields.Integer(
        metadata={"description": "Registered clients, else num_clients of the config, else 0."}
    )
    has_server_evaluation = fields.Boolean(
        metadata={"description": "Whether any server evaluation (round 0 included) exists."}
    )
    best_accuracy = fields.Float(allow_none=True, metadata={"description": "Best server accuracy."})
    best_recall = fields.Float(allow_none=True, metadata={"description": "Best server recall."})
    latest_round = fields.Integer(
        allow_none=True, metadata={"description": "Highest training round evaluated."}
    )
    latest_accuracy = fields.Float(
        allow_none=True, metadata={"description": "Server accuracy of latest_round."}
    )


class MetricColumnSchema(Schema):
    """One run-level series of a run in the list."""

    best = fields.Float(allow_none=True, metadata={"description": "Its best value, or null."})
    last = fields.Float(
        allow_none=True, metadata={"description": "Its value at the highest step, or null."}
    )


class RunSummarySchema(Schema):
    """One run in the list."""

    id = fields.Integer()
    training_mode = fields.Enum(TrainingMode, by_value=True)
    status = fields.Enum(RunStatus, by_value=True)
    start_time = fields.AwareDateTime()
    end_time = fields.AwareDateTime(allow_none=True)
    run_description = fields.String(allow_none=True)
    experiment = fields.String(allow_none=True, metadata={"description": "The run's experiment."})
    tags = fields.List(fields.String(), metadata={"description": "The run's tags, sorted."})
    duration_minutes = fields.Float(
        allow_none=True,
        metadata={"description": "end_time - start_time in minutes (2 places); null if running."},
    )
    best_val_accuracy = fields.Float(
        allow_none=True,
        metadata={
            "description": "Best validation accuracy: over epochs (val_acc or val_accuracy) for "
            "centralized runs, over training rounds of the server evaluation for federated runs."
        },
    )
    best_val_recall = fields.Float(
        allow_none=True, metadata={"description": "Best validation recall, same definition."}
    )
    metrics_count = fields.Integer(
        metadata={"description": "Stored metric points of the run, client-local ones included."}
    )
    federated_info = fields.Nested(
        FederatedInfoSchema, allow_none=True, metadata={"description": "Null for centralized runs."}
    )
    final_epoch_stats = fields.Nested(
        ConfusionMatrixSchema,
        allow_none=True,
        metadata={
            "description": "Confusion-matrix statistics of the final epoch (centralized, val_cm_*) "
            "or latest training round (federated); null when its four counts are not all present."
        },
    )
    metrics = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(MetricColumnSchema),
        metadata={"description": "Only with the metrics parameter: each named series' values."},
    )


class RunListSchema(Schema):
    """A page of run summaries."""

    runs = PreshapedList(fields.Nested(RunSummarySchema))
    total = fields.Integer(metadata={"description": "Runs matching the filters, all pages."})
    limit = fields.Integer()
    offset = fields.Integer()
