"""The dashboard's number, interval and time formatting (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from runs_service.web.formatting import (
    best_index,
    interval,
    label,
    minutes,
    number,
    plain,
    timestamp,
)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "—"),
        (0.0, "0.0000"),
        (0.87654, "0.8765"),
        (0.41858, "0.4186"),
        (624, "624"),
        (12345, "12,345"),
        (True, "—"),
    ],
)
def test_number(value, shown):
    assert number(value) == shown


def test_interval_and_minutes():
    assert interval([0.80701, 0.8786]) == "[0.8070, 0.8786]"
    assert interval(None) == "—"
    assert minutes(27.8) == "27.80 min"
    assert minutes(None) == "—"


def test_timestamp_is_utc_to_the_minute():
    moment = datetime(2026, 11, 26, 13, 0, 59, tzinfo=timezone(timedelta(hours=1)))
    assert timestamp(moment) == "2026-11-26 12:00 UTC"
    assert timestamp("2026-11-26T12:00:01.123456+00:00") == "2026-11-26 12:00 UTC"
    assert (
        timestamp(datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)) == "2026-01-01 00:00 UTC"
    )
    assert timestamp(None) == "—"


def test_plain_config_values():
    assert plain(False) == "false"
    assert plain("sgd") == "sgd"
    assert plain({"a": [1, 2]}) == '{"a": [1, 2]}'


@pytest.mark.parametrize(
    ("values", "higher", "best"),
    [
        ([0.5, 0.7, 0.7], True, 1),
        ([0.5, None, 0.2], False, 2),
        ([None, None], True, None),
        ([], True, None),
        ([0.0, None], True, 0),
    ],
)
def test_best_index(values, higher, best):
    assert best_index(values, higher) == best


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("val_auroc", "Validation AUROC"),
        ("server_recall", "Server recall"),
        ("in_progress", "in progress"),
        ("best_val_accuracy", "best val accuracy"),
        ("my_metric", "my metric"),
    ],
)
def test_labels_take_metric_names_from_the_catalogue(name, shown):
    assert label(name) == shown
