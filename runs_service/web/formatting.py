"""Jinja filters that show numbers and times the way the API rounds them (pure functions)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from runs_service.catalogue import display_name

MISSING = "—"
PLACES = 4


def number(value: Any, places: int = PLACES) -> str:
    """A score, loss or average to `places` decimals (the API's rounding); counts as integers."""
    if value is None or isinstance(value, bool):
        return MISSING
    if isinstance(value, int):
        return f"{value:,}"
    return f"{float(value):.{places}f}"


def interval(bounds: Any) -> str:
    """A 95 % interval as '[low, high]', or the missing mark when it has no denominator."""
    if not bounds:
        return MISSING
    low, high = bounds
    return f"[{number(low)}, {number(high)}]"


def timestamp(value: Any) -> str:
    """A UTC moment to the minute ('2026-11-26 12:00 UTC'); ISO strings are accepted too."""
    if value is None:
        return MISSING
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def minutes(value: Any) -> str:
    """A duration in minutes as the API gives it (2 places), with a unit."""
    if value is None:
        return MISSING
    return f"{float(value):,.2f} min"


def plain(value: Any) -> str:
    """A configuration value as JSON writes it (true, null, [1, 2]); text as it is."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, allow_nan=False, default=str)


def label(name: str) -> str:
    """A name for people: a metric's display name from the catalogue ('val_auroc' ->
    'Validation AUROC'), any other key in words ('in_progress' -> 'in progress')."""
    shown = display_name(name)
    return shown if shown != name else name.replace("_", " ")


FILTERS = {
    "number": number,
    "interval": interval,
    "timestamp": timestamp,
    "minutes": minutes,
    "label": label,
    "plain": plain,
}


def best_index(values: list[Any], higher_is_better: bool) -> int | None:
    """Index of the best non-null value (the first on ties), or None when all are null."""
    best: int | None = None
    for index, value in enumerate(values):
        if value is None:
            continue
        if best is None or (value > values[best] if higher_is_better else value < values[best]):
            best = index
    return best
