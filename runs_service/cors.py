"""Cross-origin access for browsers on the origins listed in RUNS_CORS_ORIGINS."""

from __future__ import annotations

from flask import Flask
from flask_cors import CORS

from runs_service.extensions import READ_PRIMARY_HEADER

# Headers a browser page may send: Authorization for tokens, If-None-Match for polling,
# X-Runs-Read-Primary to read its own writes when a read replica is configured.
ALLOWED_HEADERS = ("Authorization", "Content-Type", "If-None-Match", READ_PRIMARY_HEADER)
# Headers a browser page may read: where a new run lives, a download's file name, the ETag.
EXPOSED_HEADERS = ("Location", "Content-Disposition", "ETag")
ALLOWED_METHODS = ("GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS")
PREFLIGHT_MAX_AGE_SECONDS = 600


def register_cors(app: Flask) -> None:
    """Answer preflights and send CORS headers to listed origins only (none by default)."""
    origins = list(app.config["RUNS_CORS_ORIGINS"])
    if not origins:
        return
    CORS(
        app,
        resources={r"/api/*": {}},
        origins=origins,
        methods=list(ALLOWED_METHODS),
        allow_headers=list(ALLOWED_HEADERS),
        expose_headers=list(EXPOSED_HEADERS),
        max_age=PREFLIGHT_MAX_AGE_SECONDS,
        # Without this, flask-cors sends the configured origins to requests with no Origin.
        always_send=False,
        supports_credentials=False,
    )

    @app.after_request
    def vary_on_origin(response):
        # With one listed origin flask-cors leaves Vary out, but the answer still differs
        # between that origin and everyone else: caches must keep them apart.
        response.vary.add("Origin")
        return response
