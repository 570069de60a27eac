"""Backfill of server evaluations: query, optional document body and answer."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields

from runs_service.services.results_file import (
    MAX_KEYS_PER_ROUND,
    MAX_LIST_LENGTH,
    MAX_ROUND_TEXT_LENGTH,
    MAX_ROUNDS,
)

TRUE_WORDS = frozenset({"true", "1", "yes"})
FALSE_WORDS = frozenset({"false", "0", "no"})


class QueryBoolean(fields.Boolean):
    """A query-string boolean: true/false, 1/0 or yes/no, in any letter case."""

    def _deserialize(self, value: Any, attr, data, **kwargs) -> bool:
        word = value.strip().lower() if isinstance(value, str) else value
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValidationError("Must be one of true/false, 1/0, yes/no.")


class BackfillQuerySchema(Schema):
    """Query parameters of the backfill route."""

    dry_run = QueryBoolean(
        load_default=False,
        metadata={
            "description": "Validate every round and report the counts a real import would "
            "give, then roll back: nothing is written. true/false, 1/0 or yes/no."
        },
    )


class ResultsDocumentSchema(Schema):
    """A results document as the federated server writes it; other sections are ignored."""

    class Meta:
        unknown = EXCLUDE

    # Raw, so that every shape problem is found (and worded) by the same parser as a file's.
    evaluate_metrics_serverapp = fields.Raw(
        metadata={
            "type": "object",
            "additionalProperties": {
                "description": "The round's metrics: a JSON object of numbers or lists of "
                "numbers, or the legacy Python-literal string.",
                "oneOf": [{"type": "object"}, {"type": "string"}],
            },
            "description": f'Round number ("0" = the initial model, at most {MAX_ROUNDS:,} '
            "rounds) → metrics. server_loss, server_accuracy, server_precision, "
            "server_recall, server_f1, server_auroc, server_cm_tp/tn/fp/fn and num_samples "
            "fill the evaluation's fields; other numeric keys go to additional_metrics. "
            f"Legacy strings are at most {MAX_ROUND_TEXT_LENGTH:,} characters and may hold "
            "only a flat mapping of quoted names to numbers, np.float64/np.float32/np.int64/"
            f"np.int32(...) scalars or lists of numbers (at most {MAX_LIST_LENGTH:,} items); "
            f"at most {MAX_KEYS_PER_ROUND} names per round.",
            "example": {
                "0": "{'server_loss': 0.6895, 'server_accuracy': 0.5, 'server_cm_tp': 475.0}",
                "1": {"server_loss": 0.616, "server_accuracy": 0.6126, "server_cm_tp": 305},
            },
        },
    )


class BackfillResultSchema(Schema):
    """What a backfill did, or for a dry run would do."""

    run_id = fields.Integer(metadata={"description": "The run backfilled."})
    success = fields.Boolean(metadata={"description": "Always true on 200."})
    message = fields.String(metadata={"description": "What happened, in a sentence."})
    rounds_processed = fields.Integer(
        metadata={"description": "Rounds read from the document (round 0 included)."}
    )
    inserted = fields.Integer(metadata={"description": "Rounds that did not exist before."})
    updated = fields.Integer(metadata={"description": "Existing rounds whose values changed."})
    unchanged = fields.Integer(
        metadata={"description": "Rounds that already existed with the same values."}
    )
