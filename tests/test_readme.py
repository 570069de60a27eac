"""Every `curl` example of README.md gives the answer the README shows.

How examples are run and compared: tests/readme_examples.py. When an answer changes on
purpose, `.venv/bin/python -m tests.readme_examples --write` rewrites the README.
"""

from __future__ import annotations

import os

import pytest

from tests.readme_examples import (
    README,
    DemoDatabases,
    Example,
    match_json,
    output_problems,
    parse_curl,
    parse_examples,
    parse_json_pattern,
    run_example,
)

EXAMPLES = parse_examples(README.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def databases(tmp_path_factory: pytest.TempPathFactory):
    demo = DemoDatabases(
        tmp_path_factory.mktemp("readme"), os.environ.get("RUNS_TEST_DATABASE_URL") or None
    )
    yield demo
    demo.close()


def test_the_readme_has_curl_examples_of_reads_and_writes():
    methods = {parse_curl(command.text).method for ex in EXAMPLES for command in ex.commands}
    assert len(EXAMPLES) >= 10
    assert {"GET", "POST", "PATCH"} <= methods


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.name for example in EXAMPLES])
def test_readme_example_gives_the_answer_shown(example: Example, databases: DemoDatabases):
    failures = []

    def check(command, request, answer):
        problems = output_problems(command, request, answer)
        if problems:
            failures.append(f"README.md:{command.line_number} `{command.text[:70]}`")
            failures.extend(f"  {problem}" for problem in problems)

    run_example(example, databases, check)
    assert not failures, "\n".join(
        [*failures, "Regenerate with: .venv/bin/python -m tests.readme_examples --write"]
    )


@pytest.mark.parametrize(
    ("shown", "answer", "matches"),
    [
        ('{"a": 1, "b": 2}', {"b": 2, "a": 1}, True),
        ('{"a": 1}', {"a": 1, "b": 2}, False),
        ('{"a": 1, …}', {"a": 1, "b": 2}, True),
        ('{"a": 2, …}', {"a": 1, "b": 2}, False),
        ('{"t": …, "a": 1}', {"t": "2026-11-30T10:00:00+00:00", "a": 1}, True),
        ('{"m": "Backfilled … rounds"}', {"m": "Backfilled 6 rounds"}, True),
        ("[1, …]", [1, 2, 3], True),
        ("[1, …]", [2, 1], False),
        ("[…, 3]", [1, 2, 3], True),
        ("[1, 2]", [1, 2, 3], False),
        ('[{"x": 1, …}, …]', [{"x": 1, "y": 2}, {"x": 5}], True),
        ('{"v": 1}', {"v": 1.0}, True),
        ('{"v": null}', {"v": 0}, False),
        ('{"v": 1}', {"v": True}, False),
        ('{"s": "a…"}', {"s": "abc"}, True),
    ],
)
def test_json_patterns_elide_only_where_an_ellipsis_stands(shown, answer, matches):
    assert (not match_json(parse_json_pattern(shown), answer)) is matches
