"""RunsClient and Run: log from training code without ever waiting on the network.

Logging calls check their input, append to an in-memory queue and return. One
background thread (the sender) takes what is queued, groups it into batches of at most
the service's limits and sends them, retrying with backoff. What it cannot deliver
after its retries goes to the spool on disk and is replayed when the service answers
again, or by the next process that starts with the same spool folder.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from runs_client import _points
from runs_client._http import Response, Transport, TransportError, backoff_delay
from runs_client._http import retry_after_seconds as _retry_after
from runs_client._points import InvalidInput
from runs_client._spool import Spool, default_spool_root

log = logging.getLogger("runs_client")

CREATE, PATCH = "create", "patch"
METRICS, EVALUATIONS, CLIENTS = "metrics", "evaluations", "clients"
BATCH_LIMITS = {
    METRICS: _points.MAX_METRICS_PER_BATCH,
    EVALUATIONS: _points.MAX_EVALUATIONS_PER_BATCH,
    CLIENTS: _points.MAX_CLIENTS_PER_BATCH,
}
BATCH_KEYS = {METRICS: "metrics", EVALUATIONS: "evaluations", CLIENTS: "clients"}
PATHS = {
    METRICS: "/api/runs/{}/metrics",
    EVALUATIONS: "/api/runs/{}/server-evaluations",
    CLIENTS: "/api/runs/{}/clients",
    PATCH: "/api/runs/{}",
}
TRAINING_MODES = ("centralized", "federated")
STATUSES = ("in_progress", "completed", "failed")
TRANSIENT_STATUSES = frozenset({408, 425, 429})
# The token is missing, wrong or lacks the write scope: the data is kept, not dropped.
AUTH_STATUSES = frozenset({401, 403})
SPOOL_FORMAT = 1
DEFAULT_SPOOL_MAX_BYTES = 256 * 1024 * 1024
# How many distinct metric names the client remembers as already checked.
NAME_CACHE_LIMIT = 10_000


class RunsClientError(RuntimeError):
    """Raised in strict mode for data the client or the service refused."""


@dataclass(eq=False)
class _RunRef:
    """What the sender knows of a run: enough to create (or find) it again."""

    external_id: str
    create_body: dict[str, Any]
    run_id: int | None = None
    refused: str | None = None  # why the service refused to create it, if it did


@dataclass(eq=False)
class _Request:
    """One HTTP request to make: a create, a patch or a batch of items."""

    kind: str
    ref: _RunRef
    items: dict[Any, dict[str, Any]] = field(default_factory=dict)
    body: dict[str, Any] | None = None

    def full(self) -> bool:
        return len(self.items) >= BATCH_LIMITS[self.kind]

    def payload(self) -> dict[str, Any] | None:
        if self.kind in BATCH_KEYS:
            return {BATCH_KEYS[self.kind]: list(self.items.values())}
        return self.body

    def to_record(self) -> dict[str, Any]:
        return {
            "v": SPOOL_FORMAT,
            "op": self.kind,
            "run": {"external_id": self.ref.external_id, "create": self.ref.create_body},
            "body": self.payload(),
        }

    def describe(self) -> str:
        run = self.ref.run_id if self.ref.run_id is not None else self.ref.external_id
        count = f" of {len(self.items)}" if self.kind in BATCH_KEYS else ""
        return f"{self.kind}{count} for run {run}"


class Run:
    """A training run being logged; use it as a context manager (see RunsClient.start_run)."""

    def __init__(self, client: RunsClient, ref: _RunRef, training_mode: str) -> None:
        self._client = client
        self._ref = ref
        self.training_mode = training_mode
        self._finished = False

    @property
    def external_id(self) -> str:
        return self._ref.external_id

    @property
    def run_id(self) -> int | None:
        """The service's id of the run; None until the service has answered the create."""
        return self._ref.run_id

    def __repr__(self) -> str:
        return f"Run(run_id={self.run_id}, external_id={self.external_id!r})"

    def log_metrics(
        self,
        metrics: Mapping[str, Any],
        step: int,
        client_identifier: str | None = None,
        round_number: int | None = None,
    ) -> None:
        """Queue one value per metric name at `step`; returns at once and never raises.

        Invalid points are dropped with a warning (raised with strict=True); the valid
        points of the same call are kept. With `client_identifier` and `round_number`
        the points are client-local metrics of a federated run.
        """
        client = self._client
        try:
            if type(step) is not int or not 0 <= step <= _points.MAX_STEP:
                step = _points.check_index(step, "step", _points.MAX_STEP)
            if client_identifier is not None or round_number is not None:
                client_identifier, round_number = self._check_client_local(
                    client_identifier, round_number
                )
            categories = client._name_categories
            items = []
            problems = None
            for name, value in metrics.items():
                category = categories.get(name)
                try:
                    if category is None:
                        category = _points.name_category(name)
                        if len(categories) < NAME_CACHE_LIMIT:
                            categories[name] = category
                    if type(value) is not float or category or value - value != 0.0:
                        value = _points.check_value(name, value, category)
                except InvalidInput as problem:
                    problems = problems or []
                    problems.append(str(problem))
                    continue
                items.append((name, value))
            if items:
                client._enqueue(
                    (METRICS, self._ref, (step, client_identifier, round_number, tuple(items))),
                    len(items),
                )
            if problems:
                client._refuse(f"{len(problems)} invalid point(s) at step {step}", problems)
        except InvalidInput as problem:
            client._refuse("invalid points", [str(problem)])
        except Exception as error:  # logging must never stop training
            if client.strict:
                raise
            log.warning("runs_client: log_metrics failed: %r", error)

    def _check_client_local(self, client_identifier: Any, round_number: Any) -> tuple[str, int]:
        if self.training_mode != "federated":
            raise InvalidInput("client-local metrics (client_identifier) need a federated run")
        if client_identifier is None or round_number is None:
            raise InvalidInput("client-local metrics need both client_identifier and round_number")
        return (
            _points.check_client_identifier(client_identifier),
            _points.check_index(round_number, "round_number", _points.MAX_ROUND),
        )

    def log_server_evaluation(self, round_number: int, **fields: Any) -> None:
        """Queue the server-side evaluation of round `round_number` (0 = before training).

        Fields: loss, accuracy, precision, recall, f1_score, auroc, true_positives,
        true_negatives, false_positives, false_negatives, num_samples, evaluation_time
        (default now), additional_metrics; any other numeric field goes into
        additional_metrics. A round is one record: logging it again replaces it whole.
        """
        self._guarded(self._log_server_evaluation, round_number, fields)

    def _log_server_evaluation(self, round_number: Any, fields: dict[str, Any]) -> None:
        if self.training_mode != "federated":
            raise InvalidInput("server evaluations need a federated run")
        body = _points.evaluation_body(round_number, fields)
        self._client._enqueue((EVALUATIONS, self._ref, body), 1)

    def register_clients(self, clients: Iterable[Any]) -> None:
        """Register federated clients: identifiers or {client_identifier, client_config}."""
        self._guarded(self._register_clients, clients)

    def _register_clients(self, clients: Iterable[Any]) -> None:
        if self.training_mode != "federated":
            raise InvalidInput("clients belong to federated runs")
        if isinstance(clients, str | Mapping):
            clients = [clients]
        bodies = [_points.client_body(client) for client in clients]
        if bodies:
            self._client._enqueue((CLIENTS, self._ref, bodies), len(bodies))

    def set_status(self, status: str, end_time: datetime | str | None = None) -> None:
        """Set the status: completed/failed set end_time (default now), in_progress clears it."""
        self._guarded(self._set_status, status, end_time)

    def _set_status(self, status: str, end_time: datetime | str | None) -> None:
        if status not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
        changes: dict[str, Any] = {"status": status}
        changes["end_time"] = None if status == "in_progress" else _points.utc_text(end_time)
        self._client._enqueue((PATCH, self._ref, changes), 1)

    def update(self, **changes: Any) -> None:
        """Change run fields (run_description, config, source_path, ...) by PATCH."""
        self._guarded(self._client._enqueue, (PATCH, self._ref, dict(changes)), 1)

    def finish(self, status: str = "completed", timeout: float | None = None) -> bool:
        """Set the final status and end time, then flush; True when everything was sent."""
        if not self._finished:
            self._finished = True
            self.set_status(status)
        return self._client.flush(self._client.finish_timeout if timeout is None else timeout)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        self.finish("failed" if exc_type is not None else "completed")

    def _guarded(self, function, *args: Any) -> None:
        try:
            function(*args)
        except InvalidInput as problem:
            self._client._refuse(f"invalid input for run {self.external_id}", [str(problem)])
        except Exception as error:
            if self._client.strict:
                raise
            log.warning("runs_client: %s failed: %r", function.__name__.lstrip("_"), error)


class RunsClient:
    """A connection to runs_service that logs in the background and never loses a point.

    url: the service, e.g. http://127.0.0.1:8000. token: a token with write scope.
    spool_dir: where undeliverable batches wait (default: the per-user cache folder,
    or $RUNS_CLIENT_SPOOL_DIR). strict: raise on invalid data instead of warning.
    queue_size: points held in memory before the oldest move to the spool. timeout: seconds
    one HTTP request may take. The rest tune retries and waits (client/README.md).
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        spool_dir: str | Path | None = None,
        strict: bool = False,
        queue_size: int = 100_000,
        spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        flush_interval: float = 0.5,
        finish_timeout: float = 60.0,
        exit_timeout: float = 10.0,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.url = url.rstrip("/")
        self.strict = strict
        self.queue_size = queue_size
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.flush_interval = flush_interval
        self.finish_timeout = finish_timeout
        self.exit_timeout = exit_timeout
        self.timeout = timeout
        self._transport = Transport(self.url, token, timeout)
        root = Path(spool_dir) if spool_dir is not None else default_spool_root()
        self.spool = Spool(root, self.url, spool_max_bytes)
        self._name_categories: dict[str, int] = {}
        self._refs: dict[str, _RunRef] = {}
        self._errors: list[str] = []

        self._lock = threading.Lock()
        # Held while moving entries from memory to the spool, so they land in order.
        self._spill_lock = threading.Lock()
        self._queue: deque[tuple[str, _RunRef, Any]] = deque()
        self._queue_points: deque[int] = deque()
        self._queued = 0
        self._overflow: list[list[tuple[str, _RunRef, Any]]] = []
        # The sender holds entries taken from the queue (or, at first, adopts the spool
        # files of earlier processes, which flush() must wait for).
        self._busy = True
        self._spilling = False
        self._offline = False
        self._next_probe = 0.0
        self._probe_attempt = 0
        # flush() while offline asks the sender for one reconnection attempt (so a service
        # that is back gets the spool now) and waits for a sender pass begun after asking.
        self._probes_asked = 0
        self._probes_done = 0
        self._auth_warned = False
        self._closing = False
        self._closed = False
        self._give_up = threading.Event()  # cut retries short: close() ran out of time
        self._wake = threading.Event()
        self._spill_wake = threading.Event()
        self._idle = threading.Condition(self._lock)
        self._sender = threading.Thread(target=self._send_loop, name="runs-client-sender")
        self._sender.daemon = True
        self._spiller = threading.Thread(target=self._spill_loop, name="runs-client-spool")
        self._spiller.daemon = True
        self._sender.start()
        self._spiller.start()
        _LIVE_CLIENTS.add(self)

    # -- public API --------------------------------------------------------------------

    def start_run(
        self,
        training_mode: str = "centralized",
        run_description: str | None = None,
        config: Mapping[str, Any] | None = None,
        external_id: str | None = None,
        *,
        start_time: datetime | str | None = None,
        **fields: Any,
    ) -> Run:
        """Create a run (in the background) and return it; use it as a context manager.

        external_id defaults to a fresh client-generated id: a create replayed after an
        outage finds the run it already made instead of making a second one. Other
        fields (source_path, experiment, tags, ...) are sent as given.
        """
        if training_mode not in TRAINING_MODES:
            message = f"training_mode must be centralized or federated, not {training_mode!r}"
            if self.strict:
                raise RunsClientError(message)
            log.warning("runs_client: %s; using centralized", message)
            training_mode = "centralized"
        body: dict[str, Any] = {
            "training_mode": training_mode,
            "external_id": external_id or f"runs-client-{uuid.uuid4().hex}",
            "start_time": _points.utc_text(start_time),
        }
        if run_description is not None:
            body["run_description"] = run_description
        if config is not None:
            body["config"] = dict(config)
        body.update({name: value for name, value in fields.items() if value is not None})
        ref = self._ref(body)
        self._enqueue((CREATE, ref, None), 1)
        return Run(self, ref, training_mode)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything logged so far was sent or spooled; False on timeout.

        In strict mode, raises RunsClientError for data refused since the last call.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            if self._offline:
                self._probes_asked += 1
                self._next_probe = 0.0
            while not self._is_idle():
                self._wake.set()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._idle.wait(0.05 if remaining is None else min(remaining, 0.05))
            done = self._is_idle()
            errors, self._errors = self._errors, []
        if errors and self.strict:
            raise RunsClientError("; ".join(errors))
        return done

    def close(self, timeout: float | None = None) -> bool:
        """Flush (up to timeout), then spool whatever is left and stop the threads."""
        if self._closed:
            return True
        timeout = self.exit_timeout if timeout is None else timeout
        try:
            done = self.flush(timeout)
        finally:
            self._give_up.set()
            with self._lock:
                self._closing = True
            self._wake.set()
            self._spill_wake.set()
            # An in-flight request ends within the HTTP timeout; then the sender spools.
            self._sender.join(self.timeout + 5.0)
            self._spiller.join(5.0)
            self._transport.close()
            self.spool.close()
            self._closed = True
            _LIVE_CLIENTS.discard(self)
        return done

    def __enter__(self) -> RunsClient:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    @property
    def pending_points(self) -> int:
        """Items waiting in memory (not counting the spool)."""
        return self._queued

    # -- producer side -------------------------------------------------------------------

    def _ref(self, create_body: dict[str, Any]) -> _RunRef:
        external_id = create_body["external_id"]
        with self._lock:
            ref = self._refs.get(external_id)
            if ref is None:
                ref = self._refs[external_id] = _RunRef(external_id, create_body)
            return ref

    def _enqueue(self, entry: tuple[str, _RunRef, Any], points: int) -> None:
        with self._lock:
            closing = self._closing
            if not closing:
                self._append(entry, points)
        if closing:  # after close(): straight to the spool, for the next process
            with self._spill_lock:
                self._spill_now([entry])

    def _append(self, entry: tuple[str, _RunRef, Any], points: int) -> None:
        """Queue one entry; the caller holds the lock."""
        self._queue.append(entry)
        self._queue_points.append(points)
        self._queued += points
        if self._queued > self.queue_size:
            # The oldest entries go to the spool thread; this call does no I/O.
            detached = []
            while self._queued > self.queue_size // 2 and self._queue:
                detached.append(self._queue.popleft())
                self._queued -= self._queue_points.popleft()
            self._overflow.append(detached)
            self._spill_wake.set()
        elif self._queued >= _points.MAX_METRICS_PER_BATCH and not self._wake.is_set():
            self._wake.set()

    def _refuse(self, summary: str, problems: list[str]) -> None:
        message = f"{summary}: {'; '.join(problems)}"
        if self.strict:
            raise RunsClientError(message)
        log.warning("runs_client: dropped %s", message)

    def _record_refusal(self, message: str) -> None:
        log.warning("runs_client: %s", message)
        if self.strict:
            with self._lock:
                self._errors.append(message)

    # -- shared by both threads ----------------------------------------------------------

    def _is_idle(self) -> bool:
        return (
            not self._queue
            and not self._overflow
            and not self._busy
            and not self._spilling
            and (self._offline or not self.spool.has_pending())
            and (not self._offline or self._probes_done >= self._probes_asked)
        )

    def _notify_idle(self) -> None:
        with self._idle:
            self._idle.notify_all()

    def _spill_now(self, entries: list[tuple[str, _RunRef, Any]]) -> None:
        self._spool_requests(build_requests(entries))

    def _spool_requests(self, requests: list[_Request]) -> None:
        refused = self.spool.append(request.to_record() for request in requests)
        if refused:
            lost = sum(len((record["body"] or {}).get("metrics", ())) for record in refused)
            log.error(
                "runs_client: spool %s is full (%d bytes): %d batches (%d points) dropped",
                self.spool.path,
                self.spool.max_bytes,
                len(refused),
                lost,
            )

    # -- the spool thread ----------------------------------------------------------------

    def _spill_loop(self) -> None:
        while True:
            self._spill_wake.wait(1.0)
            self._spill_wake.clear()
            with self._spill_lock:
                with self._lock:
                    chunks, self._overflow = self._overflow, []
                    self._spilling = bool(chunks)
                    closing = self._closing
                for chunk in chunks:
                    self._spill_now(chunk)
            if chunks:
                with self._lock:
                    self._spilling = False
                self._wake.set()
                self._notify_idle()
            if closing:
                return

    # -- the sender thread ---------------------------------------------------------------

    def _send_loop(self) -> None:
        try:
            adopted = self.spool.adopt_orphans()
            if adopted:
                log.info("runs_client: replaying %d spooled batches of earlier processes", adopted)
        except OSError as error:
            log.warning("runs_client: could not read the spool folder: %r", error)
        with self._lock:
            self._busy = False
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            with self._lock:
                probes_asked = self._probes_asked
            try:
                self._send_pending()
            except Exception:  # the sender must survive anything to keep data flowing
                log.exception("runs_client: unexpected error in the sender")
                with self._lock:
                    self._busy = False
            with self._lock:
                self._probes_done = probes_asked
            self._notify_idle()
            with self._lock:
                if self._closing:
                    break
        self._shutdown()

    def _shutdown(self) -> None:
        self._spill_memory()
        if self.spool.has_pending():
            log.warning(
                "runs_client: %d bytes of batches wait in %s; the next client started with "
                "this spool folder sends them",
                self.spool.pending_bytes,
                self.spool.directory,
            )
        self._notify_idle()

    def _send_pending(self) -> None:
        if self._offline:
            self._spill_memory()
            if time.monotonic() < self._next_probe and not self._give_up.is_set():
                return
            if self._give_up.is_set():
                return
        while True:
            # The spool holds older batches than memory: they go first.
            if self.spool.has_pending() and not self._replay_spool():
                return
            with self._lock:
                entries = self._take(_points.MAX_METRICS_PER_BATCH)
                if not entries:
                    return
                self._busy = True
            requests = build_requests(entries)
            index = 0
            try:
                for index, request in enumerate(requests):
                    if not self._deliver(request, self.max_retries):
                        self._go_offline()
                        self._spool_requests(requests[index:])
                        break
            except Exception:
                self._spool_requests(requests[index:])  # a bug here must not lose them
                raise
            finally:
                with self._lock:
                    self._busy = False
            self._notify_idle()
            if self._offline:
                self._spill_memory()
                return

    def _take(self, limit: int) -> list[tuple[str, _RunRef, Any]]:
        entries: list[tuple[str, _RunRef, Any]] = []
        taken = 0
        while self._queue and taken < limit:
            entries.append(self._queue.popleft())
            points = self._queue_points.popleft()
            self._queued -= points
            taken += points
        return entries

    def _spill_memory(self) -> None:
        """Move everything in memory (overflow first: it is older) to the spool."""
        with self._spill_lock:
            with self._lock:
                chunks, self._overflow = self._overflow, []
                chunks.append(list(self._queue))
                self._queue.clear()
                self._queue_points.clear()
                self._queued = 0
                self._busy = True
            try:
                for chunk in chunks:
                    if chunk:
                        self._spill_now(chunk)
            finally:
                with self._lock:
                    self._busy = False

    def _go_offline(self) -> None:
        if not self._offline:
            log.warning(
                "runs_client: %s does not answer; batches go to %s until it does",
                self.url,
                self.spool.directory,
            )
        self._offline = True
        self._probe_attempt += 1
        self._next_probe = time.monotonic() + backoff_delay(
            self._probe_attempt, self.backoff_base, self.backoff_max
        )

    def _replay_spool(self) -> bool:
        """Send spooled batches, oldest first; False when the service stopped answering."""
        retries = 0 if self._offline else self.max_retries
        while not self._give_up.is_set():
            head = self.spool.peek()
            if head is None:
                break
            record, end = head
            request = self._from_record(record)
            if request is not None and not self._deliver(request, retries):
                self._go_offline()
                return False
            self.spool.consume(end)
            retries = self.max_retries
        return not self.spool.has_pending()

    def _from_record(self, record: Any) -> _Request | None:
        try:
            if record.get("v") != SPOOL_FORMAT:
                raise ValueError(f"unknown spool format {record.get('v')!r}")
            ref = self._ref(dict(record["run"]["create"]))
            kind, body = record["op"], record.get("body")
            request = _Request(kind, ref, body=body)
            if kind in BATCH_KEYS:
                for index, item in enumerate(body[BATCH_KEYS[kind]]):
                    request.items[index] = item
            elif kind not in (CREATE, PATCH):
                raise ValueError(f"unknown operation {kind!r}")
            return request
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            log.warning("runs_client: skipping an unreadable spool record: %r", error)
            return None

    def _deliver(self, request: _Request, retries: int) -> bool:
        """Send one request; False when the service did not answer within the retries.

        A refusal (4xx) is an answer: the refused items are dropped with a warning and
        the rest are sent again.
        """
        attempt = 0
        while True:
            outcome, response = self._attempt(request)
            if outcome == "done":
                if self._offline:
                    self._offline = False
                    self._probe_attempt = 0
                    log.warning("runs_client: %s answers again", self.url)
                return True
            if outcome == "transient":
                if attempt >= retries or self._give_up.is_set():
                    return False
                retry_after = _retry_after(response.headers) if response is not None else None
                delay = backoff_delay(attempt, self.backoff_base, self.backoff_max, retry_after)
                attempt += 1
                if self._give_up.wait(delay):
                    return False
                continue
            # outcome == "retry": some items were dropped; send the rest now.

    def _attempt(self, request: _Request) -> tuple[str, Response | None]:
        ref = request.ref
        if ref.refused is not None:
            self._record_refusal(f"{request.describe()} dropped: run refused ({ref.refused})")
            return "done", None
        if ref.run_id is None:
            outcome, response = self._create(ref)
            if outcome != "done" or request.kind == CREATE:
                return outcome, response
            if ref.refused is not None:
                self._record_refusal(f"{request.describe()} dropped: the run was refused")
                return "done", response
        elif request.kind == CREATE:
            return "done", None
        method = "PATCH" if request.kind == PATCH else "POST"
        try:
            response = self._transport.request(
                method, PATHS[request.kind].format(ref.run_id), request.payload()
            )
        except TransportError:
            return "transient", None
        return self._judge(request, response), response

    def _create(self, ref: _RunRef) -> tuple[str, Response | None]:
        try:
            response = self._transport.request("POST", "/api/runs", ref.create_body)
        except TransportError:
            return "transient", None
        if response.status in (200, 201) and isinstance(response.body, dict):
            ref.run_id = int(response.body["id"])
            return "done", response
        if self._is_transient(response):
            return "transient", response
        if response.status in (404, 405):
            # Not this service (a wrong URL or prefix): keep the data for the right one.
            self._warn_misconfigured(response)
            return "transient", response
        ref.refused = f"HTTP {response.status}: {response.message}"
        self._record_refusal(f"run {ref.external_id} refused by the service: {ref.refused}")
        return "done", response

    def _is_transient(self, response: Response) -> bool:
        if response.status in AUTH_STATUSES:
            self._warn_misconfigured(response)
            return True
        return response.status >= 500 or response.status in TRANSIENT_STATUSES

    def _warn_misconfigured(self, response: Response) -> None:
        if not self._auth_warned:
            self._auth_warned = True
            log.error(
                "runs_client: %s refuses to take runs (HTTP %d: %s); batches are kept in %s",
                self.url,
                response.status,
                response.message,
                self.spool.directory,
            )

    def _judge(self, request: _Request, response: Response) -> str:
        if 200 <= response.status < 300:
            return "done"
        if self._is_transient(response):
            return "transient"
        if response.status == 413 and len(request.items) > 1:
            log.warning("runs_client: %s too large; sending it in halves", request.describe())
            return self._split(request)
        bad = refused_indexes(response, BATCH_KEYS.get(request.kind))
        if bad and len(bad) < len(request.items):
            keys = list(request.items)
            names = [_item_name(request.items[keys[index]]) for index in sorted(bad)]
            self._record_refusal(
                f"{len(bad)} of {request.describe()} refused (HTTP {response.status}: "
                f"{response.message}): {', '.join(names[:20])}"
            )
            for index in bad:
                request.items.pop(keys[index], None)
            return "retry"
        self._record_refusal(
            f"{request.describe()} refused (HTTP {response.status}: {response.message})"
        )
        return "done"

    def _split(self, request: _Request) -> str:
        keys = list(request.items)
        half = len(keys) // 2
        first = _Request(request.kind, request.ref, {k: request.items[k] for k in keys[:half]})
        if not self._deliver(first, self.max_retries):
            return "transient"
        for key in keys[:half]:
            del request.items[key]
        return "retry"


def build_requests(entries: Iterable[tuple[str, _RunRef, Any]]) -> list[_Request]:
    """Group queued entries into requests, in order, within the service's batch limits.

    Points of one run travel together up to the next create or patch of that run; an
    item logged twice (same metric, step, client and round; same round; same client)
    is sent once with its last value, as the service takes each item once per batch.
    """
    requests: list[_Request] = []
    open_batches: dict[tuple[str, int], _Request] = {}
    for kind, ref, payload in entries:
        if kind == CREATE or kind == PATCH:
            for batch_kind in BATCH_KEYS:
                open_batches.pop((batch_kind, id(ref)), None)
            requests.append(_Request(kind, ref, body=payload))
            continue
        key = (kind, id(ref))
        batch = open_batches.get(key)
        for item_key, item in _items(kind, payload):
            if batch is None or (item_key not in batch.items and batch.full()):
                batch = open_batches[key] = _Request(kind, ref)
                requests.append(batch)
            batch.items.pop(item_key, None)
            batch.items[item_key] = item
    return requests


def _items(kind: str, payload: Any) -> Iterable[tuple[Any, dict[str, Any]]]:
    if kind == METRICS:
        step, client, round_number, values = payload
        for name, value in values:
            point = {"metric_name": name, "metric_value": value, "step": step}
            if client is not None:
                point["client_identifier"] = client
                point["round_number"] = round_number
            yield (name, step, client, round_number), point
    elif kind == EVALUATIONS:
        yield payload["round_number"], payload
    else:
        for client in payload:
            yield client["client_identifier"], client


def refused_indexes(response: Response, batch_key: str | None) -> set[int]:
    """Indexes of the items a 422 names in errors.json.<batch_key>, if it names any."""
    if batch_key is None or not isinstance(response.body, dict):
        return set()
    errors = response.body.get("errors")
    if not isinstance(errors, dict):
        return set()
    located = errors.get("json", errors)
    items = located.get(batch_key) if isinstance(located, dict) else None
    if not isinstance(items, dict):
        return set()
    return {int(key) for key in items if str(key).isdigit()}


def _item_name(item: dict[str, Any]) -> str:
    if "metric_name" in item:
        where = f"step {item['step']}"
        if "client_identifier" in item:
            where += f", client {item['client_identifier']}, round {item['round_number']}"
        return f"{item['metric_name']}={item['metric_value']!r} ({where})"
    if "round_number" in item:
        return f"round {item['round_number']}"
    return str(item.get("client_identifier"))


_LIVE_CLIENTS: weakref.WeakSet[RunsClient] = weakref.WeakSet()


@atexit.register
def _close_at_exit() -> None:
    """At interpreter exit: send what is queued (bounded by exit_timeout), spool the rest."""
    for client in list(_LIVE_CLIENTS):
        try:
            client.close()
        except Exception as error:  # exit must go on for the other clients
            log.warning("runs_client: closing at exit failed: %r", error)
