"""One keep-alive HTTP connection to the service, on the standard library alone."""

from __future__ import annotations

import email.utils
import http.client
import json
import random
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from runs_client._version import __version__

# Longest wait a Retry-After header can impose; a longer one is taken as this.
MAX_RETRY_AFTER_SECONDS = 300.0


class TransportError(OSError):
    """The request got no HTTP answer (refused, reset, timed out, unreadable)."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def message(self) -> str:
        if isinstance(self.body, dict) and isinstance(self.body.get("message"), str):
            return self.body["message"]
        return f"HTTP {self.status}"


class Transport:
    """Sends JSON requests over one reused connection; not thread-safe (the sender owns it)."""

    def __init__(self, base_url: str, token: str | None, timeout: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url must be http(s)://host[:port][/prefix], not {base_url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout
        self._headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"runs-client/{__version__}",
        }
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            if self._https:
                self._connection = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout,
                    context=ssl.create_default_context(),
                )  # fmt: skip
            else:
                self._connection = http.client.HTTPConnection(
                    self._host, self._port, timeout=self._timeout
                )
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def request(self, method: str, path: str, body: Any = None) -> Response:
        """Send one request; TransportError when no answer came back."""
        data = None if body is None else encode(body)
        # A kept-alive connection the server has closed fails on first use: every write
        # of the service is idempotent, so one immediate retry on a fresh connection is safe.
        for attempt in (0, 1):
            reused = self._connection is not None
            try:
                connection = self._connect()
                connection.request(method, self._prefix + path, body=data, headers=self._headers)
                answer = connection.getresponse()
                raw = answer.read()
            except (OSError, http.client.HTTPException) as error:
                self.close()
                if reused and attempt == 0:
                    continue
                raise TransportError(f"{method} {path}: {error!r}") from error
            headers = {name.lower(): value for name, value in answer.getheaders()}
            if answer.will_close:
                self.close()
            return Response(answer.status, headers, _decode(raw, headers))
        raise AssertionError("unreachable")


# json.dumps holds the GIL for the whole call: a 10,000-point batch in one call would
# stall the training thread's log calls for milliseconds. Long lists go in slices.
ENCODE_SLICE = 500


def encode(body: Any) -> bytes:
    """Compact JSON (no NaN/Infinity), encoding long lists a slice at a time."""
    return _encode(body).encode()


def _encode(value: Any) -> str:
    if isinstance(value, dict) and any(isinstance(item, dict | list) for item in value.values()):
        members = (f"{_dumps(str(key))}:{_encode(item)}" for key, item in value.items())
        return "{" + ",".join(members) + "}"
    if isinstance(value, list) and len(value) > ENCODE_SLICE:
        slices = (
            _dumps(value[start : start + ENCODE_SLICE])[1:-1]
            for start in range(0, len(value), ENCODE_SLICE)
        )
        return "[" + ",".join(slices) + "]"
    return _dumps(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


def _decode(raw: bytes, headers: dict[str, str]) -> Any:
    if not raw or "json" not in headers.get("content-type", ""):
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def retry_after_seconds(headers: dict[str, str], now: float | None = None) -> float | None:
    """Seconds a Retry-After header (delta seconds or HTTP date) asks to wait, or None."""
    raw = headers.get("retry-after")
    if not raw:
        return None
    raw = raw.strip()
    if raw.isdigit():
        return min(float(raw), MAX_RETRY_AFTER_SECONDS)
    try:
        moment = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if moment is None:
        return None
    wait = moment.timestamp() - (time.time() if now is None else now)
    return min(max(wait, 0.0), MAX_RETRY_AFTER_SECONDS)


def backoff_delay(
    attempt: int,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rand: float | None = None,
) -> float:
    """Exponential backoff with jitter: uniform in [d/2, d], d = min(cap, base·2^attempt).

    The jitter spreads the retries of many clients after an outage; a Retry-After from
    the service is a floor (the service knows best when it will be back).
    """
    ceiling = min(cap, base * (2.0 ** max(attempt, 0)))
    fraction = random.random() if rand is None else rand
    delay = ceiling / 2 + fraction * ceiling / 2
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay
