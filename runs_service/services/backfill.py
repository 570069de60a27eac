"""Backfill of server evaluations from results documents, read safely from disk or given."""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from runs_service.errors import Conflict, NotFound, PayloadTooLarge, ServiceError
from runs_service.models import Run, TrainingMode
from runs_service.services.ingest import log_server_evaluations
from runs_service.services.results_file import load_results_json, parse_results_document
from runs_service.services.runs import get_run

RESULTS_FILE_PATTERN = re.compile(r"results_([1-9][0-9]{0,9})\.json")


class ResultsFileRefused(ServiceError):
    """A results file the service will not read: outside the results directory or not a file."""

    status_code = HTTPStatus.FORBIDDEN


@dataclass(frozen=True)
class BackfillResult:
    """What a backfill did (or, for a dry run, would do)."""

    run_id: int
    success: bool
    message: str
    rounds_processed: int
    inserted: int
    updated: int
    unchanged: int


def results_file_name(run_id: int) -> str:
    """The name the federated server gives a run's results file."""
    return f"results_{int(run_id)}.json"


def results_files_in(directory: str) -> list[tuple[int, str]]:
    """(run id, file name) of every results_{id}.json directly in a directory, by id."""
    found = []
    for name in os.listdir(directory):
        match = RESULTS_FILE_PATTERN.fullmatch(name)
        if match:
            found.append((int(match.group(1)), name))
    return sorted(found)


def _inside(root: str, path: str) -> bool:
    return os.path.commonpath([root, path]) == root


def read_bounded_file(path: str, name: str, max_bytes: int) -> bytes:
    """Read a regular file of at most max_bytes; name is what messages show instead of path."""
    # O_NONBLOCK keeps a FIFO planted under the name from blocking the open.
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(f"Results file {name} not found.") from None
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.EACCES, errno.EPERM):
            raise ResultsFileRefused(f"Results file {name} cannot be read: refused.") from None
        raise
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise ResultsFileRefused(f"Results file {name} is not a regular file: refused.")
        if status.st_size > max_bytes:
            raise _too_large(name, status.st_size, max_bytes)
        # The file may grow after fstat: never read more than one byte past the cap.
        raw = _read_at_most(descriptor, max_bytes + 1)
    finally:
        os.close(descriptor)
    if len(raw) > max_bytes:
        raise _too_large(name, len(raw), max_bytes)
    return raw


def _read_at_most(descriptor: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = os.read(descriptor, min(remaining, 1024 * 1024))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _too_large(name: str, size: int, max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"Results file {name} is {size:,} bytes or more; the limit is {max_bytes:,} bytes "
        "(RUNS_MAX_RESULTS_FILE_BYTES)."
    )


def read_results_file(results_dir: str, run_id: int, max_bytes: int) -> bytes:
    """The bytes of results_{run_id}.json, read only if it really lies inside results_dir."""
    name = results_file_name(run_id)
    root = os.path.realpath(results_dir)
    resolved = os.path.realpath(os.path.join(root, name))
    if not _inside(root, resolved):
        # The message names the file, never the directory (the server's business); the
        # caller reports it once (the 403 answer, or the import command's `failed` line).
        raise ResultsFileRefused(
            f"Results file {name} resolves outside the results directory (a symbolic link?): "
            "refused."
        )
    return read_bounded_file(resolved, name, max_bytes)


def _federated_run(run_id: int) -> Run:
    run = get_run(run_id)
    if run.training_mode is not TrainingMode.FEDERATED:
        raise Conflict(
            f"Run {run_id} is {run.training_mode.value}; results files hold the server "
            "evaluations of federated runs."
        )
    return run


def backfill_document(
    run_id: int, document: Any, *, dry_run: bool = False, source: str = "the request body"
) -> BackfillResult:
    """Validate every round of a results document, then upsert them all (or dry-run it)."""
    _federated_run(run_id)
    evaluations = parse_results_document(document)
    counts = log_server_evaluations(run_id, evaluations, dry_run=dry_run)
    rounds = len(evaluations)
    if dry_run:
        message = f"Dry run: {rounds} rounds from {source} are valid; nothing was written."
    else:
        message = f"Backfilled {rounds} rounds of server evaluations from {source}."
    return BackfillResult(
        run_id=run_id,
        success=True,
        message=message,
        rounds_processed=rounds,
        inserted=counts.inserted,
        updated=counts.updated,
        unchanged=counts.unchanged,
    )


def backfill_results_file(
    run_id: int, results_dir: str, max_bytes: int, *, dry_run: bool = False
) -> BackfillResult:
    """Backfill a run from results_{run_id}.json in the results directory."""
    # The run is checked first so an unknown or centralized run never reveals a file.
    _federated_run(run_id)
    name = results_file_name(run_id)
    document = load_results_json(read_results_file(results_dir, run_id, max_bytes), name)
    return backfill_document(run_id, document, dry_run=dry_run, source=name)


def backfill_from_path(
    run_id: int, path: str, max_bytes: int, *, dry_run: bool = False
) -> BackfillResult:
    """Backfill a run from a results file an operator names (the import command)."""
    _federated_run(run_id)
    name = os.path.basename(path)
    raw = read_bounded_file(os.path.realpath(path), name, max_bytes)
    return backfill_document(run_id, load_results_json(raw, name), dry_run=dry_run, source=name)
