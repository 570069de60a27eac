"""The spool: batches the service could not take yet, one JSON line per batch, on disk.

Each process appends to a file of its own, `spool-<pid>-<random>.jsonl`, in a folder
per service URL, and holds an exclusive `flock` on it while it lives. A process that
finds a file nobody holds (its writer exited or was killed) adopts it: it moves the
lines into its own file and replays them. Replaying a line twice is harmless, since
every write of the service is an idempotent upsert.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from runs_client._http import encode

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, so no adoption of other files
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("runs_client")

ENVIRONMENT_VARIABLE = "RUNS_CLIENT_SPOOL_DIR"


def default_spool_root() -> Path:
    """The per-user cache folder: $RUNS_CLIENT_SPOOL_DIR, else the platform's cache dir."""
    configured = os.environ.get(ENVIRONMENT_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return base / "runs-client" / "Cache" / "spool"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "runs-client" / "spool"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "runs-client" / "spool"


def service_folder_name(url: str) -> str:
    """A readable, collision-free folder name for one service URL."""
    normalized = url.rstrip("/")
    parts = urlsplit(normalized)
    readable = re.sub(r"[^A-Za-z0-9.-]+", "_", parts.netloc or "service")[:60]
    digest = hashlib.sha256(normalized.encode()).hexdigest()[:12]
    return f"{readable}-{digest}"


def _lock(handle: BinaryIO) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


class Spool:
    """Append, read in order and consume JSON lines; thread-safe."""

    def __init__(self, root: Path, url: str, max_bytes: int) -> None:
        self.directory = Path(root) / service_folder_name(url)
        self.max_bytes = max_bytes
        self.path = self.directory / f"spool-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self._lock = threading.Lock()
        self._file: BinaryIO | None = None
        self._offset = 0
        self._size = 0

    def _open(self) -> BinaryIO:
        if self._file is None:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            handle = open(self.path, "a+b")  # noqa: SIM115 - held open while the client lives
            _lock(handle)
            self._file = handle
        return self._file

    @property
    def pending_bytes(self) -> int:
        return self._size - self._offset

    def has_pending(self) -> bool:
        return self._size > self._offset

    def append(self, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Write records at the end; returns those refused because the spool is full."""
        refused = []
        with self._lock:
            handle = None
            for record in records:
                line = encode(record) + b"\n"
                if self._size - self._offset + len(line) > self.max_bytes:
                    refused.append(record)
                    continue
                handle = handle or self._open()
                handle.write(line)
                self._size += len(line)
            if handle is not None:
                handle.flush()
        return refused

    def peek(self) -> tuple[dict[str, Any], int] | None:
        """The oldest unconsumed record and the offset after it, or None."""
        with self._lock:
            while self._size > self._offset:
                handle = self._open()
                handle.seek(self._offset)
                line = handle.readline()
                end = self._offset + len(line)
                try:
                    return json.loads(line), end
                except ValueError:
                    log.warning("runs_client: skipping an unreadable spool line in %s", self.path)
                    self._consume(end)
            return None

    def consume(self, end: int) -> None:
        """Mark everything before `end` as delivered."""
        with self._lock:
            self._consume(end)

    def _consume(self, end: int) -> None:
        self._offset = max(self._offset, end)
        if self._offset >= self._size and self._file is not None:
            self._file.truncate(0)
            self._offset = self._size = 0

    def adopt_orphans(self) -> int:
        """Move the lines of files no live process holds into this one; returns their count."""
        if fcntl is None or not self.directory.is_dir():
            return 0
        adopted = 0
        for path in sorted(self.directory.glob("spool-*.jsonl"), key=_mtime):
            if path == self.path:
                continue
            try:
                handle = open(path, "rb")  # noqa: SIM115 - closed below, after unlinking
            except OSError:
                continue
            with handle:
                if not _lock(handle):
                    continue  # its writer is alive
                data = handle.read()
                if data and not data.endswith(b"\n"):
                    # A writer killed mid-line: the complete lines before it are kept.
                    data = data[: data.rfind(b"\n") + 1]
                lines = [json.loads(line) for line in data.splitlines() if _readable(line)]
                refused = self.append(lines)
                if refused:
                    log.error(
                        "runs_client: spool full (%d bytes): %d spooled batches of %s dropped",
                        self.max_bytes,
                        len(refused),
                        path,
                    )
                adopted += len(lines) - len(refused)
                path.unlink(missing_ok=True)
        return adopted

    def close(self) -> None:
        """Release the file; an empty one is removed."""
        with self._lock:
            if self._file is None:
                return
            if self._size <= self._offset:
                self.path.unlink(missing_ok=True)
            self._file.close()
            self._file = None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _readable(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True
