"""GET /api/runs/list: its query and the page of run summaries it answers."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from runs_service.catalogue import (
    DEFAULT_LIST_LIMIT,
    LIST_SORT_KEYS,
    MAX_LIST_LIMIT,
    MAX_OFFSET,
    SORT_ORDERS,
)
from runs_service.models.run import RunStatus, TrainingMode
from runs_service.schemas.fields import UTCDateTimeField
from runs_service.schemas.results import ConfusionMatrixSchema, PreshapedList


class RunListQuerySchema(Schema):
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
    status = fields.Enum(RunStatus, by_value=True, metadata={"description": "Only this status."})
    training_mode = fields.Enum(
        TrainingMode, by_value=True, metadata={"description": "Only this training mode."}
    )
    sort_by = fields.String(
        load_default="start_time",
        validate=validate.OneOf(LIST_SORT_KEYS),
        metadata={
            "description": "Sort key. Nulls come last in both directions and ties are broken "
            "by id in the same direction; status and training_mode sort by their string value; "
            "duration sorts by the exact duration (duration_minutes shows it rounded); "
            "best_val_* use the run's best validation metric (SPEC §3)."
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


class RunSummarySchema(Schema):
    """One run in the list."""

    id = fields.Integer()
    training_mode = fields.Enum(TrainingMode, by_value=True)
    status = fields.Enum(RunStatus, by_value=True)
    start_time = fields.AwareDateTime()
    end_time = fields.AwareDateTime(allow_none=True)
    run_description = fields.String(allow_none=True)
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


class RunListSchema(Schema):
    """A page of run summaries."""

    runs = PreshapedList(fields.Nested(RunSummarySchema))
    total = fields.Integer(metadata={"description": "Runs matching the filters, all pages."})
    limit = fields.Integer()
    offset = fields.Integer()
