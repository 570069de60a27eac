"""Domain exceptions and the one mapping of every error to the JSON error shape."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from flask import Flask, current_app
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge

logger = logging.getLogger(__name__)

# How many field errors a validation message names before summarising the rest.
MESSAGE_FIELD_LIMIT = 3
UPGRADE_COMMAND = "flask --app runs_service db upgrade"
_MISSING_DATABASE = re.compile(r'database "([^"]+)" does not exist')
# PostgreSQL's undefined_table; SQLite says "no such table".
_UNDEFINED_TABLE = "42P01"


class ServiceError(Exception):
    """An error a caller can act on; carries its HTTP status."""

    status_code = HTTPStatus.BAD_REQUEST

    def __init__(
        self,
        message: str,
        errors: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors
        self.headers = dict(headers or {})


class NotFound(ServiceError):
    status_code = HTTPStatus.NOT_FOUND


class RunNotFound(NotFound):
    def __init__(self, run_id: int) -> None:
        super().__init__(f"Run {run_id} not found")
        self.run_id = run_id


class Conflict(ServiceError):
    status_code = HTTPStatus.CONFLICT


class InvalidInput(ServiceError):
    status_code = HTTPStatus.UNPROCESSABLE_ENTITY


class PayloadTooLarge(ServiceError):
    status_code = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class DatabaseUnavailable(ServiceError):
    status_code = HTTPStatus.SERVICE_UNAVAILABLE


def error_payload(
    status: int, message: str, errors: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The one error shape: {code, status, message, errors?}."""
    payload: dict[str, Any] = {
        "code": int(status),
        "status": HTTPStatus(status).phrase,
        "message": message,
    }
    if errors:
        payload["errors"] = errors
    return payload


def flatten_errors(errors: Any, path: str = "") -> list[str]:
    """Turn nested marshmallow/webargs errors into 'location.field: reason' lines."""
    if isinstance(errors, Mapping):
        lines: list[str] = []
        for key, value in errors.items():
            if isinstance(key, int) or str(key).isdigit():
                child = f"{path}[{key}]"
            else:
                child = f"{path}.{key}" if path else str(key)
            lines.extend(flatten_errors(value, child))
        return lines
    if isinstance(errors, list | tuple):
        if all(isinstance(item, str) for item in errors):
            return [f"{path}: {' '.join(errors)}" if path else " ".join(errors)]
        lines = []
        for item in errors:
            lines.extend(flatten_errors(item, path))
        return lines
    return [f"{path}: {errors}" if path else str(errors)]


def validation_message(errors: Mapping[str, Any]) -> str:
    """A sentence naming the offending fields, e.g. 'json.metrics[3].step: Must be ...'."""
    lines = [line.rstrip(".") for line in flatten_errors(errors)]
    if not lines:
        return "The request is invalid."
    shown = "; ".join(lines[:MESSAGE_FIELD_LIMIT])
    more = len(lines) - MESSAGE_FIELD_LIMIT
    suffix = f" (and {more} more)" if more > 0 else ""
    return f"Invalid input: {shown}{suffix}."


def http_exception_response(error: HTTPException):
    """Map a werkzeug/webargs HTTP exception to the JSON shape, keeping its headers."""
    data = getattr(error, "data", None) or {}
    errors = data.get("errors") or data.get("messages")
    if "message" in data:
        message = data["message"]
    elif isinstance(error, RequestEntityTooLarge):
        message = body_too_large_message(current_app.config.get("MAX_CONTENT_LENGTH"))
    elif errors and error.code in (400, 422):
        message = validation_message(errors)
    else:
        message = error.description or HTTPStatus(error.code).phrase
    # Allow (405), WWW-Authenticate (401) and friends must survive; the body is JSON.
    headers = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
    headers.update(data.get("headers") or {})
    return error_payload(error.code, message, errors), error.code, headers


def body_too_large_message(limit: int | None) -> str:
    """The 413 sentence, naming the limit (gunicorn answers it directly, without nginx)."""
    if not limit:
        return "The request body is too large."
    mib, rest = divmod(limit, 1024 * 1024)
    size = f"{mib} MiB" if mib and not rest else f"{limit:,} bytes"
    return f"The request body is larger than the limit of {size} (RUNS_MAX_CONTENT_LENGTH)."


def database_problem(error: Exception) -> str | None:
    """What to do about a database that answers but cannot serve as configured, else None.

    A PostgreSQL URL naming a database that does not exist, and a database without the
    schema (`flask db upgrade` never ran), are set-up mistakes that retrying will not fix.
    """
    cause = getattr(error, "orig", None) or error
    text = str(cause)
    missing = _MISSING_DATABASE.search(text)
    if missing:
        name = missing.group(1)
        return (
            f'The database "{name}" of RUNS_DATABASE_URL does not exist: create it '
            f"(createdb {name}), then run `{UPGRADE_COMMAND}`."
        )
    if "no such table" in text or getattr(cause, "sqlstate", None) == _UNDEFINED_TABLE:
        return f"The database has no tables yet: run `{UPGRADE_COMMAND}`."
    return None


def service_error_response(error: ServiceError):
    return (
        error_payload(error.status_code, error.message, error.errors),
        error.status_code,
        (error.headers),
    )


def database_error_response(error: sa_exc.DBAPIError | sa_exc.TimeoutError):
    """A database that is down, locked or too slow is a temporary condition: 503."""
    problem = database_problem(error)
    if problem is not None:
        logger.error("database unavailable: %s", problem)
    else:
        logger.warning("database unavailable: %s", type(error.__cause__ or error).__name__)
    retry_after = str(current_app.config["RUNS_RETRY_AFTER_SECONDS"])
    message = problem or "The database is unavailable; retry shortly."
    return (
        error_payload(HTTPStatus.SERVICE_UNAVAILABLE, message),
        HTTPStatus.SERVICE_UNAVAILABLE,
        {"Retry-After": retry_after},
    )


def programming_error_response(error: sa_exc.ProgrammingError):
    """A missing table (no `flask db upgrade`) is 503 like a missing database; else a bug."""
    if database_problem(error) is not None:
        return database_error_response(error)
    current_app.log_exception(sys.exc_info())
    return http_exception_response(InternalServerError())


def register_error_handlers(app: Flask) -> None:
    """Install the handlers that give every error the same JSON shape."""
    app.register_error_handler(ServiceError, service_error_response)
    app.register_error_handler(sa_exc.OperationalError, database_error_response)
    app.register_error_handler(sa_exc.InterfaceError, database_error_response)
    app.register_error_handler(sa_exc.TimeoutError, database_error_response)
    app.register_error_handler(sa_exc.ProgrammingError, programming_error_response)
    # HTTPException (unknown routes, 405, 413, webargs' 422, unhandled errors as 500)
    # is handled by the Api subclass in extensions so flask-smorest documents it.
