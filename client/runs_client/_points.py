"""Client-side checks of what the service accepts (SPEC §4.0), so one bad point is
dropped alone instead of sinking the batch of good points it would travel in.

The service stays the judge: these rules mirror its catalogue (a test in the service's
suite holds the two to the same suffixes), and a refusal it still sends is handled by
the sender, point by point.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

MAX_STEP = 10**6
MAX_ROUND = 10**6
MAX_COUNT = 2**31 - 1
MAX_METRIC_NAME_LENGTH = 128
MAX_CLIENT_IDENTIFIER_LENGTH = 255
MAX_ADDITIONAL_METRICS = 128
MAX_ADDITIONAL_LIST_LENGTH = 1_000
MAX_ABS_NUMBER = 2.0**53
# The service's batch limits (POST .../metrics, .../server-evaluations, .../clients).
MAX_METRICS_PER_BATCH = 10_000
MAX_EVALUATIONS_PER_BATCH = 1_000
MAX_CLIENTS_PER_BATCH = 1_000

SCORE_SUFFIXES = ("acc", "accuracy", "precision", "recall", "f1", "f1_score", "auroc", "auc")
COUNT_SUFFIXES = ("_cm_tp", "_cm_tn", "_cm_fp", "_cm_fn")

# Categories of a metric name, cached per name by the client.
PLAIN, SCORE, COUNT = 0, 1, 2

SCORE_FIELDS = ("accuracy", "precision", "recall", "f1_score", "auroc")
COUNT_FIELDS = ("true_positives", "true_negatives", "false_positives", "false_negatives")
EVALUATION_FIELDS = frozenset(
    ("loss", *SCORE_FIELDS, *COUNT_FIELDS, "num_samples", "evaluation_time")
)


class InvalidInput(ValueError):
    """A metric point, evaluation or client the service would refuse."""


def name_category(name: Any) -> int:
    """PLAIN, SCORE or COUNT for a valid metric name; InvalidInput otherwise."""
    if type(name) is not str:
        raise InvalidInput(f"metric name {name!r} is not a string")
    if not 1 <= len(name) <= MAX_METRIC_NAME_LENGTH:
        raise InvalidInput(f"metric name {name!r} must have 1 to {MAX_METRIC_NAME_LENGTH} chars")
    if not name.isprintable():
        raise InvalidInput(f"metric name {name!r} holds a non-printable character")
    lowered = name.lower()
    if lowered.endswith(SCORE_SUFFIXES):
        return SCORE
    if lowered.endswith(COUNT_SUFFIXES):
        return COUNT
    return PLAIN


def to_number(value: Any, what: str) -> float:
    """A finite float from an int, float or numpy scalar; InvalidInput otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInput(f"{what} = {value!r} is not a number")
    try:
        number = float(value)
    except (OverflowError, ValueError, TypeError):
        raise InvalidInput(f"{what} = {value!r} is not a finite number") from None
    if not math.isfinite(number):
        raise InvalidInput(f"{what} = {value!r} is not finite")
    return number


def check_value(name: str, value: Any, category: int) -> float:
    """The value of one metric point as a float, checked against its name's category."""
    number = value if type(value) is float else to_number(value, name)
    if number - number != 0.0:
        raise InvalidInput(f"{name} = {value!r} is not finite")
    if category == SCORE and not 0.0 <= number <= 1.0:
        raise InvalidInput(f"{name} = {value!r} is a score and must lie in [0, 1]")
    if category == COUNT and (number < 0 or not number.is_integer()):
        raise InvalidInput(f"{name} = {value!r} is a count and must be an integer >= 0")
    return number


def check_index(value: Any, what: str, maximum: int) -> int:
    """A step or round number: an integer in 0..maximum."""
    if type(value) is not int:
        if isinstance(value, bool):
            raise InvalidInput(f"{what} must be an integer, not {value!r}")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            try:
                value = operator.index(value)
            except TypeError:
                raise InvalidInput(f"{what} must be an integer, not {value!r}") from None
    if not 0 <= value <= maximum:
        raise InvalidInput(f"{what} must lie in 0..{maximum:,}, not {value}")
    return value


def check_client_identifier(value: Any) -> str:
    """A client identifier: printable text of 1..255 characters (numbers are turned to text)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if type(value) is not str:
        raise InvalidInput(f"client_identifier {value!r} is not a string")
    if not 1 <= len(value) <= MAX_CLIENT_IDENTIFIER_LENGTH:
        raise InvalidInput(
            f"client_identifier {value!r} must have 1 to {MAX_CLIENT_IDENTIFIER_LENGTH} chars"
        )
    if not value.isprintable():
        raise InvalidInput(f"client_identifier {value!r} holds a non-printable character")
    return value


def utc_text(moment: datetime | str | None = None) -> str:
    """ISO 8601 text with offset; naive datetimes are taken as UTC, None is now."""
    if moment is None:
        return datetime.now(timezone.utc).isoformat()
    if isinstance(moment, str):
        return moment
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.isoformat()


def _count(name: str, value: Any) -> int | None:
    if value is None:
        return None
    number = to_number(value, name)
    if number < 0 or not number.is_integer() or number > MAX_COUNT:
        raise InvalidInput(f"{name} = {value!r} must be an integer in 0..{MAX_COUNT:,}")
    return int(number)


def _additional_value(name: str, value: Any) -> float | int | list[float | int]:
    values = list(value) if isinstance(value, list | tuple) else None
    if values is None:
        number = to_number(value, name)
        if abs(number) > MAX_ABS_NUMBER:
            raise InvalidInput(f"{name} = {value!r} lies beyond ±2^53")
        return int(number) if isinstance(value, numbers.Integral) else number
    if len(values) > MAX_ADDITIONAL_LIST_LENGTH:
        raise InvalidInput(f"{name} has more than {MAX_ADDITIONAL_LIST_LENGTH} items")
    return [_additional_value(name, item) for item in values]  # type: ignore[misc]


def evaluation_body(round_number: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of one server evaluation; unknown numeric fields go to additional_metrics."""
    body: dict[str, Any] = {"round_number": check_index(round_number, "round_number", MAX_ROUND)}
    additional = dict(fields.get("additional_metrics") or {})
    for name, value in fields.items():
        if name == "additional_metrics":
            continue
        if name not in EVALUATION_FIELDS:
            additional[name] = value
        elif value is None:
            body[name] = None
        elif name == "evaluation_time":
            body[name] = utc_text(value)
        elif name == "loss":
            body[name] = to_number(value, name)
        elif name in SCORE_FIELDS:
            body[name] = check_value(name, value, SCORE)
        else:
            body[name] = _count(name, value)
    body.setdefault("evaluation_time", utc_text())
    if additional:
        if len(additional) > MAX_ADDITIONAL_METRICS:
            raise InvalidInput(f"at most {MAX_ADDITIONAL_METRICS} additional metrics")
        checked = {}
        for name, value in additional.items():
            if type(name) is not str or not 1 <= len(name) <= MAX_METRIC_NAME_LENGTH:
                raise InvalidInput(f"additional metric name {name!r} is not valid")
            checked[name] = _additional_value(name, value)
        body["additional_metrics"] = checked
    counts = [body.get(name) for name in COUNT_FIELDS]
    if None not in counts and sum(counts) > MAX_COUNT:  # type: ignore[arg-type]
        raise InvalidInput(f"the four counts add up to more than {MAX_COUNT:,}")
    return body


def client_body(client: Any) -> dict[str, Any]:
    """The JSON body of one client: from an identifier or a {client_identifier, client_config}."""
    if isinstance(client, Mapping):
        unknown = set(client) - {"client_identifier", "client_config"}
        if unknown:
            raise InvalidInput(f"unknown client fields {sorted(unknown)}")
        body = {"client_identifier": check_client_identifier(client.get("client_identifier"))}
        if client.get("client_config") is not None:
            body["client_config"] = dict(client["client_config"])
        return body
    return {"client_identifier": check_client_identifier(client)}
