"""URL converters whose bounds also appear in the OpenAPI document."""

from __future__ import annotations

from werkzeug.routing import IntegerConverter

from runs_service.catalogue import MAX_RUN_ID


class RunIdConverter(IntegerConverter):
    """A run id in 1..2^31-1; anything else does not match the route (404)."""

    def __init__(self, url_map) -> None:
        super().__init__(url_map, min=1, max=MAX_RUN_ID)


def run_id_parameter_schema(converter: RunIdConverter) -> dict:
    """The OpenAPI schema of a run id path parameter."""
    return {"type": "integer", "minimum": converter.min, "maximum": converter.max}
