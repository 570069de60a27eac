"""Unit tests of the bounded results-document parser (no app, no database)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from runs_service.catalogue import MAX_KEYS_PER_ROUND, MAX_ROUND_TEXT_LENGTH
from runs_service.catalogue import MAX_ROUND_LIST_LENGTH as MAX_LIST_LENGTH
from runs_service.schemas.ingest import ServerEvaluationSchema
from runs_service.services.results_file import (
    COUNT_FIELDS,
    KEY_FOR_FIELD,
    SCORE_FIELDS,
    SERVER_SECTION,
    ResultsFileError,
    _Invalid,
    _validated,
    load_results_json,
    parse_metrics_literal,
    parse_results_document,
)

EXAMPLE = Path(__file__).parent.parent / "data" / "results_example_legacy.json"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{}", {}),
        ("{'a': 1}", {"a": 1}),
        (
            "{'a': -1, 'b': 0.5, 'c': -2.5e-3, 'd': 1E5, 'e': .5, 'f': 3.}",
            {"a": -1, "b": 0.5, "c": -0.0025, "d": 100000.0, "e": 0.5, "f": 3.0},
        ),
        ("{'a': 475.0}", {"a": 475.0}),
        ("{\"a\": 1, 'b': 2,}", {"a": 1, "b": 2}),
        ("{'a': np.float64(0.9263), 'b': np.int64(475)}", {"a": 0.9263, "b": 475}),
        (
            "{'a': np.float32(0.5), 'b': np.int32(-3), 'c': numpy.float64(1)}",
            {"a": 0.5, "b": -3, "c": 1.0},
        ),
        ("{'a': [1, 2.5, np.float64(3.0)], 'b': []}", {"a": [1, 2.5, 3.0], "b": []}),
        ("{'a': None}", {"a": None}),
        ("  {\n 'num-examples' :\t300 }  ", {"num-examples": 300}),
        ("{'a': 9223372036854775807}", {"a": 2**63 - 1}),
    ],
)
def test_legacy_literal_accepts_flat_numeric_mappings(text, expected):
    assert parse_metrics_literal(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{'a': {'b': 1}}", "nested structure"),
        ("{'a': (1, 2)}", "nested structure"),
        ("{'a': [[1]]}", "expected a number"),
        ("{'a': __import__('os')}", "'__import__' is not allowed"),
        ("{'a': os.system('x')}", "'os' is not allowed"),
        ("{'a': np.array([1])}", "only np.float64"),
        ("{'a': np.int64(1.5)}", "needs an integer"),
        ("{'a': 99999999999999999999999}", "beyond"),
        ("{'a': " + "9" * 100 + "}", "longer than"),
        ("{'a': nan}", "NaN"),
        ("{'a': -inf}", "NaN"),
        ("{'a': np.float64(nan)}", "NaN"),
        ("{'a': 1e400}", "out of range"),
        ("{'a': 'text'}", "expected a number"),
        ("{'a': True}", "'True' is not allowed"),
        ("{'a': [None]}", "'None' is not allowed"),
        ("{'a': 1, 'a': 2}", "repeats the metric"),
        ("{'a\\'b': 1}", "without escapes"),
        ("{'': 1}", "non-empty"),
        ("{a: 1}", "quoted metric name"),
        ("{'a': 1} + 1", "after the closing"),
        ("{'a': 1", "expected '}'"),
        ("[1, 2]", "expected '{'"),
        ("", "expected '{'"),
        ("{'" + "k" * 200 + "': 1}", "at most 128 characters"),
    ],
)
def test_legacy_literal_rejects_anything_else_with_a_reason(text, reason):
    with pytest.raises(ResultsFileError, match="Invalid metrics string") as caught:
        parse_metrics_literal(text)
    assert reason in caught.value.message


def test_legacy_literal_bounds_length_keys_and_lists():
    with pytest.raises(ResultsFileError, match="the limit is 65,536"):
        parse_metrics_literal("{'a': [" + "1," * MAX_ROUND_TEXT_LENGTH + "]}")
    many_keys = "{" + ", ".join(f"'k{i}': {i}" for i in range(MAX_KEYS_PER_ROUND + 1)) + "}"
    with pytest.raises(ResultsFileError, match="more than 128 metrics"):
        parse_metrics_literal(many_keys)
    long_list = "{'a': [" + ", ".join("1" for _ in range(MAX_LIST_LENGTH + 1)) + "]}"
    with pytest.raises(ResultsFileError, match="more than 1000 items"):
        parse_metrics_literal(long_list)


def _document(rounds):
    return {SERVER_SECTION: rounds}


def test_example_file_parses_into_validated_evaluations():
    evaluations = parse_results_document(json.loads(EXAMPLE.read_text()))
    assert [evaluation["round_number"] for evaluation in evaluations] == [0, 1, 2, 3, 4, 5]
    assert evaluations[0] == {
        "round_number": 0,
        "loss": 0.6895,
        "accuracy": 0.5,
        "precision": 0.5,
        "recall": 1.0,
        "f1_score": 0.6667,
        "auroc": 0.5,
        "true_positives": 475,
        "true_negatives": 0,
        "false_positives": 475,
        "false_negatives": 0,
    }
    assert all(isinstance(evaluation["true_positives"], int) for evaluation in evaluations)


def test_legacy_strings_and_json_objects_give_the_same_evaluations():
    legacy = json.loads(EXAMPLE.read_text())
    as_objects = {
        SERVER_SECTION: {
            key: parse_metrics_literal(text) for key, text in legacy[SERVER_SECTION].items()
        }
    }
    assert parse_results_document(as_objects) == parse_results_document(legacy)


def test_other_numeric_keys_go_to_additional_metrics():
    (evaluation,) = parse_results_document(
        _document({"3": "{'server_loss': 0.4, 'num-examples': 300, 'per_class': [0.5, 0.75]}"})
    )
    assert evaluation == {
        "round_number": 3,
        "loss": 0.4,
        "additional_metrics": {"num-examples": 300, "per_class": [0.5, 0.75]},
    }


def test_missing_keys_are_absent_not_zero():
    (evaluation,) = parse_results_document(_document({"1": {"server_accuracy": 0.8}}))
    assert evaluation == {"round_number": 1, "accuracy": 0.8}


@pytest.mark.parametrize(
    ("rounds", "reason"),
    [
        ({"1": {"server_cm_tp": 475.5}}, "server_cm_tp is a count and must be a whole number"),
        ({"1": "{'server_cm_fn': -1.0}"}, "server_cm_fn: Must be greater than or equal to 0"),
        ({"1": {"num_samples": 2**31}}, "num_samples: Must be"),
        ({"1": "{'server_accuracy': 1.5}"}, "server_accuracy: Must be"),
        ({"1": {"server_f1": -0.1}}, "server_f1: Must be"),
        ({"1": {"server_loss": [0.5]}}, "server_loss must be a single number"),
        ({"1": {"server_loss": "0.5"}}, "must be a number"),
        ({"1": {"server_loss": True}}, "must be a number"),
        ({"1": {"x": {"y": 1}}}, "must be a number"),
        ({"1": {"x": [[1]]}}, "must be a number"),
        ({"1": {"x": 2**64}}, "beyond"),
        ({"1": {"x": float("nan")}}, "finite"),
        ({"1": 0.5}, "must be a JSON object or a metrics string"),
        ({"one": {}}, "round keys must be non-negative integers"),
        ({"-1": {}}, "round keys must be non-negative integers"),
        ({"01": {}}, "round keys must be non-negative integers"),
        ({"1.0": {}}, "round keys must be non-negative integers"),
        ({"1000001": {}}, "at most 1,000,000"),
        ({"1": {"k" * 200: 1}}, "metric names must be 1 to 128 characters"),
    ],
)
def test_an_invalid_round_fails_the_document_naming_round_and_reason(rounds, reason):
    document = _document({"0": {"server_loss": 0.7}, **rounds})
    with pytest.raises(ResultsFileError) as caught:
        parse_results_document(document)
    round_key = next(iter(rounds))
    assert f"round {round_key!r}" in caught.value.message
    assert reason in caught.value.message
    assert reason in caught.value.errors[SERVER_SECTION][round_key][0]
    assert caught.value.status_code == 422


def test_every_bad_round_is_reported():
    document = _document({str(n): {"server_accuracy": 2.0} for n in range(5)})
    with pytest.raises(ResultsFileError, match=r"\(and 2 more rounds\)") as caught:
        parse_results_document(document)
    assert sorted(caught.value.errors[SERVER_SECTION]) == ["0", "1", "2", "3", "4"]


@pytest.mark.parametrize(
    "document",
    [[], "text", None, {}, {"train_metrics_clientapp": {}}, _document({}), _document([])],
)
def test_a_document_without_server_evaluations_is_invalid(document):
    with pytest.raises(ResultsFileError):
        parse_results_document(document)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"a": NaN}', "NaN is not allowed"),
        (b'{"a": -Infinity}', "-Infinity is not allowed"),
        (b"{'a': 1}", "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)
def test_results_json_is_strict(raw, reason):
    with pytest.raises(ResultsFileError, match=reason):
        load_results_json(raw, "results_1.json")


numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=20)),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
literal_pieces = st.lists(
    st.sampled_from(
        [
            "{",
            "}",
            "[",
            "]",
            "(",
            ")",
            ",",
            ":",
            "'a'",
            '"b"',
            "'server_cm_tp'",
            "np",
            ".",
            "float64",
            "int64",
            "1",
            "-2.5",
            "1e400",
            "nan",
            "None",
            " ",
            "__import__",
            "9" * 30,
        ]
    ),
    max_size=30,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), literal_pieces))
def test_literal_parser_raises_only_its_own_error(text):
    try:
        result = parse_metrics_literal(text)
    except ResultsFileError:
        return
    assert isinstance(result, dict)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.one_of(st.integers(-5, 2_000_000).map(str), st.text(max_size=6)),
        st.one_of(json_values, literal_pieces),
        max_size=5,
    )
)
def test_document_parser_raises_only_its_own_error(rounds):
    try:
        evaluations = parse_results_document(_document(rounds))
    except ResultsFileError:
        return
    assert len(evaluations) == len(rounds)


# --- the plain validation of a round equals the batch route's schema -----------------------


def _schema_verdict(evaluation):
    """What the batch route's ServerEvaluationSchema says, worded as the parser words it."""
    try:
        return ServerEvaluationSchema().load(evaluation)
    except ValidationError as error:
        reasons = []
        for field, problems in error.normalized_messages().items():
            name = KEY_FOR_FIELD.get(field, field)
            text = " ".join(str(problem).rstrip(".") for problem in _flat(problems))
            reasons.append(f"{name}: {text}")
        return "; ".join(reasons)


def _flat(problems):
    if isinstance(problems, dict):
        return [item for value in problems.values() for item in _flat(value)]
    if isinstance(problems, list):
        return [item for value in problems for item in _flat(value)]
    return [problems]


def _plain_verdict(evaluation):
    try:
        return _validated(dict(evaluation))
    except _Invalid as problem:
        return str(problem)


wide_integers = st.integers(-(2**63) + 1, 2**63 - 1)
edge_integers = st.sampled_from([0, 1, -1, 2**31 - 1, 2**31, 2**53, 2**53 + 1, -(2**53) - 1])
parsed_numbers = st.one_of(
    wide_integers, edge_integers, st.floats(allow_nan=False, allow_infinity=False)
)
count_values = st.one_of(wide_integers, edge_integers, st.integers(0, 2**31 - 1))
evaluation_fields = {
    **{field: st.none() | parsed_numbers for field in ("loss", *SCORE_FIELDS)},
    **{field: st.none() | count_values for field in COUNT_FIELDS},
    "additional_metrics": st.dictionaries(
        st.text(min_size=1, max_size=8) | st.sampled_from(["a\x00b", "\ud800", "ok"]),
        parsed_numbers | st.lists(parsed_numbers, max_size=3),
        min_size=1,
        max_size=4,
    ),
}


@settings(max_examples=300)
@given(
    st.fixed_dictionaries(
        {"round_number": st.integers(0, 10**6)},
        optional=evaluation_fields,
    )
)
def test_a_rounds_plain_validation_gives_the_batch_routes_verdict(evaluation):
    assert _plain_verdict(evaluation) == _schema_verdict(evaluation)


@pytest.mark.parametrize(
    "evaluation",
    [
        {"round_number": 1, "true_positives": 2**31 - 1, "true_negatives": 1,
         "false_positives": 0, "false_negatives": 0},
        {"round_number": 1, "loss": 2**60, "accuracy": 2, "true_positives": -1},
        {"round_number": 1, "additional_metrics": {"a\x00": 1, "b": 2**60}},
        {"round_number": 1, "additional_metrics": {"b": [1, 2**60], "c": 2**61}},
        {"round_number": 1, "loss": 1, "accuracy": 1, "auroc": 0},
    ],
)  # fmt: skip
def test_a_rounds_plain_validation_on_the_edges(evaluation):
    assert _plain_verdict(evaluation) == _schema_verdict(evaluation)
