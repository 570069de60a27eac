"""Pure parts of the downloads: chunking, CSV lines, report text, with no app."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from runs_service.models import Run, RunStatus, TrainingMode
from runs_service.services.definitions import (
    CSV_COLUMNS,
    summarize_centralized,
    summarize_federated,
)
from runs_service.services.exports import (
    CHUNK_CHARS,
    csv_lines,
    in_chunks,
    metric_text,
    report_text,
    summary_lines,
)
from runs_service.services.results import RunResults


@pytest.mark.parametrize(
    ("pieces", "size", "expected"),
    [
        ([], 4, []),
        (["ab"], 4, ["ab"]),
        (["ab", "cd", "e"], 4, ["abcd", "e"]),
        (["abcdef", "g"], 4, ["abcdef", "g"]),
        (["a", "b", "c", "d"], 2, ["ab", "cd"]),
    ],
)
def test_in_chunks_joins_pieces_without_losing_any(pieces, size, expected):
    assert list(in_chunks(pieces, size)) == expected


def test_in_chunks_default_size_groups_many_lines():
    chunks = list(in_chunks(["x" * 100] * 2000))
    assert "".join(chunks) == "x" * 200_000
    assert all(len(chunk) >= CHUNK_CHARS for chunk in chunks[:-1])


def test_csv_lines_header_then_one_line_per_entry_with_empty_cells():
    history = [
        {"epoch": 1, "train_loss": 0.5, "val_acc": None},
        {"epoch": 2, "train_loss": -0.25, "val_acc": 0.0},
    ]
    rows = list(csv.reader(io.StringIO("".join(csv_lines(history)))))
    assert rows[0] == list(CSV_COLUMNS)
    assert rows[1] == ["1", "0.5", "", "", "", "", "", "", "", ""]
    assert rows[2] == ["2", "-0.25", "", "", "", "0.0", "", "", "", ""]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "n/a"),
        (True, "yes"),
        (3, "3"),
        (1e-05, "1e-05"),
        (-0.5, "-0.5"),
        (datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), "2025-01-02T03:04:05+00:00"),
        ("plain text", "plain text"),
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("  +1", "'+1"),
        ("-cmd", "'-cmd"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("line one\n=1+1", "line one =1+1"),
        ("\t\r\n=1+1", "'=1+1"),
        ("bell\x07and\x1b[31mred", "bell and [31mred"),
    ],
)
def test_report_text_is_one_line_and_never_a_formula(value, expected):
    assert report_text(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [(0.123456, "0.1235"), (0.0, "0.0000"), (None, "n/a"), (7, "7")]
)
def test_metric_text_rounds_floats_for_reading(value, expected):
    assert metric_text(value) == expected


def _run(training_mode: TrainingMode, **fields) -> Run:
    return Run(
        id=7,
        training_mode=training_mode,
        status=RunStatus.COMPLETED,
        start_time=datetime(2025, 1, 1, tzinfo=UTC),
        end_time=datetime(2025, 1, 1, 0, 45, tzinfo=UTC),
        **fields,
    )


def test_summary_lines_are_lines_and_keep_the_description_inert():
    points = [("val_acc", 0, 0.5), ("val_acc", 1, 0.75), ("val_loss", 1, -0.1)]
    run = _run(TrainingMode.CENTRALIZED, run_description="=1+1\n@x", config={"epochs": 2})
    report = "".join(summary_lines(RunResults(run, summarize_centralized(points))))
    lines = report.splitlines()
    assert lines[0] == "# Run 7 summary report"
    assert "Description:            '=1+1 @x" in lines
    assert "Duration (minutes):     45.0" in lines
    assert "epochs:                 2" in lines
    assert "Best epoch (val acc):   2" in lines
    assert "Lowest val loss:        -0.1000" in lines
    assert "(not logged)" in lines
    assert "Initial evaluation (round 0)" not in report


def test_summary_lines_of_a_federated_run_name_rounds():
    evaluations = [
        {"round_number": 0, "loss": 0.7, "accuracy": 0.5},
        {"round_number": 1, "loss": 0.5, "accuracy": 0.6},
    ]
    run = _run(TrainingMode.FEDERATED)
    lines = "".join(summary_lines(RunResults(run, summarize_federated(evaluations)))).splitlines()
    assert "Training rounds:        1" in lines
    assert "## Final metrics (round 1)" in lines
    assert "## Initial evaluation (round 0)" in lines
    assert "## Configuration" in lines and "(none)" in lines
