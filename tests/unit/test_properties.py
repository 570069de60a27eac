"""Properties of the pure pieces, checked with Hypothesis (no app, no database).

Seeded (derandomized) so CI is reproducible; RUNS_PROPERTY_EXAMPLES=5000 explores
further (README, "Fuzzing for longer").
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from werkzeug.exceptions import HTTPException

from runs_service.api.blueprint import check_document, may_need_check
from runs_service.catalogue import MAX_KEYS_PER_ROUND
from runs_service.catalogue import MAX_ROUND_LIST_LENGTH as MAX_LIST_LENGTH
from runs_service.services.definitions import (
    FORMULA_PREFIXES,
    confusion_statistics,
    csv_safe_cell,
    wilson_interval,
)
from runs_service.services.results_file import (
    MAX_ABS_INTEGER,
    ResultsFileError,
    parse_metrics_literal,
    parse_results_document,
    parse_round,
)

EXAMPLES = int(os.environ.get("RUNS_PROPERTY_EXAMPLES", "100"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
MAX_COUNT = 2**31 - 1

# --- the legacy results-string parser ---------------------------------------------------

NAME_START = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
metric_names = st.builds(
    str.__add__,
    st.sampled_from(NAME_START),
    st.text(alphabet=NAME_START + "0123456789", max_size=40),
)
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
bounded_ints = st.integers(-MAX_ABS_INTEGER, MAX_ABS_INTEGER)
scalars = st.one_of(finite_floats, bounded_ints)
metric_values = st.one_of(scalars, st.lists(scalars, max_size=8))
flat_mappings = st.dictionaries(metric_names, metric_values, max_size=8)


def numpy_repr(value: int | float) -> str:
    """How Flower's MetricRecord repr spells a numpy scalar."""
    return f"np.float64({value!r})" if isinstance(value, float) else f"np.int64({value})"


def render(mapping: dict[str, Any], draw_numpy: list[bool], quote: str) -> str:
    """The mapping as the federated server writes it, numpy scalars included."""
    parts = []
    flags = iter(draw_numpy)
    for key, value in mapping.items():
        if isinstance(value, list):
            text = "[" + ", ".join(repr(item) for item in value) + "]"
        elif next(flags, False):
            text = numpy_repr(value)
        else:
            text = repr(value)
        parts.append(f"{quote}{key}{quote}: {text}")
    return "{" + ", ".join(parts) + "}"


def same_number(parsed: Any, original: Any) -> bool:
    if isinstance(original, list):
        return len(parsed) == len(original) and all(map(same_number, parsed, original))
    return type(parsed) is type(original) and parsed == original


@PROPERTY
@given(flat_mappings, st.lists(st.booleans(), max_size=12), st.sampled_from(["'", '"']))
def test_literal_parser_reads_every_flat_mapping_of_numbers_exactly(mapping, numpy, quote):
    parsed = parse_metrics_literal(render(mapping, numpy, quote))
    assert list(parsed) == list(mapping)
    for key, value in mapping.items():
        assert same_number(parsed[key], value), (key, parsed[key], value)


non_numbers = st.one_of(
    st.text(max_size=10).map(repr),
    st.just("True"),
    st.just("float('nan')"),
    st.just("nan"),
    st.just("inf"),
    st.just("-Infinity"),
    st.just("1e999"),
    st.just("__import__('os')"),
    st.just("np.array([1])"),
    st.just("np.int64(1.5)"),
    flat_mappings.map(repr),
    st.lists(scalars, max_size=3).map(lambda items: repr(tuple(items))),
    st.lists(st.lists(scalars, max_size=2), min_size=1, max_size=2).map(repr),
    st.sets(st.integers(), min_size=1, max_size=3).map(repr),
    st.integers(MAX_ABS_INTEGER + 1, 2**80).map(str),
    st.just("1" * 70),
)


@PROPERTY
@given(flat_mappings, metric_names, non_numbers)
def test_literal_parser_rejects_anything_but_numbers_as_values(mapping, key, bad_value):
    assume(key not in mapping)
    text = render(mapping, [], "'")[:-1]
    text += (", " if mapping else "") + f"'{key}': {bad_value}}}"
    with pytest.raises(ResultsFileError):
        parse_metrics_literal(text)


@PROPERTY
@given(
    st.one_of(
        st.lists(metric_values, max_size=4).map(repr),
        metric_values.map(repr),
        st.text(max_size=20).map(repr),
        st.just("{'a': 1"),
        st.just("{'a' 1}"),
        st.just("{'a': 1,, 'b': 2}"),
        st.just("{'a': 1} trailing"),
        st.just("{'a': 1, 'a': 2}"),
        st.just("{'': 1}"),
        st.just("{'a\\nb': 1}"),
        st.just("{a: 1}"),
        st.just("{1: 1}"),
        st.just("{'" + "x" * 300 + "': 1}"),
        st.just("{" + ", ".join(f"'k{i}': {i}" for i in range(MAX_KEYS_PER_ROUND + 1)) + "}"),
        st.just("{'a': [" + ", ".join("1" for _ in range(MAX_LIST_LENGTH + 1)) + "]}"),
    )
)
def test_literal_parser_rejects_everything_that_is_not_a_flat_mapping(text):
    with pytest.raises(ResultsFileError):
        parse_metrics_literal(text)


@PROPERTY
@given(
    flat_mappings,
    st.data(),
)
def test_literal_parser_raises_only_its_own_error_on_corrupted_input(mapping, data):
    text = render(mapping, data.draw(st.lists(st.booleans(), max_size=12)), "'")
    position = data.draw(st.integers(0, len(text)))
    cut = data.draw(st.integers(0, 3))
    insert = data.draw(
        st.text(alphabet="{}[](),:'\"._-+eE0123456789npfloatin \\\n\x00", max_size=4)
    )
    corrupted = text[:position] + insert + text[position + cut :]
    try:
        parsed = parse_metrics_literal(corrupted)
    except ResultsFileError as error:
        assert str(error).startswith("Invalid metrics string:")
        return
    assert isinstance(parsed, dict)
    for value in parsed.values():
        numbers = value if isinstance(value, list) else [value]
        for number in numbers:
            assert number is None or (
                isinstance(number, int | float)
                and not isinstance(number, bool)
                and math.isfinite(number)
            )


@PROPERTY
@given(st.text(max_size=300))
def test_literal_parser_raises_only_its_own_error_on_any_text(text):
    try:
        parse_metrics_literal(text)
    except ResultsFileError:
        pass


json_leaves = st.one_of(st.none(), st.booleans(), scalars, st.floats(), st.text(max_size=12))
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
round_metrics = st.one_of(
    st.dictionaries(
        st.sampled_from(["server_loss", "server_accuracy", "server_cm_tp", "num_samples", "extra"])
        | st.text(max_size=6),
        json_values,
        max_size=5,
    ),
    flat_mappings.map(repr),
    json_values,
)


@PROPERTY
@given(st.one_of(st.text(max_size=8), st.integers().map(str)), round_metrics)
def test_round_parser_raises_only_its_own_error(key, metrics):
    try:
        evaluation = parse_round(key, metrics)
    except ResultsFileError as error:
        assert error.status_code == 422
        return
    assert 0 <= evaluation["round_number"] <= 10**6
    for name in ("accuracy", "precision", "recall", "f1_score", "auroc"):
        assert evaluation.get(name) is None or 0.0 <= evaluation[name] <= 1.0


@PROPERTY
@given(json_values | st.dictionaries(st.just("evaluate_metrics_serverapp"), json_values))
def test_document_parser_raises_only_its_own_error(document):
    try:
        parse_results_document(document)
    except ResultsFileError:
        pass


# --- the request parser's check of every JSON body -----------------------------------------

any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=6)
body_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    any_text,
    st.sampled_from(["\x00", "a\x00", "\ud800", "ok\udfff"]),
)
bodies = st.recursive(
    body_leaves,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(any_text | st.sampled_from(["\x00", "\ud800"]), children, max_size=3)
    ),
    max_leaves=15,
)


def storable(value: Any) -> bool:
    if isinstance(value, dict):
        return all(storable(key) and storable(item) for key, item in value.items())
    if isinstance(value, list):
        return all(map(storable, value))
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return "\x00" not in value and not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    return True


@PROPERTY
@given(bodies)
def test_body_check_passes_exactly_what_a_database_stores(document):
    try:
        check_document(document)
    except HTTPException as error:
        assert error.code in (400, 422)
        assert not storable(document)
        return
    assert storable(document)


def refused(text: str) -> bool:
    try:
        check_document(json.loads(text))
    except HTTPException:
        return True
    return False


@PROPERTY
@given(bodies, st.booleans())
def test_the_body_screen_never_skips_a_document_the_check_refuses(document, ascii_only):
    try:
        text = json.dumps(document, ensure_ascii=ascii_only, allow_nan=False)
    except ValueError:
        assume(False)  # infinities cannot be spelled in JSON but as numbers (below)
    if refused(text):
        assert may_need_check(text)


digit_runs = st.integers(1, 400).flatmap(
    lambda length: st.text(alphabet="0123456789", min_size=length, max_size=length)
)
exponents = st.sampled_from(["", "e", "E", "e+", "e-", "E+"]).flatmap(
    lambda mark: st.just("") if not mark else st.integers(0, 999).map(f"{mark}{{}}".format)
)
number_literals = st.builds(
    "{}{}{}{}".format,
    st.sampled_from(["", "-"]),
    digit_runs,
    st.sampled_from(["", ".0", ".5", ".000001"]),
    exponents,
)


@PROPERTY
@given(number_literals)
@example("1" + "0" * 249 + "e60")  # 1e309 from a 250-digit run and a 2-digit exponent
@example("2" + "0" * 308 + ".0")  # 2e308 without an exponent
@example("1e309")
def test_the_body_screen_catches_every_number_beyond_float_range(literal):
    text = f'{{"value": [{literal}]}}'
    try:
        json.loads(text)
    except ValueError:
        assume(False)  # not a JSON number (a leading zero, say): a 400 either way
    if refused(text):
        assert may_need_check(text)


# --- CSV cell escaping --------------------------------------------------------------------


def read_back(cell: str) -> str:
    """The cell as a spreadsheet receives it after a CSV round trip."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow([cell, "end"])
    return next(csv.reader(io.StringIO(buffer.getvalue())))[0]


@PROPERTY
@given(st.text())
def test_csv_text_cells_never_start_a_formula(text):
    cell = csv_safe_cell(text)
    assert not cell.startswith(FORMULA_PREFIXES)
    # Nothing is lost: a protected cell is the text behind one apostrophe.
    assert cell == text or (cell == "'" + text and text.startswith(FORMULA_PREFIXES))
    assert read_back(cell) == cell


@PROPERTY
@given(st.sampled_from(FORMULA_PREFIXES), st.text())
def test_csv_formula_text_is_always_neutralised(prefix, rest):
    assert csv_safe_cell(prefix + rest) == "'" + prefix + rest


@PROPERTY
@given(st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False)))
def test_csv_numbers_are_written_as_numbers(number):
    cell = csv_safe_cell(number)
    assert type(number)(cell) == number
    assert read_back(cell) == cell


def test_csv_missing_value_is_an_empty_cell():
    assert csv_safe_cell(None) == ""


# --- confusion-matrix statistics ---------------------------------------------------------

counts = st.integers(0, MAX_COUNT)
small_counts = st.integers(0, 50)
any_counts = st.one_of(counts, small_counts)
STATISTICS = ("sensitivity", "specificity", "precision_cm", "accuracy_cm", "f1_cm")


@PROPERTY
@given(any_counts, any_counts, any_counts, any_counts)
def test_confusion_statistics_are_bounded_and_intervals_hold_the_estimate(tp, tn, fp, fn):
    stats = confusion_statistics(tp, tn, fp, fn)
    assert stats["total"] == tp + tn + fp + fn
    for name in STATISTICS:
        assert 0.0 <= stats[name] <= 1.0, name
        assert stats[name] == round(stats[name], 4), name
    for name, successes, total in (
        ("sensitivity", tp, tp + fn),
        ("specificity", tn, tn + fp),
    ):
        interval = stats[f"{name}_ci95"]
        if total == 0:
            assert interval is None
            assert stats[name] == 0.0
            continue
        low, high = interval
        assert 0.0 <= low <= stats[name] <= high <= 1.0, (name, interval, stats[name])
        assert stats[name] == round(successes / total, 4)


@PROPERTY
@given(st.integers(1, MAX_COUNT), st.data())
def test_wilson_interval_contains_the_observed_proportion(total, data):
    successes = data.draw(st.integers(0, total))
    low, high = wilson_interval(successes, total)
    assert 0.0 <= low <= round(successes / total, 4) <= high <= 1.0


@PROPERTY
@given(st.integers(1, 10_000), st.data())
def test_wilson_interval_narrows_as_samples_grow(total, data):
    successes = data.draw(st.integers(0, total))
    low, high = wilson_interval(successes, total)
    wide_low, wide_high = wilson_interval(successes * 10, total * 10) or (0.0, 1.0)
    assert wide_high - wide_low <= high - low + 1e-4


@PROPERTY
@given(
    st.tuples(any_counts, any_counts, any_counts, any_counts),
    st.integers(0, 3),
    st.one_of(st.integers(max_value=-1), st.floats(0.01, 0.99).map(lambda f: 1 + f)),
)
def test_confusion_statistics_reject_negative_or_fractional_counts(counts_, position, bad):
    values = list(counts_)
    values[position] = bad
    with pytest.raises(ValueError):
        confusion_statistics(*values)
