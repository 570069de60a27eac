"""The SQL building blocks of run_stats, checked without an app or a database."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from runs_service.catalogue import SCORE_KEYS
from runs_service.models import Run
from runs_service.services import run_stats
from runs_service.services.definitions import BEST_METRIC_SOURCES


def test_every_score_has_a_stored_best_and_a_history_field():
    from runs_service.models import RunSummary
    from runs_service.services.summaries import BEST_COLUMNS

    assert [column for column, _ in BEST_COLUMNS] == [f"best_{score}" for score in SCORE_KEYS]
    for score in SCORE_KEYS:
        assert hasattr(RunSummary, f"best_{score}")
    assert {key for _, key in BEST_COLUMNS} <= {key for key, _, _ in BEST_METRIC_SOURCES}


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        (
            sqlite.dialect(),
            "(round((julianday(runs.end_time) - julianday(runs.start_time)) * 86400000) / 1000.0)",
        ),
        (
            postgresql.dialect(),
            "CAST(EXTRACT(EPOCH FROM (runs.end_time - runs.start_time)) AS DOUBLE PRECISION)",
        ),
    ],
)
def test_duration_seconds_compiles_for_each_dialect(dialect, expected):
    query = select(run_stats.duration_seconds(Run.start_time, Run.end_time))
    assert expected in str(query.compile(dialect=dialect))


def test_run_filters_compare_with_bind_parameters_of_their_name():
    conditions = run_stats.run_filters(["started_before", "status", "started_after"])
    rendered = [str(condition.compile(dialect=sqlite.dialect())) for condition in conditions]
    assert rendered == [
        "runs.start_time >= ?",
        "runs.start_time < ?",
        "runs.status = ?",
    ]
    assert [condition.right.key for condition in conditions] == [
        "started_after",
        "started_before",
        "status",
    ]
