"""Field types and bounds shared by the schemas (SPEC §4.0)."""

from __future__ import annotations

import math
from datetime import UTC
from typing import Any

from marshmallow import ValidationError, fields, validate

MAX_STEP = 10**6
MAX_ROUND = 10**6
MAX_COUNT = 2**31 - 1
MAX_RUN_ID = 2**31 - 1
MAX_OFFSET = 10**9


class FiniteFloat(fields.Float):
    """A JSON number that is finite; strings and booleans are not numbers here."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_nan=False, **kwargs)

    def _deserialize(self, value: Any, attr, data, **kwargs) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError("Not a valid number.")
        try:
            number = float(value)
        except OverflowError:
            raise ValidationError("Number too large.") from None
        if not math.isfinite(number):
            raise ValidationError("Number must be finite.")
        return number


class StrictInteger(fields.Integer):
    """A JSON integer; floats with a fraction, strings and booleans are rejected."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)


def Score(**kwargs: Any) -> FiniteFloat:
    """A score in [0, 1]."""
    return FiniteFloat(validate=validate.Range(0.0, 1.0), **kwargs)


def Count(**kwargs: Any) -> StrictInteger:
    """A confusion-matrix count or sample count: 0..2^31-1."""
    return StrictInteger(validate=validate.Range(0, MAX_COUNT), **kwargs)


def UTCDateTimeField(**kwargs: Any) -> fields.AwareDateTime:
    """An ISO 8601 timestamp; naive values are taken as UTC."""
    return fields.AwareDateTime(default_timezone=UTC, **kwargs)
