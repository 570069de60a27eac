"""Bearer tokens with scopes (read, write, admin), and the JSON-only rule for bodies."""

from __future__ import annotations

import enum
import hmac

from flask import Flask, current_app, request

from runs_service.errors import ServiceError

# Routes that stay open even when reads need a token: probes and the API's own documentation.
PUBLIC_PATH_PREFIXES = ("/healthz", "/readyz", "/api/openapi.json", "/api/docs", "/assets/")
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


class Scope(enum.IntEnum):
    """What a token may do; each scope includes the ones below it."""

    READ = 1
    WRITE = 2
    ADMIN = 3


# Configuration key of each scope's tokens, and how a 403 names the scope.
SCOPE_TOKENS = {
    Scope.READ: "RUNS_READ_TOKENS",
    Scope.WRITE: "RUNS_API_TOKENS",
    Scope.ADMIN: "RUNS_ADMIN_TOKENS",
}
SCOPE_NAMES = {
    Scope.READ: "a read token (RUNS_READ_TOKENS, RUNS_API_TOKENS or RUNS_ADMIN_TOKENS)",
    Scope.WRITE: "a write token (RUNS_API_TOKENS or RUNS_ADMIN_TOKENS)",
    Scope.ADMIN: "an admin token (RUNS_ADMIN_TOKENS)",
}


def token_is_valid(presented: str, configured: tuple[str, ...]) -> bool:
    """Compare against every configured token in constant time (no early exit)."""
    presented_bytes = presented.encode()
    matches = [hmac.compare_digest(presented_bytes, token.encode()) for token in configured]
    return any(matches)


def token_scope(presented: str, config) -> Scope | None:
    """The widest scope the token has, or None; every list is compared in full."""
    granted = [
        scope for scope, key in SCOPE_TOKENS.items() if token_is_valid(presented, config[key])
    ]
    return max(granted, default=None)


def required_scope() -> Scope | None:
    """The scope this request needs, or None when it needs no token."""
    if request.method == "OPTIONS":
        # CORS preflights carry no credentials by design: they must never need a token.
        return None
    if request.method in READ_METHODS:
        return Scope.READ if current_app.config["RUNS_REQUIRE_AUTH_FOR_READS"] else None
    if request.method == "DELETE":
        return Scope.ADMIN
    return Scope.WRITE


def require_token(needed: Scope) -> None:
    """Raise unless the request carries a configured bearer token with the needed scope."""
    config = current_app.config
    accepted_keys = [key for scope, key in SCOPE_TOKENS.items() if scope >= needed]
    if not any(config[key] for key in accepted_keys):
        raise Forbidden(
            f"This operation needs {SCOPE_NAMES[needed]}, and none is configured: set "
            f"{SCOPE_TOKENS[needed]} to a comma-separated list of tokens and send "
            "'Authorization: Bearer <token>'."
        )
    presented = _presented_token()
    if presented is None:
        raise Unauthorized(
            "Send 'Authorization: Bearer <token>' with one of the configured API tokens.",
            headers={"WWW-Authenticate": 'Bearer realm="runs_service"'},
        )
    scope = token_scope(presented, config)
    if scope is None:
        raise Unauthorized(
            "The bearer token is not valid.",
            headers={"WWW-Authenticate": 'Bearer realm="runs_service", error="invalid_token"'},
        )
    if scope < needed:
        raise Forbidden(
            f"This operation needs {SCOPE_NAMES[needed]}; the token sent has only "
            f"{scope.name.lower()} scope.",
            headers={
                "WWW-Authenticate": 'Bearer realm="runs_service", error="insufficient_scope", '
                f'scope="{needed.name.lower()}"'
            },
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
    # Dashboard page shells hold no data: their data parts are fetched with the token.
    if getattr(current_app.view_functions.get(request.endpoint), "open_without_token", False):
        return
    needed = required_scope()
    if needed is not None:
        require_token(needed)
    if request.method in BODY_METHODS:
        require_json_body()


def register_security(app: Flask) -> None:
    app.before_request(check_request)
