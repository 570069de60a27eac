"""URL converters whose bounds also appear in the OpenAPI document."""

from __future__ import annotations

from werkzeug.routing import IntegerConverter

from runs_service.catalogue import MAX_RUN_ID


def positive_integer_regex(maximum: int) -> str:
    """A regular expression matching exactly the decimal integers 1..maximum (no leading 0)."""
    digits = str(maximum)
    alternatives = [digits]
    if len(digits) > 1:
        alternatives.append(f"[1-9][0-9]{{0,{len(digits) - 2}}}")  # fewer digits
    for position, digit in enumerate(digits):
        # Same length: equal up to this position, then a smaller digit, then anything.
        lowest = 1 if position == 0 else 0
        if int(digit) > lowest:
            rest = len(digits) - position - 1
            alternatives.append(f"{digits[:position]}[{lowest}-{int(digit) - 1}][0-9]{{{rest}}}")
    return "(?:" + "|".join(alternatives) + ")"


class RunIdConverter(IntegerConverter):
    """A run id in 1..2^31-1; anything else does not match the route (404).

    The bound lives in the regular expression, not only in to_python: werkzeug notes a
    route's methods as soon as its pattern matches, so an id that matched the pattern
    but failed conversion made every other method of the path answer 405 instead of 404.
    """

    regex = positive_integer_regex(MAX_RUN_ID)

    def __init__(self, url_map) -> None:
        super().__init__(url_map, min=1, max=MAX_RUN_ID)


def run_id_parameter_schema(converter: RunIdConverter) -> dict:
    """The OpenAPI schema of a run id path parameter."""
    return {"type": "integer", "minimum": converter.min, "maximum": converter.max}
