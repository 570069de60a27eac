"""Benchmark runs_service end to end: gunicorn (2 workers), HTTP writes, HTTP reads.

    .venv/bin/python -m benchmarks.run --quick        # about a minute, both databases
    .venv/bin/python -m benchmarks.run                # N = 2,000 and 10,000, both databases

For every database × N: a fresh database (`flask db upgrade`), gunicorn serving
`wsgi:app` with `gunicorn.conf.py` on a free loopback port, the seeded workload of
`benchmarks.workload` loaded through the write API by several keep-alive loader
threads, then the read cases over a keep-alive connection (warm-up, then timed
repetitions). Prints a markdown table and checks the targets of issue 7. Everything
it starts (gunicorn, the database) it stops, on errors and Ctrl-C too.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import platform
import queue
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__:
    from benchmarks.workload import DEFAULT_SEED, WorkloadRun, big_run, generate_workload
else:  # run as a script: benchmarks/ itself is on sys.path
    from workload import DEFAULT_SEED, WorkloadRun, big_run, generate_workload

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
TOKEN = "benchmark-token"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_SIZES = (2_000, 10_000)
QUICK_SIZE = 300
MAX_METRICS_PER_BATCH = 10_000
LOADER_THREADS = 4
CONCURRENT_CLIENTS = 4
WORKERS = 2

LIST_PAGE = "/api/runs/list?limit=50&sort_by=start_time"
DOWNSAMPLED_POINTS = 100
# (key, label, path; "{big}" is the id of the 1,000-epoch run)
READ_CASES = (
    ("list_start_time", "`/list` 50 by start_time", LIST_PAGE),
    ("list_federated", "`/list` 50 federated", LIST_PAGE + "&training_mode=federated"),
    (
        "list_best_acc",
        "`/list` 50 by best_val_accuracy",
        "/api/runs/list?limit=50&sort_by=best_val_accuracy",
    ),
    (
        "list_metric_best",
        "`/list` 50 by val_acc's best (sort_by=metric)",
        "/api/runs/list?limit=50&sort_by=metric&sort_metric=val_acc",
    ),
    (
        "list_metric_columns",
        "`/list` 50 with 2 metric columns",
        LIST_PAGE + "&metrics=val_acc,val_loss",
    ),
    ("metrics_big", "`/metrics` 1,000 epochs", "/api/runs/{big}/metrics"),
    ("summaries_big", "`metric-summaries` 1,000 epochs", "/api/runs/{big}/metric-summaries"),
    (
        "history_downsampled",
        f"`metric-history` val_loss, {DOWNSAMPLED_POINTS} of 1,000 points",
        f"/api/runs/{{big}}/metric-history?names=val_loss&max_points={DOWNSAMPLED_POINTS}",
    ),
    (
        "compare",
        "`compare` 2 runs × 2 series",
        f"/api/runs/compare?run_ids=1,{{big}}&names=val_acc,val_loss&max_points={DOWNSAMPLED_POINTS}",
    ),
    ("csv_big", "`/download/csv` 1,000 epochs", "/api/runs/{big}/download/csv"),
    ("analytics", "`/analytics/summary`", "/api/runs/analytics/summary"),
    # Dashboard pages (HTML rendered on the server; their charts' data are the cases above).
    ("page_list", "page `/` (50 runs)", "/"),
    ("page_run_big", "page `/runs/{big}` 1,000 epochs", "/runs/{big}"),
    ("page_compare", "page `/compare` 2 runs", "/compare?run_ids=1,{big}"),
    ("page_analytics", "page `/analytics`", "/analytics"),
)
# Targets of issue 7 (p50 in ms for the read cases); the cases added since have none.
READ_TARGETS_MS = {
    "list_start_time": 5.0,
    "list_federated": 5.0,
    "list_best_acc": 5.0,
    "list_metric_best": 6.0,
    "metrics_big": 40.0,
    "summaries_big": 5.0,
    "csv_big": 60.0,
    "analytics": 50.0,
    "page_list": 20.0,
    "page_run_big": 20.0,
    "page_compare": 20.0,
    "page_analytics": 20.0,
}
INGEST_TARGET = 50_000.0  # points/s
CONCURRENT_TARGET = 400.0  # requests/s
RSS_TARGET_MB = 150.0
# Growth of a read case's p50 between two sizes: issue 7's from 2,000 to 10,000 runs,
# issue 15's from 10,000 to 100,000 ("flat reads"). Other pairs are shown without one.
GROWTH_TARGETS = {(2_000, 10_000): 2.0, (10_000, 100_000): 1.5}


class BenchmarkError(RuntimeError):
    """The harness or the service failed; the message says which request."""


@dataclass
class Settings:
    """What one benchmark invocation does."""

    databases: list[str]
    sizes: list[int]
    repetitions: int
    warmup: int
    concurrent_seconds: float
    postgres_url: str
    seed: int
    reference: str | None = None  # "mlflow": ours against MLflow (benchmarks.mlflow_reference)


@dataclass
class ReadResult:
    p50_ms: float
    p95_ms: float
    repetitions: int
    response_bytes: int


@dataclass
class Result:
    """The figures of one database × N."""

    database: str
    runs: int
    metric_points: int = 0
    metric_requests: int = 0
    generate_seconds: float = 0.0
    setup_seconds: float = 0.0
    ingest_seconds: float = 0.0
    ingest_points_per_second: float = 0.0
    reads: dict[str, ReadResult] = field(default_factory=dict)
    concurrent_requests_per_second: float = 0.0
    concurrent_p50_ms: float = 0.0
    worker_rss_mb: list[float] = field(default_factory=list)
    worker_peak_rss_mb: list[float] = field(default_factory=list)
    database_mb: float = 0.0

    @property
    def column(self) -> str:
        return f"{self.database} N={self.runs:,}"


# --------------------------------------------------------------------------- HTTP


class Client:
    """One keep-alive HTTP/1.1 connection to the service."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=120)
        connection.connect()
        assert connection.sock is not None
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """Send one request; reconnect once if the server closed an idle connection."""
        headers = {"Authorization": f"Bearer {TOKEN}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            if self.connection is None:
                self.connection = self._connect()
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionError, http.client.CannotSendRequest):
                self.close()
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def expect(self, method: str, path: str, body: bytes | None = None, status: int = 200) -> bytes:
        """Send a request and fail loudly unless it answers `status`."""
        got, data = self.request(method, path, body)
        if got != status:
            raise BenchmarkError(f"{method} {path} answered {got}: {data[:500]!r}")
        return data

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def run_threads(count: int, target: Callable[[int, threading.Event], None]) -> None:
    """Run `target(i, stop)` in `count` threads; on a failure or Ctrl-C set `stop` and re-raise."""
    errors: list[BaseException] = []
    stop = threading.Event()

    def guarded(index: int) -> None:
        try:
            target(index, stop)
        except BaseException as error:  # handed to the main thread
            errors.append(error)
            stop.set()

    threads = [threading.Thread(target=guarded, args=(i,), daemon=True) for i in range(count)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    except BaseException:
        stop.set()  # the threads finish their current request and return
        for thread in threads:
            thread.join(timeout=10)
        raise
    if errors:
        raise errors[0]


def drain(
    tasks: queue.SimpleQueue,
    port: int,
    handle: Callable[[Client, Any], None],
    stop: threading.Event,
) -> None:
    """Loader thread body: handle tasks on one keep-alive connection until none is left."""
    client = Client(port)
    try:
        while not stop.is_set():
            try:
                task = tasks.get_nowait()
            except queue.Empty:
                return
            handle(client, task)
    finally:
        client.close()


# ------------------------------------------------------------------ service & db


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def postgres_admin(url: str) -> Any:
    """Open an autocommit psycopg connection to the maintenance database of `url`."""
    import psycopg  # only needed for PostgreSQL

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


@contextmanager
def fresh_database(kind: str, workdir: Path, settings: Settings) -> Iterator[str]:
    """Yield the SQLAlchemy URL of an empty database; drop it afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'runs.db'}"
        return
    name = f"runs_bench_{os.getpid()}_{int(time.time())}"
    with postgres_admin(settings.postgres_url) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        base = settings.postgres_url.rsplit("/", 1)[0]
        yield f"{base}/{name}"
    finally:
        with postgres_admin(settings.postgres_url) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def settle(kind: str, url: str) -> None:
    """Leave PostgreSQL as autovacuum would soon after a bulk load: vacuumed and analysed.

    A default server runs autovacuum within a minute of such a load; the cluster the
    benchmark may run on can have it off, and a never-analysed table gets planned with
    made-up row counts. SQLite keeps no statistics unless asked, and needs nothing here.
    """
    if kind != "postgres":
        return
    with postgres_admin(url) as connection:
        connection.execute("VACUUM ANALYZE")


def database_size_mb(kind: str, url: str, settings: Settings) -> float:
    """SQLite: the file plus its write-ahead log; PostgreSQL: pg_database_size."""
    if kind == "sqlite":
        path = Path(url.removeprefix("sqlite:///"))
        files = (path, path.with_name(path.name + "-wal"))
        return sum(f.stat().st_size for f in files if f.exists()) / 2**20
    name = url.rsplit("/", 1)[1]
    with postgres_admin(settings.postgres_url) as admin:
        row = admin.execute("SELECT pg_database_size(%s)", (name,)).fetchone()
    return row[0] / 2**20


@contextmanager
def service(database_url: str, workdir: Path) -> Iterator[tuple[int, int]]:
    """Migrate the database, serve it with gunicorn; yield (port, master pid); stop it."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        RUNS_DATABASE_URL=database_url,
        RUNS_API_TOKENS=TOKEN,
        RUNS_RESULTS_DIR=str(workdir / "results"),
        BIND=f"{HOST}:{port}",
        WEB_CONCURRENCY=str(WORKERS),
    )
    env.pop("RUNS_REQUIRE_AUTH_FOR_READS", None)
    python = sys.executable
    upgrade = subprocess.run(
        [python, "-m", "flask", "--app", "runs_service", "db", "upgrade"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    if upgrade.returncode != 0:
        raise BenchmarkError(f"flask db upgrade failed:\n{upgrade.stderr[-2000:]}")
    log_path = workdir / "gunicorn.log"
    with log_path.open("wb") as log:
        master = subprocess.Popen(
            [python, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the harness, which stops gunicorn itself
        )
    try:
        wait_ready(port, master)
        yield port, master.pid
    except Exception:
        print(f"gunicorn log (tail):\n{tail(log_path)}", file=sys.stderr)
        raise
    finally:
        stop(master)


def wait_ready(port: int, master: subprocess.Popen, timeout: float = 60.0) -> None:
    """Wait until /readyz answers 200 and both workers are up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if master.poll() is not None:
            raise BenchmarkError(f"gunicorn exited with {master.returncode}")
        client = Client(port)
        try:
            if client.request("GET", "/readyz")[0] == 200 and len(workers(master.pid)) == WORKERS:
                return
        except (OSError, http.client.HTTPException):
            pass  # not listening yet
        finally:
            client.close()
        time.sleep(0.2)
    raise BenchmarkError(f"gunicorn not ready on port {port} after {timeout:.0f} s")


def stop(master: subprocess.Popen) -> None:
    """TERM the gunicorn master (graceful), then KILL its process group if it lingers."""
    if master.poll() is None:
        master.send_signal(signal.SIGTERM)
        try:
            master.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(master.pid, signal.SIGKILL)
            master.wait()


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def workers(master_pid: int) -> list[int]:
    """The pids of the gunicorn workers: the processes whose parent is the master."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name, which sits in parentheses: state, ppid, ...
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == master_pid:
            children.append(int(entry.name))
    return sorted(children)


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


# ------------------------------------------------------------------------ phases


@dataclass
class PreparedRun:
    """A workload run serialized once, before anything is timed."""

    index: int
    run: bytes
    clients: bytes | None
    evaluations: bytes | None
    metric_batches: list[tuple[bytes, int]]


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def prepare(run: WorkloadRun, index: int) -> PreparedRun:
    chunks = [
        run.metrics[i : i + MAX_METRICS_PER_BATCH]
        for i in range(0, len(run.metrics), MAX_METRICS_PER_BATCH)
    ]
    batches = [(dumps({"metrics": chunk}), len(chunk)) for chunk in chunks]
    return PreparedRun(
        index=index,
        run=dumps(run.run),
        clients=dumps({"clients": run.clients}) if run.clients else None,
        evaluations=dumps({"evaluations": run.evaluations}) if run.evaluations else None,
        metric_batches=batches,
    )


def load(port: int, prepared: list[PreparedRun], result: Result) -> dict[int, int]:
    """Create runs, clients and evaluations, then time the metric batches; return index → id."""
    ids: dict[int, int] = {}
    tasks: queue.SimpleQueue = queue.SimpleQueue()
    for item in prepared:
        tasks.put(item)

    def set_up(client: Client, item: PreparedRun) -> None:
        run_id = json.loads(client.expect("POST", "/api/runs", item.run, status=201))["id"]
        ids[item.index] = run_id
        if item.clients is not None:
            client.expect("POST", f"/api/runs/{run_id}/clients", item.clients)
        if item.evaluations is not None:
            client.expect("POST", f"/api/runs/{run_id}/server-evaluations", item.evaluations)

    started = time.perf_counter()
    run_threads(LOADER_THREADS, lambda _, stop: drain(tasks, port, set_up, stop))
    result.setup_seconds = time.perf_counter() - started

    batches = [(ids[item.index], body) for item in prepared for body, _ in item.metric_batches]
    result.metric_points = sum(count for item in prepared for _, count in item.metric_batches)
    result.metric_requests = len(batches)
    for batch in batches:
        tasks.put(batch)

    def post_metrics(client: Client, batch: tuple[int, bytes]) -> None:
        run_id, body = batch
        client.expect("POST", f"/api/runs/{run_id}/metrics", body)

    started = time.perf_counter()
    run_threads(LOADER_THREADS, lambda _, stop: drain(tasks, port, post_metrics, stop))
    result.ingest_seconds = time.perf_counter() - started
    result.ingest_points_per_second = result.metric_points / result.ingest_seconds
    return ids


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def check_body(key: str, data: bytes) -> None:
    """Fail if a read case answers something other than what it is meant to measure."""
    if key.startswith("list"):
        runs = json.loads(data)["runs"]
        if len(runs) != 50:
            raise BenchmarkError(f"{key}: expected a page of 50 runs, got {len(runs)}")
    elif key == "metrics_big":
        history = json.loads(data)["training_history"]
        if len(history) != 1_000:
            raise BenchmarkError(f"{key}: expected 1,000 epochs, got {len(history)}")
    elif key == "history_downsampled":
        (series,) = json.loads(data)["series"]
        if not series["downsampled"] or len(series["steps"]) > DOWNSAMPLED_POINTS:
            raise BenchmarkError(f"{key}: expected at most {DOWNSAMPLED_POINTS} of 1,000 points")
    elif key == "compare":
        if len(json.loads(data)["runs"]) != 2:
            raise BenchmarkError(f"{key}: expected 2 runs")
    elif key == "csv_big":
        if data.count(b"\n") < 1_000:
            raise BenchmarkError(f"{key}: expected 1,000 CSV rows")
    elif key.startswith("page") and (b"</html>" not in data or b"notice-error" in data):
        raise BenchmarkError(f"{key}: expected a whole page without an error")


def read_cases(port: int, big_id: int, settings: Settings, result: Result) -> None:
    """Warm up, then time the read cases in rounds on one keep-alive connection.

    Each round requests every case once, so a slow spell of a shared virtual machine
    spreads over all cases instead of falling on whichever case ran during it.
    """
    client = Client(port)
    paths = {key: template.format(big=big_id) for key, _, template in READ_CASES}
    samples: dict[str, list[float]] = {key: [] for key in paths}
    sizes: dict[str, int] = {}
    try:
        for key, path in paths.items():
            data = b""
            for _ in range(settings.warmup):
                data = client.expect("GET", path)
            check_body(key, data)
        for _ in range(settings.repetitions):
            for key, path in paths.items():
                started = time.perf_counter()
                data = client.expect("GET", path)
                samples[key].append((time.perf_counter() - started) * 1000)
                sizes[key] = len(data)
    finally:
        client.close()
    for key, timings in samples.items():
        result.reads[key] = ReadResult(
            p50_ms=statistics.median(timings),
            p95_ms=percentile(timings, 0.95),
            repetitions=len(timings),
            response_bytes=sizes[key],
        )


def concurrent_list(port: int, settings: Settings, result: Result) -> None:
    """Requests/s of the 50-run page under CONCURRENT_CLIENTS keep-alive clients."""
    latencies: list[list[float]] = [[] for _ in range(CONCURRENT_CLIENTS)]
    window = {"begin": 0.0, "end": 0.0}

    def open_window() -> None:  # run by one thread once every client is connected
        window["begin"] = time.perf_counter()
        window["end"] = window["begin"] + settings.concurrent_seconds

    ready = threading.Barrier(CONCURRENT_CLIENTS, action=open_window, timeout=60)

    def hammer(index: int, stop: threading.Event) -> None:
        client = Client(port)
        try:
            client.expect("GET", LIST_PAGE)  # connect and warm up outside the window
            ready.wait()
            while time.perf_counter() < window["end"] and not stop.is_set():
                began = time.perf_counter()
                client.expect("GET", LIST_PAGE)
                latencies[index].append((time.perf_counter() - began) * 1000)
        except BaseException:
            ready.abort()  # release the clients still waiting to start
            raise
        finally:
            client.close()

    run_threads(CONCURRENT_CLIENTS, hammer)
    elapsed = time.perf_counter() - window["begin"]
    samples = [value for per_client in latencies for value in per_client]
    result.concurrent_requests_per_second = len(samples) / elapsed
    result.concurrent_p50_ms = statistics.median(samples)


def benchmark(kind: str, size: int, settings: Settings) -> Result:
    """Run every phase against a fresh database of `kind` with `size` runs."""
    result = Result(database=kind, runs=size)
    print(f"\n## {result.column}", file=sys.stderr)
    started = time.perf_counter()
    workload = itertools.chain(
        generate_workload(size, seed=settings.seed), [big_run(settings.seed)]
    )
    prepared = [prepare(run, index) for index, run in enumerate(workload)]
    result.generate_seconds = time.perf_counter() - started
    points = sum(count for item in prepared for _, count in item.metric_batches)
    print(
        f"generated {size:,} runs + 1 big run, {points:,} metric points"
        f" in {result.generate_seconds:.1f} s",
        file=sys.stderr,
    )
    with tempfile.TemporaryDirectory(prefix="runs-bench-") as tmp:
        workdir = Path(tmp)
        with (
            fresh_database(kind, workdir, settings) as url,
            service(url, workdir) as (port, master_pid),
        ):
            ids = load(port, prepared, result)
            settle(kind, url)
            # Reads start with the load's writes on disk, so the kernel's writeback of one
            # pass (227 MB for SQLite at N = 10,000) does not slow the reads after it.
            os.sync()
            loaded = Client(port)
            total = json.loads(loaded.expect("GET", "/api/runs/list?limit=1"))["total"]
            loaded.close()
            if total != len(prepared):
                raise BenchmarkError(f"loaded {len(prepared)} runs but /list counts {total}")
            print(
                f"loaded: setup {result.setup_seconds:.1f} s, {result.metric_points:,} points"
                f" in {result.ingest_seconds:.1f} s"
                f" ({result.ingest_points_per_second:,.0f} points/s)",
                file=sys.stderr,
            )
            read_cases(port, ids[len(prepared) - 1], settings, result)
            concurrent_list(port, settings, result)
            memory = [memory_mb(pid) for pid in workers(master_pid)]
            result.worker_rss_mb = [round(rss, 1) for rss, _ in memory]
            result.worker_peak_rss_mb = [round(peak, 1) for _, peak in memory]
            result.database_mb = database_size_mb(kind, url, settings)
            print("reads done", file=sys.stderr)
    return result


# ------------------------------------------------------------------------ report


@dataclass
class Check:
    column: str
    what: str
    value: float
    target: str
    met: bool


def checks_of(results: list[Result]) -> list[Check]:
    checks = []
    for r in results:
        for key, limit in READ_TARGETS_MS.items():
            p50 = r.reads[key].p50_ms
            checks.append(Check(r.column, f"{key} p50 ms", p50, f"≤ {limit:g}", p50 <= limit))
        checks.append(
            Check(
                r.column,
                "ingestion points/s",
                r.ingest_points_per_second,
                f"≥ {INGEST_TARGET:,.0f}",
                r.ingest_points_per_second >= INGEST_TARGET,
            )
        )
        checks.append(
            Check(
                r.column,
                f"/list {CONCURRENT_CLIENTS} clients req/s",
                r.concurrent_requests_per_second,
                f"≥ {CONCURRENT_TARGET:g}",
                r.concurrent_requests_per_second >= CONCURRENT_TARGET,
            )
        )
        rss = max(r.worker_rss_mb)
        checks.append(
            Check(r.column, "RSS MB per worker", rss, f"≤ {RSS_TARGET_MB:g}", rss <= RSS_TARGET_MB)
        )
    for small, large in growth_pairs(results):
        target = growth_target(small, large)
        if target is None:
            continue
        for key, _, _ in READ_CASES:
            ratio = growth(small, large, key)
            checks.append(
                Check(
                    f"{large.database} N={small.runs:,}→{large.runs:,}",
                    f"{key} growth ×",
                    ratio,
                    f"≤ {target:g}",
                    ratio <= target,
                )
            )
    return checks


def growth_pairs(results: list[Result]) -> list[tuple[Result, Result]]:
    """Each database's sizes side by side, each N with the next larger one measured."""
    pairs = []
    for kind in dict.fromkeys(r.database for r in results):
        mine = sorted((r for r in results if r.database == kind), key=lambda r: r.runs)
        pairs += [
            (small, large) for small, large in itertools.pairwise(mine) if small.runs < large.runs
        ]
    return pairs


def growth_target(small: Result, large: Result) -> float | None:
    return GROWTH_TARGETS.get((small.runs, large.runs))


def growth(small: Result, large: Result, key: str) -> float:
    """How many times the larger N's p50 is the smaller one's."""
    return large.reads[key].p50_ms / small.reads[key].p50_ms


def mark(met: bool) -> str:
    return "✓" if met else "✗ MISSED"


def table(results: list[Result]) -> str:
    """Markdown table: one row per figure, one column per database × N."""
    header = "| case | target | " + " | ".join(r.column for r in results) + " |"
    lines = [header, "|" + "---|" * (len(results) + 2)]

    def row(label: str, target: str, cells: list[str]) -> None:
        lines.append(f"| {label} | {target} | " + " | ".join(cells) + " |")

    row("metric points loaded", "", [f"{r.metric_points:,}" for r in results])
    row(
        "ingestion, points/s",
        f"≥ {INGEST_TARGET:,.0f}",
        [
            f"{r.ingest_points_per_second:,.0f} {mark(r.ingest_points_per_second >= INGEST_TARGET)}"
            for r in results
        ],
    )
    row("runs/clients/evaluations setup, s", "", [f"{r.setup_seconds:.1f}" for r in results])
    for key, label, _ in READ_CASES:
        limit = READ_TARGETS_MS.get(key)
        cells = []
        for r in results:
            read = r.reads[key]
            met = "" if limit is None else f" {mark(read.p50_ms <= limit)}"
            cells.append(f"{read.p50_ms:.1f} / {read.p95_ms:.1f}{met}")
        row(f"{label}, p50 / p95 ms", "" if limit is None else f"p50 ≤ {limit:g}", cells)
    row(
        f"`/list` under {CONCURRENT_CLIENTS} clients, req/s (p50 ms)",
        f"≥ {CONCURRENT_TARGET:g}",
        [
            f"{r.concurrent_requests_per_second:,.0f} ({r.concurrent_p50_ms:.1f})"
            f" {mark(r.concurrent_requests_per_second >= CONCURRENT_TARGET)}"
            for r in results
        ],
    )
    row(
        "RSS per worker, MB (peak)",
        f"≤ {RSS_TARGET_MB:g}",
        [
            " / ".join(f"{rss:.0f}" for rss in r.worker_rss_mb)
            + f" ({max(r.worker_peak_rss_mb):.0f}) {mark(max(r.worker_rss_mb) <= RSS_TARGET_MB)}"
            for r in results
        ],
    )
    row("database size, MB", "", [f"{r.database_mb:,.0f}" for r in results])
    pairs = growth_pairs(results)
    if pairs:
        lines += [
            "",
            "| growth of p50 | "
            + " | ".join(
                f"{large.database} {small.runs:,}→{large.runs:,}"
                + (f" (target ≤ ×{target:g})" if (target := growth_target(small, large)) else "")
                for small, large in pairs
            )
            + " |",
            "|" + "---|" * (len(pairs) + 1),
        ]
        for key, label, _ in READ_CASES:
            cells = []
            for small, large in pairs:
                ratio = growth(small, large, key)
                target = growth_target(small, large)
                cells.append(
                    f"×{ratio:.2f}" + ("" if target is None else f" {mark(ratio <= target)}")
                )
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kb = 0
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "kernel": platform.release(),
        # Anything else running skews the figures: note how busy the machine was.
        "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
    }


def postgres_version(settings: Settings) -> str:
    with postgres_admin(settings.postgres_url) as admin:
        return str(admin.execute("SHOW server_version").fetchone()[0])


# -------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> tuple[Settings, str | None]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--database", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--runs",
        action="append",
        metavar="N[,N...]",
        help="workload sizes, repeatable or comma-separated (default 2000,10000; quick: 300)",
    )
    parser.add_argument("--quick", action="store_true", help="300 runs, 30 repetitions")
    parser.add_argument("--repetitions", type=int, help="timed repetitions per read case")
    parser.add_argument("--output", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--reference",
        choices=("mlflow",),
        help="also serve the workload with MLflow and report ours ÷ MLflow's per case",
    )
    args = parser.parse_args(argv)

    if args.runs:
        sizes = [int(part) for value in args.runs for part in value.split(",") if part.strip()]
    else:
        sizes = [QUICK_SIZE] if args.quick else list(DEFAULT_SIZES)
    if any(size < 100 for size in sizes):
        parser.error("--runs must be at least 100 (the list cases read pages of 50)")
    repetitions = args.repetitions or (30 if args.quick else 100)
    if repetitions < 30:
        parser.error("--repetitions must be at least 30")
    databases = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    settings = Settings(
        databases=databases,
        sizes=sizes,
        repetitions=repetitions,
        warmup=3 if args.quick else 10,
        concurrent_seconds=2.0 if args.quick else 5.0,
        postgres_url=args.postgres_url,
        seed=args.seed,
        reference=args.reference,
    )
    return settings, args.output


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    settings, output = parse_args(argv)
    # TERM (e.g. from a CI timeout) unwinds like Ctrl-C, so gunicorn and databases are cleaned up.
    signal.signal(signal.SIGTERM, interrupt)
    info = machine()
    if "postgres" in settings.databases:
        try:
            info["postgresql"] = postgres_version(settings)
        except Exception as error:  # psycopg's errors, without importing it here
            print(f"PostgreSQL unreachable ({error}); try --database sqlite", file=sys.stderr)
            return 2
    print(f"machine: {info}", file=sys.stderr)
    if settings.reference == "mlflow":
        if __package__:
            from benchmarks import mlflow_reference
        else:
            import mlflow_reference
        return mlflow_reference.run_all(settings, info, output)

    results = []
    try:
        for kind in settings.databases:
            for size in settings.sizes:
                results.append(benchmark(kind, size, settings))
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    except BenchmarkError as error:
        print(f"benchmark failed (everything started was stopped): {error}", file=sys.stderr)
        return 1

    checks = checks_of(results)
    missed = [c for c in checks if not c.met]
    print()
    print(table(results))
    print()
    print(f"targets: {len(checks) - len(missed)} met, {len(missed)} missed")
    for c in missed:
        print(f"- MISSED {c.column}: {c.what} = {c.value:,.2f} (target {c.target})")
    if output:
        document = {
            "machine": info,
            "settings": asdict(settings),
            "results": [asdict(r) for r in results],
            "checks": [asdict(c) for c in checks],
        }
        Path(output).write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
