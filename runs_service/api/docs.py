"""OpenAPI helpers: error responses, the write-operation security requirement, and the
JSON Schema keywords (NUL-free text, Meta.json_schema) that apispec leaves out."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter
from flask_smorest.error_handler import ErrorSchema
from marshmallow import fields

from runs_service.schemas.fields import JSON_VALUE_REF, NUL_FREE_PATTERN

BEARER_SCHEME = "bearerAuth"
# Every write can meet these before its own logic runs (runs_service.security, Flask).
WRITE_ERRORS = (400, 401, 403, 413, 415)


def error_responses(blp, *codes: int) -> Callable:
    """Document each status code as the service's JSON error shape."""

    def decorate(view: Callable) -> Callable:
        for code in sorted(set(codes), reverse=True):
            view = blp.alt_response(
                code, schema=ErrorSchema, description=HTTPStatus(code).phrase, success=False
            )(view)
        return view

    return decorate


def write_operation(blp, *codes: int) -> Callable:
    """Mark a view as a token-protected write and document its errors."""

    def decorate(view: Callable) -> Callable:
        view = error_responses(blp, *WRITE_ERRORS, *codes)(view)
        return blp.doc(security=[{BEARER_SCHEME: []}])(view)

    return decorate


# JSON Schema keywords (valid in OpenAPI 3.1) that apispec does not copy from field metadata.
EXTRA_SCHEMA_KEYWORDS = ("propertyNames",)


def storable_text_properties(converter, field, ret: dict, **kwargs) -> dict:
    """apispec attribute function: state in the document the text every body must hold.

    The request parser refuses NUL characters anywhere in a body (PostgreSQL cannot store
    them); strings and object keys say so with a pattern, free-form objects by JSONValue.
    """
    extra = {name: field.metadata[name] for name in EXTRA_SCHEMA_KEYWORDS if name in field.metadata}
    if isinstance(field, fields.String) and "pattern" not in ret and "enum" not in ret:
        extra["pattern"] = NUL_FREE_PATTERN
    if isinstance(field, fields.Dict):
        names = {**ret.get("propertyNames", {}), **extra.get("propertyNames", {})}
        extra["propertyNames"] = {**names, "pattern": NUL_FREE_PATTERN}
        if field.value_field is None:
            extra["additionalProperties"] = JSON_VALUE_REF
    return extra


class SchemaConverter(OpenAPIConverter):
    """apispec's converter, plus a schema's own JSON Schema keywords (Meta.json_schema).

    apispec sets no additionalProperties for a schema that ignores unknown fields; a
    schema states what those may hold this way.
    """

    def schema2jsonschema(self, schema) -> dict:
        jsonschema = super().schema2jsonschema(schema)
        jsonschema.update(getattr(getattr(schema, "Meta", None), "json_schema", {}))
        return jsonschema


class SchemaPlugin(MarshmallowPlugin):
    Converter = SchemaConverter
