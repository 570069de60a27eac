"""The SQL building blocks of run_stats, checked without an app or a database."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from runs_service.models import Run
from runs_service.services import run_stats
from runs_service.services.definitions import (
    CENTRALIZED_HISTORY_FIELDS,
    SERVER_METRIC_FIELDS,
    SERVER_TO_HISTORY,
)


@pytest.mark.parametrize(
    ("field", "names"),
    [
        ("val_acc", ("val_acc", "val_accuracy")),
        ("val_auroc", ("val_auroc", "val_auc")),
        ("val_recall", ("val_recall",)),
        ("train_loss", ("train_loss",)),
    ],
)
def test_stored_metric_names_put_the_canonical_name_first(field, names):
    assert run_stats.stored_metric_names(field) == names


def test_every_score_is_a_history_field_with_a_server_column():
    server_columns = {field: column for column, field in SERVER_TO_HISTORY}
    for field in run_stats.SCORE_FIELDS.values():
        assert field in CENTRALIZED_HISTORY_FIELDS
        assert server_columns[field] in SERVER_METRIC_FIELDS


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
