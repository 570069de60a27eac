"""Backfill of server evaluations: query, optional document body and answer."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields

from runs_service.catalogue import (
    LOSS_METRIC,
    MAX_ABS_NUMBER,
    MAX_COUNT,
    MAX_KEYS_PER_ROUND,
    MAX_METRIC_NAME_LENGTH,
    MAX_RESULTS_ROUNDS,
    MAX_ROUND,
    MAX_ROUND_LIST_LENGTH,
    MAX_ROUND_TEXT_LENGTH,
    RESULTS_FILE_FIELDS,
    RESULTS_SERVER_SECTION,
    SCORE_METRICS,
)
from runs_service.schemas.fields import JSON_VALUE_REF, NUL_FREE_PATTERN
from runs_service.schemas.ingest import BOUNDED_NUMBER, NUMBER_LIST

# "0" to "1000000", no leading zeros: the round keys the parser accepts (MAX_ROUND).
ROUND_KEY_PATTERN = "^(0|[1-9][0-9]{0,5}|1000000)$"

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


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "type": [schema["type"], "null"]}


SCORE = {"type": "number", "minimum": 0, "maximum": 1}
COUNT = {"type": "integer", "minimum": 0, "maximum": MAX_COUNT}
LOSS = {"type": "number", "minimum": -MAX_ABS_NUMBER, "maximum": MAX_ABS_NUMBER}
_SCORE_FIELDS = frozenset(metric.server_field for metric in SCORE_METRICS)


def _field_value(field: str) -> dict[str, Any]:
    """The JSON Schema of a mapped results-file key's value, by the column it fills."""
    if field == LOSS_METRIC.server_field:
        return LOSS
    return SCORE if field in _SCORE_FIELDS else COUNT


ROUND_OBJECT = {
    "type": "object",
    "description": "The round's metrics as a JSON object. Mapped keys: server_loss, "
    "server_accuracy, server_precision, server_recall, server_f1, server_auroc, "
    "server_cm_tp/tn/fp/fn and num_samples (475.0 counts as 475; the four counts add up "
    f"to at most {MAX_COUNT:,}); every other key goes to additional_metrics.",
    "properties": {
        key: _nullable(_field_value(field)) for key, field in RESULTS_FILE_FIELDS.items()
    },
    "additionalProperties": {"oneOf": [BOUNDED_NUMBER, NUMBER_LIST, {"type": "null"}]},
    "maxProperties": MAX_KEYS_PER_ROUND,
    "propertyNames": {
        "minLength": 1,
        "maxLength": MAX_METRIC_NAME_LENGTH,
        "pattern": NUL_FREE_PATTERN,
    },
}
ROUND_STRING = {
    "type": "string",
    "maxLength": MAX_ROUND_TEXT_LENGTH,
    "pattern": NUL_FREE_PATTERN,
    "description": "The legacy Python-literal string the server writes, with the same "
    "keys and rules as the object form: a flat mapping of quoted names to numbers, "
    "np.float64/np.float32/np.int64/np.int32(...) scalars, None or lists of numbers "
    f"(at most {MAX_ROUND_LIST_LENGTH:,} items), e.g. "
    "\"{'server_loss': 0.69, 'server_accuracy': np.float64(0.5), 'server_cm_tp': 475.0}\".",
}


class ResultsDocumentSchema(Schema):
    """A results document as the federated server writes it; other sections are ignored."""

    class Meta:
        unknown = EXCLUDE
        # Other sections are ignored, but a body holds no NUL anywhere (api.blueprint).
        json_schema = {
            "additionalProperties": JSON_VALUE_REF,
            "propertyNames": {"pattern": NUL_FREE_PATTERN},
        }
        # Without a body the route reads the run's results file instead (api.blueprint).
        optional_body = True

    # Raw, so that every shape problem is found (and worded) by the same parser as a file's.
    evaluate_metrics_serverapp = fields.Raw(
        required=True,
        error_messages={
            "required": "The results document has no server evaluations: it needs "
            f"'{RESULTS_SERVER_SECTION}', an object mapping round numbers to metrics."
        },
        metadata={
            "type": "object",
            "minProperties": 1,
            "maxProperties": MAX_RESULTS_ROUNDS,
            "propertyNames": {"pattern": ROUND_KEY_PATTERN},
            "additionalProperties": {"oneOf": [ROUND_OBJECT, ROUND_STRING]},
            "description": f'Round number ("0" = the initial model; 0 to {MAX_ROUND:,} '
            f"written without leading zeros, at most {MAX_RESULTS_ROUNDS:,} rounds) → metrics. "
            "Every round passes the validation of POST /api/runs/{run_id}/server-evaluations; "
            "one invalid round fails the whole request.",
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
