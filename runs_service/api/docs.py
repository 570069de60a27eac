"""OpenAPI helpers: error responses and the write-operation security requirement."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from flask_smorest.error_handler import ErrorSchema

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
