"""The results document a federated server writes, parsed into server evaluations.

Pure and bounded: no I/O, no eval. A round's metrics are a JSON object or the
legacy Python-literal string (the repr of a dict or of Flower's MetricRecord),
which a small hand-written tokenizer reads. Every round then passes the rules of
POST /api/runs/{run_id}/server-evaluations (checked here with plain functions; a
property test holds them to the batch route's schema). Every failure is a
ResultsFileError.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

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
    NUM_SAMPLES_FIELD,
    RESULTS_FILE_FIELDS,
    RESULTS_SERVER_SECTION,
    SCORE_METRICS,
    SERVER_COUNT_FIELDS,
)
from runs_service.errors import InvalidInput

SERVER_SECTION = RESULTS_SERVER_SECTION
MAX_NUMBER_LENGTH = 64
MAX_ABS_INTEGER = 2**63 - 1
# Problems named in an error message before the rest are summarised.
MESSAGE_PROBLEM_LIMIT = 3

KEY_FOR_FIELD = {field: key for key, field in RESULTS_FILE_FIELDS.items()}
COUNT_FIELDS = frozenset({*SERVER_COUNT_FIELDS, NUM_SAMPLES_FIELD})
SCORE_FIELDS = tuple(metric.server_field for metric in SCORE_METRICS)
NUMPY_FLOATS = frozenset({"float64", "float32"})
NUMPY_INTEGERS = frozenset({"int64", "int32"})

Number = int | float
MetricValue = Number | list[Number] | None

_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ROUND_KEY = re.compile(r"0|[1-9][0-9]*")
_NON_FINITE = re.compile(r"[-+]?(?:nan|inf|NaN|Infinity)\b")
_WHITESPACE = " \t\r\n"


class ResultsFileError(InvalidInput):
    """A results document (or one of its rounds) that cannot be imported: 422."""


class _Invalid(Exception):
    """One problem found while reading a round; becomes part of a ResultsFileError."""


def _shorten(text: str, limit: int = 40) -> str:
    """A quotable excerpt of untrusted text, so a hostile key cannot flood a message."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _bounded_number(value: Any, where: str) -> Number:
    """The value if it is an int or finite float within bounds (bool is not a number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(f"{where} must be a number or a list of numbers")
    if isinstance(value, int) and abs(value) > MAX_ABS_INTEGER:
        raise _Invalid(f"{where} is an integer beyond ±2^63-1")
    if isinstance(value, float) and not math.isfinite(value):
        raise _Invalid(f"{where} must be finite (NaN and infinity are not allowed)")
    return value


def _checked_value(key: str, value: Any) -> MetricValue:
    """A metric value of either format: a number, a flat list of numbers, or null."""
    if value is None:
        return None
    if isinstance(value, list):
        if len(value) > MAX_ROUND_LIST_LENGTH:
            raise _Invalid(f"{key} has more than {MAX_ROUND_LIST_LENGTH} items")
        return [_bounded_number(item, key) for item in value]
    return _bounded_number(value, key)


def _checked_metrics(metrics: Mapping[Any, Any]) -> dict[str, MetricValue]:
    """The rules both formats share: bounded, string-keyed, flat and numeric."""
    if len(metrics) > MAX_KEYS_PER_ROUND:
        raise _Invalid(f"has more than {MAX_KEYS_PER_ROUND} metrics")
    checked: dict[str, MetricValue] = {}
    for key, value in metrics.items():
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_METRIC_NAME_LENGTH:
            raise _Invalid(f"metric names must be 1 to {MAX_METRIC_NAME_LENGTH} characters")
        checked[key] = _checked_value(_shorten(key), value)
    return checked


class _LiteralParser:
    """Reads `{'name': number | np.float64(x) | [numbers], ...}` and nothing else."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0

    def fail(self, reason: str) -> _Invalid:
        return _Invalid(f"{reason} at character {self.position}")

    def skip_whitespace(self) -> None:
        while self.position < len(self.text) and self.text[self.position] in _WHITESPACE:
            self.position += 1

    def peek(self) -> str:
        self.skip_whitespace()
        return self.text[self.position] if self.position < len(self.text) else ""

    def expect(self, character: str) -> None:
        if self.peek() != character:
            found = _shorten(self.peek()) if self.peek() else "the end"
            raise self.fail(f"expected {character!r} but found {found}")
        self.position += 1

    def parse(self) -> dict[str, MetricValue]:
        mapping: dict[str, MetricValue] = {}
        self.expect("{")
        while self.peek() != "}":
            if len(mapping) >= MAX_KEYS_PER_ROUND:
                raise _Invalid(f"has more than {MAX_KEYS_PER_ROUND} metrics")
            key = self.key()
            if key in mapping:
                raise self.fail(f"repeats the metric {_shorten(key)}")
            self.expect(":")
            mapping[key] = self.value(key)
            if self.peek() != ",":
                break
            self.position += 1
        self.expect("}")
        if self.peek():
            raise self.fail("unexpected text after the closing '}'")
        return mapping

    def key(self) -> str:
        quote = self.peek()
        if quote not in ("'", '"'):
            raise self.fail("expected a quoted metric name")
        start = self.position + 1
        end = self.text.find(quote, start, start + MAX_METRIC_NAME_LENGTH + 1)
        if end < 0:
            raise self.fail(
                f"metric names must be quoted and at most {MAX_METRIC_NAME_LENGTH} characters"
            )
        key = self.text[start:end]
        if not key or "\\" in key or not key.isprintable():
            raise self.fail("metric names must be non-empty and printable, without escapes")
        self.position = end + 1
        return key

    def value(self, key: str) -> MetricValue:
        if self.peek() in ("{", "("):
            raise self.fail(
                f"{_shorten(key)} holds a nested structure; only flat values are allowed"
            )
        if self.peek() == "[":
            self.position += 1
            items: list[Number] = []
            while self.peek() != "]":
                if len(items) >= MAX_ROUND_LIST_LENGTH:
                    raise self.fail(f"{_shorten(key)} has more than {MAX_ROUND_LIST_LENGTH} items")
                items.append(self.scalar(allow_none=False))
                if self.peek() != ",":
                    break
                self.position += 1
            self.expect("]")
            return items
        return self.scalar(allow_none=True)

    def scalar(self, allow_none: bool) -> Number | None:
        self.skip_whitespace()
        if _NON_FINITE.match(self.text, self.position):
            raise self.fail("NaN and infinity are not allowed")
        name = _NAME.match(self.text, self.position)
        if name is None:
            return self.number()
        word = name.group()
        self.position = name.end()
        if word == "None" and allow_none:
            return None
        if word not in ("np", "numpy"):
            raise self.fail(
                f"{_shorten(word)} is not allowed; values must be numbers, numpy scalars "
                "such as np.float64(0.5), or lists of numbers"
            )
        self.expect(".")
        self.skip_whitespace()
        kind = _NAME.match(self.text, self.position)
        if kind is None or kind.group() not in NUMPY_FLOATS | NUMPY_INTEGERS:
            raise self.fail("only np.float64, np.float32, np.int64 and np.int32 are allowed")
        self.position = kind.end()
        self.expect("(")
        number = self.number()
        self.expect(")")
        if kind.group() in NUMPY_FLOATS:
            return float(number)
        if isinstance(number, float):
            raise self.fail(f"np.{kind.group()} needs an integer")
        return number

    def number(self) -> Number:
        self.skip_whitespace()
        if _NON_FINITE.match(self.text, self.position):
            raise self.fail("NaN and infinity are not allowed")
        match = _NUMBER.match(self.text, self.position)
        if match is None:
            found = (
                _shorten(self.text[self.position : self.position + 10])
                if self.peek()
                else "the end"
            )
            raise self.fail(f"expected a number but found {found}")
        token = match.group()
        if len(token) > MAX_NUMBER_LENGTH:
            raise self.fail(f"a number longer than {MAX_NUMBER_LENGTH} characters")
        self.position = match.end()
        if any(character in token for character in ".eE"):
            number: Number = float(token)
            if not math.isfinite(number):
                raise self.fail(f"{token} is out of range")
            return number
        number = int(token)
        if abs(number) > MAX_ABS_INTEGER:
            raise self.fail(f"the integer {token} is beyond ±2^63-1")
        return number


def _literal_metrics(text: str) -> dict[str, MetricValue]:
    if len(text) > MAX_ROUND_TEXT_LENGTH:
        raise _Invalid(
            f"the metrics string is {len(text):,} characters; "
            f"the limit is {MAX_ROUND_TEXT_LENGTH:,}"
        )
    return _checked_metrics(_LiteralParser(text).parse())


def parse_metrics_literal(text: str) -> dict[str, MetricValue]:
    """Parse a legacy per-round string such as "{'server_loss': 0.69, 'server_cm_tp': 475.0}"."""
    try:
        return _literal_metrics(text)
    except _Invalid as problem:
        raise ResultsFileError(f"Invalid metrics string: {problem}.") from None


def _round_number(key: Any) -> int:
    if not isinstance(key, str) or len(key) > 7 or not _ROUND_KEY.fullmatch(key):
        raise _Invalid("round keys must be non-negative integers written without leading zeros")
    number = int(key)
    if number > MAX_ROUND:
        raise _Invalid(f"round numbers must be at most {MAX_ROUND:,}")
    return number


def _round_metrics(metrics: Any) -> dict[str, MetricValue]:
    if isinstance(metrics, str):
        return _literal_metrics(metrics)
    if isinstance(metrics, dict):
        return _checked_metrics(metrics)
    raise _Invalid("the metrics must be a JSON object or a metrics string")


def _evaluation(round_number: int, metrics: Mapping[str, MetricValue]) -> dict[str, Any]:
    """Map the server's metric names onto the evaluation fields; the rest are additional."""
    evaluation: dict[str, Any] = {"round_number": round_number}
    additional: dict[str, Number | list[Number]] = {}
    for key, value in metrics.items():
        field = RESULTS_FILE_FIELDS.get(key)
        if field is None:
            if value is not None:
                additional[key] = value
            continue
        if isinstance(value, list):
            raise _Invalid(f"{key} must be a single number, not a list")
        if field in COUNT_FIELDS and isinstance(value, float):
            if not value.is_integer():
                raise _Invalid(f"{key} is a count and must be a whole number, not {value}")
            value = int(value)
        evaluation[field] = value
    if additional:
        evaluation["additional_metrics"] = additional
    return evaluation


def _range_problem(value: Number, low: Number, high: Number) -> str | None:
    """The batch route's wording of a value out of [low, high], or None when inside."""
    if low <= value <= high:
        return None
    return f"Must be greater than or equal to {low} and less than or equal to {high}"


def _key_problem(key: str) -> str | None:
    """Why a database could not store an additional metric's name, or None."""
    if "\x00" in key:
        return "Must not contain the NUL character (\\u0000)"
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return "Must be valid Unicode text (no unpaired surrogate)"
    return None


def _additional_problem(additional: Mapping[str, MetricValue]) -> str | None:
    """The batch route's check of additional_metrics beyond what the parser ensured."""
    problems = [problem for problem in map(_key_problem, additional) if problem]
    if problems:
        return " ".join(problems)
    for key, value in additional.items():
        numbers = value if isinstance(value, list) else [value]
        if any(abs(number) > MAX_ABS_NUMBER for number in numbers):
            return f"{key} must lie within ±2^53"
    return None


def _validated(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The batch route's rules for a server evaluation, worded with the file's names.

    The parser has already made every value a number within ±2^63 (counts whole), so
    what is left are the bounds of SPEC §4.0, in the order the batch route checks them.
    """
    problems: dict[str, str] = {}
    loss = LOSS_METRIC.server_field
    if evaluation.get(loss) is not None:
        evaluation[loss] = float(evaluation[loss])
        problem = _range_problem(evaluation[loss], -MAX_ABS_NUMBER, MAX_ABS_NUMBER)
        if problem:
            problems[loss] = problem
    for field in SCORE_FIELDS:
        if evaluation.get(field) is not None:
            evaluation[field] = float(evaluation[field])
            problem = _range_problem(evaluation[field], 0.0, 1.0)
            if problem:
                problems[field] = problem
    for field in (*SERVER_COUNT_FIELDS, NUM_SAMPLES_FIELD):
        if evaluation.get(field) is not None:
            problem = _range_problem(evaluation[field], 0, MAX_COUNT)
            if problem:
                problems[field] = problem
    if evaluation.get("additional_metrics") is not None:
        problem = _additional_problem(evaluation["additional_metrics"])
        if problem:
            problems["additional_metrics"] = problem
    counts = [evaluation.get(field) for field in SERVER_COUNT_FIELDS]
    if not problems and None not in counts and sum(counts) > MAX_COUNT:
        problems[NUM_SAMPLES_FIELD] = (
            f"The four counts add up to {sum(counts):,}; a confusion matrix holds at "
            f"most {MAX_COUNT:,} samples"
        )
    if problems:
        raise _Invalid(
            "; ".join(
                f"{KEY_FOR_FIELD.get(field, field)}: {text}" for field, text in problems.items()
            )
        )
    return evaluation


def parse_round(key: Any, metrics: Any) -> dict[str, Any]:
    """One round of the server section as a validated server evaluation."""
    try:
        return _validated(_evaluation(_round_number(key), _round_metrics(metrics)))
    except _Invalid as problem:
        raise ResultsFileError(
            f"Round {_shorten(str(key))} is invalid: {problem}.",
            {SERVER_SECTION: {str(key)[:40]: [str(problem)]}},
        ) from None


def parse_results_document(document: Any) -> list[dict[str, Any]]:
    """The validated server evaluations of a results document, by ascending round."""
    if not isinstance(document, dict):
        raise ResultsFileError("The results document must be a JSON object.")
    section = document.get(SERVER_SECTION)
    if not isinstance(section, dict) or not section:
        raise ResultsFileError(
            f"The results document has no server evaluations: '{SERVER_SECTION}' must be "
            "a non-empty object mapping round numbers to metrics."
        )
    if len(section) > MAX_RESULTS_ROUNDS:
        raise ResultsFileError(f"The results document has more than {MAX_RESULTS_ROUNDS:,} rounds.")
    evaluations: list[dict[str, Any]] = []
    problems: dict[str, list[str]] = {}
    for key, metrics in section.items():
        try:
            evaluations.append(parse_round(key, metrics))
        except ResultsFileError as error:
            problems.update(error.errors[SERVER_SECTION])
    if problems:
        raise ResultsFileError(_problems_message(problems), {SERVER_SECTION: problems})
    return sorted(evaluations, key=lambda evaluation: evaluation["round_number"])


def _problems_message(problems: Mapping[str, list[str]]) -> str:
    shown = [
        f"round {_shorten(key)}: {reasons[0]}"
        for key, reasons in list(problems.items())[:MESSAGE_PROBLEM_LIMIT]
    ]
    more = len(problems) - len(shown)
    suffix = f" (and {more} more rounds)" if more > 0 else ""
    return f"Invalid results document, nothing was written: {'; '.join(shown)}{suffix}."


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def load_results_json(raw: bytes, name: str) -> Any:
    """Decode a results file's bytes as strict JSON (NaN and Infinity are refused)."""
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError included
        raise ResultsFileError(f"{name} is not valid JSON: {error}.") from None
    except RecursionError:
        raise ResultsFileError(f"{name} is nested too deeply to be a results file.") from None
