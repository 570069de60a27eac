"""Bearer tokens for writes (and optionally reads), and the JSON-only rule for bodies."""

from __future__ import annotations

import hmac

from flask import Flask, current_app, request

from runs_service.errors import ServiceError

# Routes that stay open even when reads need a token: probes and the API's own documentation.
PUBLIC_PATH_PREFIXES = ("/healthz", "/readyz", "/api/openapi.json", "/api/docs")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class Unauthorized(ServiceError):
    status_code = 401


class Forbidden(ServiceError):
    status_code = 403


class UnsupportedMediaType(ServiceError):
    status_code = 415


def _presented_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def token_is_valid(presented: str, configured: tuple[str, ...]) -> bool:
    """Compare against every configured token in constant time (no early exit)."""
    presented_bytes = presented.encode()
    matches = [hmac.compare_digest(presented_bytes, token.encode()) for token in configured]
    return any(matches)


def require_token() -> None:
    """Raise unless the request carries one of the configured bearer tokens."""
    configured = current_app.config["RUNS_API_TOKENS"]
    if not configured:
        raise Forbidden(
            "This operation needs an API token, and none is configured: set RUNS_API_TOKENS "
            "to a comma-separated list of tokens and send 'Authorization: Bearer <token>'."
        )
    presented = _presented_token()
    if presented is None:
        raise Unauthorized(
            "Send 'Authorization: Bearer <token>' with one of the configured API tokens.",
            headers={"WWW-Authenticate": 'Bearer realm="runs_service"'},
        )
    if not token_is_valid(presented, configured):
        raise Unauthorized(
            "The bearer token is not valid.",
            headers={"WWW-Authenticate": 'Bearer realm="runs_service", error="invalid_token"'},
        )


def require_json_body() -> None:
    """A request body must be JSON; a body-less request (e.g. a file backfill) is fine."""
    has_body = bool(request.content_length) or request.headers.get("Transfer-Encoding")
    if has_body and request.mimetype != "application/json":
        raise UnsupportedMediaType(
            f"Send the request body as application/json, not {request.mimetype or 'untyped data'}."
        )


def check_request() -> None:
    """Runs before every request: authentication first, then the body's media type."""
    # Unknown routes and wrong methods answer 404/405 whoever asks: they reveal nothing.
    if request.routing_exception is not None or request.path.startswith(PUBLIC_PATH_PREFIXES):
        return
    if request.method not in READ_METHODS:
        require_token()
        if request.method in BODY_METHODS:
            require_json_body()
    elif current_app.config["RUNS_REQUIRE_AUTH_FOR_READS"]:
        require_token()


def register_security(app: Flask) -> None:
    app.before_request(check_request)
