"""OpenAPI helpers: error responses, the write-operation security requirement, and the
JSON Schema keywords (NUL-free text, Meta.json_schema) that apispec leaves out."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter
from flask_smorest.error_handler import ErrorSchema
from marshmallow import fields

from runs_service.api.examples import error_example, field_example
from runs_service.schemas.fields import JSON_VALUE_REF, NUL_FREE_PATTERN

BEARER_SCHEME = "bearerAuth"
# OpenAPI 3.1 lets a non-OAuth security requirement list the roles it needs: the scope.
BEARER_SCHEME_SPEC = {
    "type": "http",
    "scheme": "bearer",
    "description": "A token from the service's configuration. Scopes: `read` "
    "(`RUNS_READ_TOKENS`: reads, when `RUNS_REQUIRE_AUTH_FOR_READS` is on), `write` "
    "(`RUNS_API_TOKENS`: reads and every write except deletion), `admin` "
    "(`RUNS_ADMIN_TOKENS`: everything, deletion included). Each operation lists the "
    "scope it needs; a valid token without it gets 403 naming that scope.",
}
# The sections of the documentation page, in this order; operations choose theirs with
# `tags=[...]` or get their blueprint's name. A tag no operation uses is left out.
TAG_DESCRIPTIONS = {
    "runs": "Create, read, update and delete training runs; list them with filters, "
    "sorting and paging.",
    "results": "What a run produced: metrics and training history, downloads (CSV, JSON, "
    "text report), federated rounds and server evaluations; analytics across runs.",
    "metrics": "Any stored metric series: summaries, downsampled histories, comparisons.",
    "ingest": "Batch writes from training jobs: metric points, server evaluations, "
    "clients. All or nothing, idempotent, answered with counts.",
    "backfill": "Import the server evaluations a federated server wrote to its results file.",
    "health": "Probes for load balancers and orchestrators.",
}
# Every write can meet these before its own logic runs (runs_service.security, Flask).
WRITE_ERRORS = (400, 401, 403, 413, 415)


def error_responses(blp, *codes: int) -> Callable:
    """Document each status code as the service's JSON error shape."""

    def decorate(view: Callable) -> Callable:
        for code in sorted(set(codes), reverse=True):
            view = blp.alt_response(
                code,
                schema=ErrorSchema,
                description=HTTPStatus(code).phrase,
                example=error_example(code),
                success=False,
            )(view)
        return view

    return decorate


def write_operation(blp, *codes: int, scope: str = "write") -> Callable:
    """Mark a view as a write needing a token of this scope and document its errors."""

    def decorate(view: Callable) -> Callable:
        view = error_responses(blp, *WRITE_ERRORS, *codes)(view)
        return blp.doc(security=[{BEARER_SCHEME: [scope]}])(view)

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


def document_tags(spec) -> None:
    """List the tags the operations use, with descriptions; no empty sections.

    flask-smorest adds one tag per blueprint, also for a blueprint whose operations carry
    another tag (the list is under `runs`, analytics under `results`); the document's
    own `tags` (APISpec options) replace that list.
    """
    document = spec.to_dict()
    used = {
        tag
        for operations in document["paths"].values()
        for operation in operations.values()
        if isinstance(operation, dict)
        for tag in operation.get("tags", ())
    }
    described = {tag["name"]: tag.get("description") for tag in document.get("tags", ())}
    described.update(TAG_DESCRIPTIONS)
    order = [*TAG_DESCRIPTIONS, *sorted(used - set(TAG_DESCRIPTIONS))]
    spec.options["tags"] = [
        {"name": name, "description": described.get(name) or name} for name in order if name in used
    ]


class SchemaConverter(OpenAPIConverter):
    """apispec's converter, plus a schema's own JSON Schema keywords (Meta.json_schema).

    apispec sets no additionalProperties for a schema that ignores unknown fields; a
    schema states what those may hold this way.
    """

    def schema2jsonschema(self, schema) -> dict:
        jsonschema = super().schema2jsonschema(schema)
        jsonschema.update(getattr(getattr(schema, "Meta", None), "json_schema", {}))
        return jsonschema


ETAG_HEADER = {
    "description": "Names this version of the answer; send it back as If-None-Match.",
    "schema": {"type": "string"},
}
NOT_MODIFIED_RESPONSE = {
    "description": "Not Modified: the request's If-None-Match header names the answer's "
    "current ETag; no body.",
    "headers": {"ETag": ETAG_HEADER},
}


def document_conditional_read(operation: dict) -> None:
    """State the ETag and the 304 of a JSON GET (runs_service.etags; not streamed files)."""
    responses = operation.get("responses", {})
    ok = responses.get(200, responses.get("200"))  # flask-smorest keys codes as integers
    if not isinstance(ok, dict) or "application/json" not in ok.get("content", {}):
        return
    if "Content-Disposition" in ok.get("headers", {}):
        return  # a streamed download: generated while sent, it has no ETag
    ok.setdefault("headers", {})["ETag"] = ETAG_HEADER
    responses[304] = NOT_MODIFIED_RESPONSE


class SchemaPlugin(MarshmallowPlugin):
    Converter = SchemaConverter

    def operation_helper(self, path=None, operations=None, **kwargs) -> None:
        super().operation_helper(path=path, operations=operations, **kwargs)
        if operations and "get" in operations:
            document_conditional_read(operations["get"])

    def init_spec(self, spec) -> None:
        super().init_spec(spec)
        # Before flask-smorest documents its own schemas (Error), so they get examples too.
        self.converter.add_attribute_function(field_example)
