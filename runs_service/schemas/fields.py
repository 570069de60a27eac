"""Field types and bounds shared by the schemas (SPEC §4.0)."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError, fields, validate

from runs_service.catalogue import (
    MAX_COUNT,
    MAX_EXPERIMENT_LENGTH,
    MAX_SERIES_NAME_LENGTH,
    MAX_TAG_LENGTH,
    MAX_TAGS_PER_RUN,
    TAG_PATTERN,
)


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
    """A JSON integer; floats with a fraction, strings and booleans are rejected.

    As in JSON Schema, a number with a zero fraction (475.0) is an integer.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr, data, **kwargs) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return super()._deserialize(value, attr, data, **kwargs)


def Score(**kwargs: Any) -> FiniteFloat:
    """A score in [0, 1]."""
    return FiniteFloat(validate=validate.Range(0.0, 1.0), **kwargs)


def Count(**kwargs: Any) -> StrictInteger:
    """A confusion-matrix count or sample count: 0..2^31-1."""
    return StrictInteger(validate=validate.Range(0, MAX_COUNT), **kwargs)


TIMESTAMP_NOTE = "ISO 8601; without an offset it is UTC; it must fall in years 1 to 9999 in UTC."


class UTCDateTime(fields.AwareDateTime):
    """An ISO 8601 timestamp converted to UTC; naive values are taken as UTC."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = dict(kwargs.pop("metadata", None) or {})
        metadata["description"] = " ".join(
            part for part in (metadata.get("description"), TIMESTAMP_NOTE) if part
        )
        super().__init__(default_timezone=UTC, metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr, data, **kwargs) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            # 0001-01-01T00:00:00+05:00 is a valid ISO 8601 text but no datetime in UTC.
            raise ValidationError("Must lie between years 1 and 9999 in UTC.") from None


def UTCDateTimeField(**kwargs: Any) -> UTCDateTime:
    """An ISO 8601 timestamp; naive values are taken as UTC."""
    return UTCDateTime(**kwargs)


# JSON Schema's spelling of "no NUL character": PostgreSQL stores no NUL in text or JSON.
NUL_FREE_PATTERN = "^[^\\x00]*$"
# Free-form JSON (config, client_config): any value whose text, keys included, has no NUL.
JSON_VALUE = "JSONValue"
JSON_VALUE_REF = {"$ref": f"#/components/schemas/{JSON_VALUE}"}
JSON_VALUE_SCHEMA = {
    "description": "Any JSON value; no text in it (keys included) may hold a NUL character.",
    "anyOf": [
        {"type": "string", "pattern": NUL_FREE_PATTERN},
        {"type": ["number", "boolean", "null"]},
        {"type": "array", "items": JSON_VALUE_REF},
        {
            "type": "object",
            "additionalProperties": JSON_VALUE_REF,
            "propertyNames": {"pattern": NUL_FREE_PATTERN},
        },
    ],
}


def storable_text(value: str) -> None:
    """Validator: text any database stores (no NUL character, no unpaired surrogate)."""
    if "\x00" in value:
        raise ValidationError("Must not contain the NUL character (\\u0000).")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("Must be valid Unicode text (no unpaired surrogate).") from None


def name_list_pattern(max_items: int) -> str:
    """A comma-separated list of 1..max_items names of 1..MAX_SERIES_NAME_LENGTH characters."""
    name = f"[^,\\x00]{{1,{MAX_SERIES_NAME_LENGTH}}}"
    return f"^{name}(,{name}){{0,{max_items - 1}}}$"


class NameList(fields.String):
    """A comma-separated list of metric names, split at every comma (spaces are kept)."""

    def __init__(self, max_items: int, **kwargs: Any) -> None:
        self.max_items = max_items
        self.pattern = name_list_pattern(max_items)
        metadata = dict(kwargs.pop("metadata", None) or {})
        metadata["description"] = (
            f"{metadata.get('description', '')} Comma-separated, 1 to {max_items} names of "
            f"1 to {MAX_SERIES_NAME_LENGTH} characters; a repeated name counts once."
        ).strip()
        metadata["pattern"] = self.pattern
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr, data, **kwargs) -> list[str]:
        text = super()._deserialize(value, attr, data, **kwargs)
        storable_text(text)
        if re.fullmatch(self.pattern, text) is None:
            raise ValidationError(
                f"Must be 1 to {self.max_items} comma-separated names of 1 to "
                f"{MAX_SERIES_NAME_LENGTH} characters, none empty."
            )
        return list(dict.fromkeys(text.split(",")))


class CommaSeparated(fields.List):
    """A query parameter given as a comma-separated list, repeated, or both.

    `status=failed,completed` and `status=failed&status=completed` mean the same; an
    empty item (`status=failed,`) is invalid like any other bad value.
    """

    def _deserialize(self, value: Any, attr, data, **kwargs) -> list:
        items = value if isinstance(value, list | tuple) else [value]
        if not all(isinstance(item, str) for item in items):
            raise ValidationError("Not a valid list.")
        parts = [part.strip() for item in items for part in item.split(",")]
        return super()._deserialize(parts, attr, data, **kwargs)


TAG_RULE = (
    f"1..{MAX_TAG_LENGTH} characters: letters, digits and - _ . : / = +, starting with a "
    "letter or digit (case matters)"
)


def Tag(**kwargs: Any) -> fields.String:
    """One tag: short, no spaces or commas."""
    return fields.String(
        validate=[
            validate.Length(1, MAX_TAG_LENGTH),
            validate.Regexp(TAG_PATTERN, error=f"A tag is {TAG_RULE}."),
        ],
        **kwargs,
    )


def Tags(**kwargs: Any) -> fields.List:
    """A run's set of tags in a body: repeated tags count once; stored and returned sorted."""
    return fields.List(
        Tag(metadata={"example": "baseline"}),
        validate=validate.Length(max=MAX_TAGS_PER_RUN),
        **kwargs,
    )


def Experiment(**kwargs: Any) -> fields.String:
    """The name of the experiment a run belongs to (in a query too: no NUL character)."""
    return fields.String(
        validate=[validate.Length(1, MAX_EXPERIMENT_LENGTH), validate.Regexp(NUL_FREE_PATTERN)],
        **kwargs,
    )
