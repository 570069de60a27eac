"""Conditional reads: an ETag on every JSON GET answer, 304 when If-None-Match matches."""

from __future__ import annotations

from flask import Flask, Response, request

CONDITIONAL_METHODS = frozenset({"GET", "HEAD"})


def add_etag(response: Response) -> Response:
    """Tag a complete JSON answer by its body and answer 304 if the client has it already."""
    if (
        request.method in CONDITIONAL_METHODS
        and response.status_code == 200
        and response.mimetype == "application/json"
        # Streamed downloads are generated as they are sent: hashing would buffer them.
        and not response.is_streamed
    ):
        response.add_etag()
        # Weak comparison (RFC 9110): nginx's gzip turns the strong ETag into W/"...".
        response.make_conditional(request)
    return response


def register_conditional_reads(app: Flask) -> None:
    app.after_request(add_etag)
