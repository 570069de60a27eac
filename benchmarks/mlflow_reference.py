"""MLflow's tracking server as the benchmark's reference: ours ÷ MLflow's, in one run.

    .venv/bin/python -m benchmarks.run --reference mlflow --runs 2000 --repetitions 30

Issue 15 item 4. The machine's speed moves between days, so absolute figures cannot be
compared across sessions; a ratio measured in one run can. For every database × N:

- MLflow (pinned `MLFLOW_VERSION`, installed from PyPI into its own virtualenv
  `benchmarks/.mlflow-venv` on first use) serves a fresh database of the same kind
  (SQLite file; throw-away PostgreSQL database through psycopg2) with
  `mlflow server --workers 2` (uvicorn), beside our gunicorn with 2 workers.
- Both get the same seeded workload (`benchmarks.workload`, same N) through their write
  APIs by `LOADER_THREADS` keep-alive threads: first the runs (MLflow: `runs/create`,
  one `runs/log-batch` with the config as params and the server evaluations as metrics,
  `runs/update` for status and end time), then the timed metric points (MLflow:
  `runs/log-batch` of at most 1,000 metrics; a federated client's points are the metric
  `<client>/<name>` at step = round). Both set up their runs first (ours, then
  MLflow's); the timed points then go in `INGEST_SLICES` slices alternating between the
  services, so a busy spell of the shared machine falls on both.
- The read cases run interleaved: each round asks every case of ours, then the same
  question of MLflow, so a slow spell of the shared machine falls on both.
- Then the 4-client page throughput, the RSS of every server process, the database
  size, and per-epoch logging (one 9-point request per epoch, in blocks of
  `EPOCH_BLOCK` epochs alternating between the services).

What MLflow is asked for each of our cases is in `cases()` (`asked_of_mlflow`); where
MLflow has no way to answer the question the case says so and has no ratio.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

if __package__:
    from benchmarks import run as harness
    from benchmarks.epoch_logging import epoch_body
    from benchmarks.workload import WorkloadRun, big_run, generate_workload
else:  # run as a script: benchmarks/ itself is on sys.path
    import run as harness
    from epoch_logging import epoch_body
    from workload import WorkloadRun, big_run, generate_workload

MLFLOW_VERSION = "3.17.2"  # the newest 3.x that pip finds here (3.18.0 lacks its skinny part)
VENV = harness.REPO / "benchmarks" / ".mlflow-venv"
API = "/api/2.0/mlflow"
MLFLOW_BATCH = 1_000  # runs/log-batch takes at most 1,000 metrics (and 1,000 items in all)
SEARCH_PAGE = 10_000  # what mlflow.search_runs() asks per page
PAGE = 50
EPOCHS_LOGGED = 500
EPOCH_BLOCK = 50
INGEST_SLICES = 8
# Warm-up requests per case and service: MLflow's client-side summary takes 4-8 s a call
# at N = 2,000, so the suite's 10 would cost a minute and a half per database.
WARMUP = 3
TARGET = 10.0  # issue 15: at least ten times MLflow on every case
STATUSES = {"completed": "FINISHED", "failed": "FAILED", "in_progress": "RUNNING"}
# Our server evaluation fields under the names a centralized run logs them.
EVALUATION_KEYS = {
    "loss": "val_loss",
    "accuracy": "val_acc",
    "precision": "val_precision",
    "recall": "val_recall",
    "f1_score": "val_f1",
    "auroc": "val_auroc",
    "true_positives": "val_cm_tp",
    "true_negatives": "val_cm_tn",
    "false_positives": "val_cm_fp",
    "false_negatives": "val_cm_fn",
    "num_samples": "num_samples",
}
HISTORY_NAMES = (
    "train_loss",
    "train_acc",
    "train_f1",
    "val_loss",
    "val_acc",
    "val_precision",
    "val_recall",
    "val_f1",
    "val_auroc",
    "val_cm_tp",
    "val_cm_tn",
    "val_cm_fp",
    "val_cm_fn",
    "learning_rate",
)
SUMMARY_SCORES = ("val_acc", "val_precision", "val_recall", "val_f1", "val_auroc")


# --------------------------------------------------------------------- the venv


def mlflow_python() -> Path:
    """The virtualenv's python with MLflow installed, creating it on first use."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".installed"
    wanted = f"mlflow=={MLFLOW_VERSION} psycopg2-binary"
    if python.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
        return python
    print(f"installing {wanted} into {VENV} (a minute or two)", file=sys.stderr)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *wanted.split()],
        check=True,
    )
    stamp.write_text(wanted + "\n")
    return python


# --------------------------------------------------------------- MLflow's server


@contextmanager
def mlflow_database(kind: str, workdir: Path, settings: harness.Settings) -> Iterator[str]:
    """Yield an empty database's URL for MLflow (SQLAlchemy form); drop it afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'mlflow.db'}"
        return
    name = f"mlflow_bench_{os.getpid()}_{time.time_ns()}"
    with harness.postgres_admin(settings.postgres_url) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        base = settings.postgres_url.rsplit("/", 1)[0]
        yield f"{base}/{name}".replace("postgresql+psycopg://", "postgresql+psycopg2://")
    finally:
        with harness.postgres_admin(settings.postgres_url) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def ours_form(url: str) -> str:
    """The same database URL in the form the harness's psycopg helpers take."""
    return url.replace("postgresql+psycopg2://", "postgresql+psycopg://")


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = [root], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        tree += children
        frontier = children
    return sorted(tree)


def uvicorn_workers(root: int) -> list[int]:
    """MLflow's uvicorn worker processes (spawned by multiprocessing)."""
    found = []
    for pid in process_tree(root):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in command:
            found.append(pid)
    return found


@contextmanager
def mlflow_server(uri: str, workdir: Path) -> Iterator[tuple[int, int]]:
    """Serve `uri` with `mlflow server --workers 2`; yield (port, pid of the CLI); stop it."""
    python = mlflow_python()
    port = harness.free_port()
    command = [
        str(python.parent / "mlflow"),
        "server",
        "--backend-store-uri",
        uri,
        "--default-artifact-root",
        (workdir / "mlartifacts").as_uri(),
        "--no-serve-artifacts",
        "--host",
        harness.HOST,
        "--port",
        str(port),
        "--workers",
        str(harness.WORKERS),
        # uvicorn restarts a worker that misses a 5 s health check, in the middle of its
        # requests; on the loaded shared machine a worker's start alone took 34 s.
        "--uvicorn-opts",
        "--timeout-worker-healthcheck 120",
    ]
    log_path = workdir / "mlflow.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 180  # the first start creates ~50 revisions' tables
        while True:
            if server.poll() is not None:
                raise harness.BenchmarkError(f"mlflow server exited with {server.returncode}")
            if time.monotonic() > deadline:
                raise harness.BenchmarkError("mlflow server not ready after 180 s")
            client = harness.Client(port)
            try:
                ready = client.request("GET", "/health")[0] == 200
            except OSError:
                ready = False
            finally:
                client.close()
            started = log_path.read_bytes().count(b"Application startup complete")
            if ready and started >= harness.WORKERS:
                break
            time.sleep(0.5)
        yield port, server.pid
    except Exception:
        print(f"mlflow log (tail):\n{harness.tail(log_path)}", file=sys.stderr)
        raise
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        try:  # uvicorn's workers and MLflow's job runner share the group
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# -------------------------------------------------------------- MLflow's workload


def millis(iso: str | None) -> int | None:
    return None if iso is None else int(datetime.fromisoformat(iso).timestamp() * 1000)


@dataclass
class MlflowRun:
    """One workload run as MLflow requests; run_id is filled in by the loader."""

    index: int
    create: dict[str, Any]
    setup: dict[str, Any]
    update: dict[str, Any] | None
    points: list[dict[str, Any]]
    run_id: str = ""


def to_mlflow(run: WorkloadRun, index: int, experiment_id: str) -> MlflowRun:
    """Translate our write-API bodies into MLflow's: params, tags, metrics with timestamps."""
    body = run.run
    start = millis(body["start_time"])
    assert start is not None
    tags = [
        {"key": "training_mode", "value": body["training_mode"]},
        {"key": "mlflow.note.content", "value": body["run_description"]},
        {"key": "source_path", "value": body["source_path"]},
    ]
    create = {
        "experiment_id": experiment_id,
        "run_name": f"bench {index}",
        "start_time": start,
        "tags": tags,
    }
    params = [{"key": key, "value": str(value)} for key, value in body["config"].items()]
    evaluations = [
        {
            "key": EVALUATION_KEYS[name],
            "value": float(evaluation[name]),
            "timestamp": millis(evaluation["evaluation_time"]),
            "step": evaluation["round_number"],
        }
        for evaluation in run.evaluations
        for name in EVALUATION_KEYS
    ]
    setup = {"params": params, "metrics": evaluations}
    update = None
    if STATUSES[body["status"]] != "RUNNING":
        update = {"status": STATUSES[body["status"]], "end_time": millis(body["end_time"])}
    points = []
    for point in run.metrics:
        client = point.get("client_identifier")
        step = point["round_number"] if client else point["step"]
        points.append(
            {
                "key": f"{client}/{point['metric_name']}" if client else point["metric_name"],
                "value": float(point["metric_value"]),
                "timestamp": start + 1000 * step,
                "step": step,
            }
        )
    return MlflowRun(index, create, setup, update, points)


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


@dataclass
class Load:
    """What loading one service took."""

    setup_seconds: float = 0.0
    points: int = 0
    requests: int = 0
    ingest_seconds: float = 0.0

    @property
    def points_per_second(self) -> float:
        return self.points / self.ingest_seconds


def in_threads(port: int, items: list[Any], handle: Callable[[harness.Client, Any], None]) -> float:
    """Hand `items` to LOADER_THREADS keep-alive threads; the wall time in seconds."""
    tasks: queue.SimpleQueue = queue.SimpleQueue()
    for item in items:
        tasks.put(item)
    started = time.perf_counter()
    harness.run_threads(
        harness.LOADER_THREADS, lambda _, stop: harness.drain(tasks, port, handle, stop)
    )
    return time.perf_counter() - started


def set_up_ours(port: int, prepared: list[harness.PreparedRun]) -> tuple[float, dict[int, int]]:
    """Our runs, clients and evaluations, as benchmarks.run loads them; (seconds, index → id)."""
    ids: dict[int, int] = {}

    def set_up(client: harness.Client, item: harness.PreparedRun) -> None:
        run_id = json.loads(client.expect("POST", "/api/runs", item.run, status=201))["id"]
        ids[item.index] = run_id
        if item.clients is not None:
            client.expect("POST", f"/api/runs/{run_id}/clients", item.clients)
        if item.evaluations is not None:
            client.expect("POST", f"/api/runs/{run_id}/server-evaluations", item.evaluations)

    return in_threads(port, prepared, set_up), ids


def set_up_mlflow(port: int, runs: list[MlflowRun]) -> float:
    """MLflow's runs: create, params and server evaluations in one log-batch, update."""

    def set_up(client: harness.Client, item: MlflowRun) -> None:
        created = client.expect("POST", f"{API}/runs/create", harness.dumps(item.create))
        item.run_id = json.loads(created)["run"]["info"]["run_id"]
        params, metrics = item.setup["params"], item.setup["metrics"]
        for number, part in enumerate(chunks(metrics, MLFLOW_BATCH) or [[]]):
            batch = {"run_id": item.run_id, "metrics": part}
            if number == 0:
                batch["params"] = params
            client.expect("POST", f"{API}/runs/log-batch", harness.dumps(batch))
        if item.update is not None:
            update = {"run_id": item.run_id, **item.update}
            client.expect("POST", f"{API}/runs/update", harness.dumps(update))

    return in_threads(port, runs, set_up)


def slices(items: list[Any], count: int) -> list[list[Any]]:
    """`items` in `count` contiguous parts of nearly equal length."""
    bounds = [round(index * len(items) / count) for index in range(count + 1)]
    return [items[bounds[i] : bounds[i + 1]] for i in range(count)]


def ingest_both(
    our_port: int,
    their_port: int,
    prepared: list[harness.PreparedRun],
    ids: dict[int, int],
    runs: list[MlflowRun],
) -> tuple[Load, Load]:
    """Time the metric points on both services, INGEST_SLICES slices alternating.

    Bodies are serialized before the clock starts. Alternating slices lets a busy
    spell of the shared machine fall on both services rather than on one.
    """
    ours, theirs = Load(), Load()
    our_batches = [(ids[item.index], body) for item in prepared for body, _ in item.metric_batches]
    ours.points = sum(count for item in prepared for _, count in item.metric_batches)
    ours.requests = len(our_batches)
    their_bodies = [
        harness.dumps({"run_id": item.run_id, "metrics": part})
        for item in runs
        for part in chunks(item.points, MLFLOW_BATCH)
    ]
    theirs.points = sum(len(item.points) for item in runs)
    theirs.requests = len(their_bodies)

    def post_ours(client: harness.Client, batch: tuple[int, bytes]) -> None:
        client.expect("POST", f"/api/runs/{batch[0]}/metrics", batch[1])

    def post_theirs(client: harness.Client, body: bytes) -> None:
        client.expect("POST", f"{API}/runs/log-batch", body)

    for mine, other in zip(
        slices(our_batches, INGEST_SLICES), slices(their_bodies, INGEST_SLICES), strict=True
    ):
        ours.ingest_seconds += in_threads(our_port, mine, post_ours)
        theirs.ingest_seconds += in_threads(their_port, other, post_theirs)
    return ours, theirs


# ------------------------------------------------------------------ the questions


def search(client: harness.Client, experiment_id: str, **body: Any) -> dict[str, Any]:
    request = {"experiment_ids": [experiment_id], **body}
    return json.loads(client.expect("POST", f"{API}/runs/search", harness.dumps(request)))


def page(client: harness.Client, check: bool, experiment_id: str, **body: Any) -> None:
    request = {"experiment_ids": [experiment_id], "max_results": PAGE, **body}
    data = client.expect("POST", f"{API}/runs/search", harness.dumps(request))
    if check and len(json.loads(data).get("runs", [])) != PAGE:
        raise harness.BenchmarkError(f"MLflow search answered no page of {PAGE} runs")


def histories(client: harness.Client, check: bool, run_id: str) -> None:
    """Every metric's whole history of one run: one get-history per metric name."""
    for name in HISTORY_NAMES:
        data = client.expect("GET", f"{API}/metrics/get-history?run_id={run_id}&metric_key={name}")
        if check and len(json.loads(data).get("metrics", [])) != 1_000:
            raise harness.BenchmarkError(f"MLflow get-history {name}: not 1,000 points")


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Our /analytics/summary as an MLflow user computes it from search results.

    Status counts and success rate over all runs; per training mode, over finished runs:
    count, mean of each score's value, best accuracy, mean duration; the five best runs
    by accuracy. MLflow's search returns each metric's latest value only, so the scores
    are latest values where ours are each run's best (the best would take one
    get-history per run and score).
    """
    statuses: dict[str, int] = {}
    modes: dict[str, dict[str, list[float]]] = {}
    ranked: list[tuple[float, str]] = []
    for run in runs:
        info, data = run["info"], run.get("data", {})
        statuses[info["status"]] = statuses.get(info["status"], 0) + 1
        if info["status"] != "FINISHED":
            continue
        tags = {tag["key"]: tag["value"] for tag in data.get("tags", [])}
        metrics = {metric["key"]: metric["value"] for metric in data.get("metrics", [])}
        values = modes.setdefault(tags.get("training_mode", ""), {"duration": []})
        values["duration"].append((int(info["end_time"]) - int(info["start_time"])) / 60_000)
        for score in SUMMARY_SCORES:
            if score in metrics:
                values.setdefault(score, []).append(metrics[score])
        if "val_acc" in metrics:
            ranked.append((metrics["val_acc"], info["run_id"]))
    finished, failed = statuses.get("FINISHED", 0), statuses.get("FAILED", 0)
    return {
        "total_runs": sum(statuses.values()),
        "success_rate": finished / (finished + failed) if finished + failed else None,
        "status_counts": statuses,
        "modes": {
            mode: {
                "count": len(values["duration"]),
                **{key: statistics.fmean(series) for key, series in values.items() if series},
                "max_accuracy": max(values.get("val_acc", [0.0])),
            }
            for mode, values in modes.items()
        },
        "top_runs": sorted(ranked, reverse=True)[:5],
    }


def summarise(client: harness.Client, experiment_id: str, expected: int) -> dict[str, Any]:
    """Search every run (pages of SEARCH_PAGE, as mlflow.search_runs does) and summarise."""
    runs: list[dict[str, Any]] = []
    token = None
    while True:
        extra = {"page_token": token} if token else {}
        answer = search(client, experiment_id, max_results=SEARCH_PAGE, **extra)
        runs += answer.get("runs", [])
        token = answer.get("next_page_token")
        if not token:
            break
    if len(runs) != expected:
        raise harness.BenchmarkError(f"MLflow search found {len(runs)} runs, not {expected}")
    return summary(runs)


# -------------------------------------------------------------------- the cases

# Asks one question; checks the answer only when told (warm-up), so checks are not timed.
# The client-side summary's computation is timed: an MLflow user has to do it.
Ask = Callable[[harness.Client, bool], Any]


@dataclass(frozen=True)
class Case:
    """One question put to both services; theirs is None where MLflow cannot answer."""

    key: str
    label: str
    ours: Ask
    theirs: Ask | None
    asked_of_mlflow: str


def cases(big: int, big_run_id: str, experiment_id: str, total: int) -> list[Case]:
    """The read cases of benchmarks.run that MLflow can answer (no dashboard pages)."""
    paths = {key: template.format(big=big) for key, _, template in harness.READ_CASES}
    labels = {key: label for key, label, _ in harness.READ_CASES}

    def ours(key: str) -> Ask:
        def ask(client: harness.Client, check: bool) -> None:
            data = client.expect("GET", paths[key])
            if check:
                harness.check_body(key, data)

        return ask

    by_start = ["attributes.start_time DESC"]
    by_acc = ["metrics.val_acc DESC"]
    federated = "tags.training_mode = 'federated'"
    return [
        Case(
            "list_start_time",
            labels["list_start_time"],
            ours("list_start_time"),
            lambda c, check: page(c, check, experiment_id, order_by=by_start),
            "`runs/search` max_results=50, order_by start_time DESC",
        ),
        Case(
            "list_federated",
            labels["list_federated"],
            ours("list_federated"),
            lambda c, check: page(c, check, experiment_id, order_by=by_start, filter=federated),
            f'the same, filter "{federated}"',
        ),
        Case(
            "list_best_acc",
            labels["list_best_acc"],
            ours("list_best_acc"),
            lambda c, check: page(c, check, experiment_id, order_by=by_acc),
            "`runs/search` order_by metrics.val_acc DESC (MLflow orders by the latest value)",
        ),
        Case(
            "list_metric_best",
            labels["list_metric_best"],
            ours("list_metric_best"),
            lambda c, check: page(c, check, experiment_id, order_by=by_acc),
            "the same request (MLflow cannot order by a metric's best)",
        ),
        Case(
            "metrics_big",
            labels["metrics_big"],
            ours("metrics_big"),
            lambda c, check: histories(c, check, big_run_id),
            f"{len(HISTORY_NAMES)} × `metrics/get-history` (one per metric name)",
        ),
        Case(
            "history_downsampled",
            labels["history_downsampled"],
            ours("history_downsampled"),
            lambda c, _: c.expect(
                "GET",
                f"{API}/metrics/get-history-bulk-interval?run_ids={big_run_id}"
                f"&metric_key=val_loss&max_results={harness.DOWNSAMPLED_POINTS}",
            ),
            f"`metrics/get-history-bulk-interval` max_results={harness.DOWNSAMPLED_POINTS}"
            " (a sample of steps, not min/max per bucket)",
        ),
        Case(
            "summaries_big",
            labels["summaries_big"],
            ours("summaries_big"),
            lambda c, _: c.expect("GET", f"{API}/runs/get?run_id={big_run_id}"),
            "closest: `runs/get` (each metric's latest value only, no min/max/best)",
        ),
        Case(
            "analytics",
            labels["analytics"],
            ours("analytics"),
            lambda c, _: summarise(c, experiment_id, total),
            f"client-side: `runs/search` every run (pages of {SEARCH_PAGE:,}), averaged in"
            " Python (latest values, not best)",
        ),
        Case("csv_big", labels["csv_big"], ours("csv_big"), None, "no equivalent"),
    ]


# ------------------------------------------------------------------ measurement


@dataclass
class Figure:
    """One case's figure for both services: ms (lower is better) or a rate/size."""

    key: str
    label: str
    unit: str  # "ms", "points/s", "req/s", "MB"
    ours: float
    theirs: float | None
    asked_of_mlflow: str
    ours_p95: float | None = None
    theirs_p95: float | None = None
    targeted: bool = True  # False: shown for context, no 10× target

    @property
    def higher_is_better(self) -> bool:
        return self.unit in ("points/s", "req/s")

    @property
    def ratio(self) -> float | None:
        """Ours ÷ MLflow's."""
        return None if not self.theirs else self.ours / self.theirs

    @property
    def advantage(self) -> float | None:
        """How many times better ours is (speed-up, throughput factor, memory saved)."""
        ratio = self.ratio
        if ratio is None or ratio == 0:
            return None
        return ratio if self.higher_is_better else 1 / ratio


@dataclass
class Comparison:
    database: str
    runs: int
    mlflow_version: str = MLFLOW_VERSION
    setup_seconds: dict[str, float] = field(default_factory=dict)
    load_average: list[float] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)

    @property
    def column(self) -> str:
        return f"{self.database} N={self.runs:,}"


def time_rounds(
    pairs: list[tuple[Case, harness.Client, harness.Client]], rounds: int, warmup: int
) -> dict[str, tuple[list[float], list[float]]]:
    """Warm up, then in each round ask every case of ours and then of MLflow."""
    for case, ours, theirs in pairs:
        for _ in range(warmup):
            case.ours(ours, True)
            if case.theirs is not None:
                case.theirs(theirs, True)
    samples: dict[str, tuple[list[float], list[float]]] = {c.key: ([], []) for c, _, _ in pairs}
    for _ in range(rounds):
        for case, ours, theirs in pairs:
            for ask, client, into in (
                (case.ours, ours, samples[case.key][0]),
                (case.theirs, theirs, samples[case.key][1]),
            ):
                if ask is None:
                    continue
                started = time.perf_counter()
                ask(client, False)
                into.append((time.perf_counter() - started) * 1000)
    return samples


def throughput(port: int, ask: Ask, seconds: float) -> float:
    """Requests/s of `ask` under CONCURRENT_CLIENTS keep-alive clients."""
    counts = [0] * harness.CONCURRENT_CLIENTS
    window = {"end": 0.0, "begin": 0.0}

    def open_window() -> None:
        window["begin"] = time.perf_counter()
        window["end"] = window["begin"] + seconds

    ready = threading.Barrier(harness.CONCURRENT_CLIENTS, action=open_window, timeout=60)

    def hammer(index: int, stop: threading.Event) -> None:
        client = harness.Client(port)
        try:
            ask(client, True)
            ready.wait()
            while time.perf_counter() < window["end"] and not stop.is_set():
                ask(client, False)
                counts[index] += 1
        except BaseException:
            ready.abort()
            raise
        finally:
            client.close()

    harness.run_threads(harness.CONCURRENT_CLIENTS, hammer)
    return sum(counts) / (time.perf_counter() - window["begin"])


def epoch_logging(our_port: int, their_port: int, experiment_id: str, seed: int) -> tuple:
    """Per-request ms of one 9-point write per epoch, blocks alternating between services."""
    ours, theirs = harness.Client(our_port), harness.Client(their_port)
    try:
        created = ours.expect(
            "POST",
            "/api/runs",
            harness.dumps({"training_mode": "centralized", "config": {"epochs": EPOCHS_LOGGED}}),
            status=201,
        )
        our_path = f"/api/runs/{json.loads(created)['id']}/metrics"
        answer = theirs.expect(
            "POST",
            f"{API}/runs/create",
            harness.dumps({"experiment_id": experiment_id, "start_time": int(time.time() * 1000)}),
        )
        run_id = json.loads(answer)["run"]["info"]["run_id"]
        rng = random.Random(seed)
        bodies = [epoch_body(rng, epoch, EPOCHS_LOGGED) for epoch in range(EPOCHS_LOGGED)]
        now = int(time.time() * 1000)
        their_bodies = [
            harness.dumps(
                {
                    "run_id": run_id,
                    "metrics": [
                        {
                            "key": p["metric_name"],
                            "value": p["metric_value"],
                            "step": p["step"],
                            "timestamp": now + p["step"],
                        }
                        for p in json.loads(body)["metrics"]
                    ],
                }
            )
            for body in bodies
        ]
        our_ms: list[float] = []
        their_ms: list[float] = []
        for start in range(0, EPOCHS_LOGGED, EPOCH_BLOCK):
            for body in bodies[start : start + EPOCH_BLOCK]:
                began = time.perf_counter()
                ours.expect("POST", our_path, body)
                our_ms.append((time.perf_counter() - began) * 1000)
            for body in their_bodies[start : start + EPOCH_BLOCK]:
                began = time.perf_counter()
                theirs.expect("POST", f"{API}/runs/log-batch", body)
                their_ms.append((time.perf_counter() - began) * 1000)
        return our_ms, their_ms
    finally:
        ours.close()
        theirs.close()


def rss_mb(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += harness.memory_mb(pid)[0]
        except (OSError, KeyError):
            pass  # a process that ended in between
    return total


def compare(kind: str, size: int, settings: harness.Settings) -> Comparison:
    """Load both services with the same workload, then ask both the same questions."""
    result = Comparison(database=kind, runs=size)
    print(f"\n## {result.column}: runs_service against MLflow {MLFLOW_VERSION}", file=sys.stderr)
    mlflow_python()
    workload = list(
        itertools.chain(generate_workload(size, seed=settings.seed), [big_run(settings.seed)])
    )
    prepared = [harness.prepare(run, index) for index, run in enumerate(workload)]
    with tempfile.TemporaryDirectory(prefix="runs-bench-mlflow-") as tmp:
        workdir = Path(tmp)
        with (
            harness.fresh_database(kind, workdir, settings) as our_url,
            harness.service(our_url, workdir) as (our_port, master),
            mlflow_database(kind, workdir, settings) as their_url,
            mlflow_server(their_url, workdir) as (their_port, their_pid),
        ):
            client = harness.Client(their_port)
            created = client.expect(
                "POST", f"{API}/experiments/create", harness.dumps({"name": "benchmark"})
            )
            experiment_id = json.loads(created)["experiment_id"]
            client.close()
            theirs = [to_mlflow(run, index, experiment_id) for index, run in enumerate(workload)]
            our_setup, ids = set_up_ours(our_port, prepared)
            their_setup = set_up_mlflow(their_port, theirs)
            result.setup_seconds = {"ours": our_setup, "mlflow": their_setup}
            print(f"set up: ours {our_setup:.0f} s, MLflow {their_setup:.0f} s", file=sys.stderr)
            ours_loaded, theirs_loaded = ingest_both(our_port, their_port, prepared, ids, theirs)
            harness.settle(kind, our_url)
            harness.settle(kind, ours_form(their_url))
            os.sync()
            print(
                f"ingested {ours_loaded.points:,} points: ours"
                f" {ours_loaded.points_per_second:,.0f} points/s, MLflow"
                f" {theirs_loaded.points_per_second:,.0f} points/s",
                file=sys.stderr,
            )
            if theirs_loaded.points != ours_loaded.points:
                raise harness.BenchmarkError("the two services were sent different points")
            figures = result.figures
            figures.append(
                Figure(
                    "ingestion",
                    "ingestion, batched",
                    "points/s",
                    ours_loaded.points_per_second,
                    theirs_loaded.points_per_second,
                    f"`runs/log-batch` of ≤ {MLFLOW_BATCH:,} metrics"
                    f" ({theirs_loaded.requests:,} requests against our"
                    f" {ours_loaded.requests:,}); {INGEST_SLICES} slices alternating",
                )
            )
            result.load_average = [round(value, 2) for value in os.getloadavg()]
            asked = cases(ids[len(prepared) - 1], theirs[-1].run_id, experiment_id, len(theirs))
            our_client, their_client = harness.Client(our_port), harness.Client(their_port)
            try:
                samples = time_rounds(
                    [(case, our_client, their_client) for case in asked],
                    settings.repetitions,
                    min(settings.warmup, WARMUP),
                )
            finally:
                our_client.close()
                their_client.close()
            for case in asked:
                mine, other = samples[case.key]
                figures.append(
                    Figure(
                        case.key,
                        case.label,
                        "ms",
                        statistics.median(mine),
                        statistics.median(other) if other else None,
                        case.asked_of_mlflow,
                        harness.percentile(mine, 0.95),
                        harness.percentile(other, 0.95) if other else None,
                    )
                )
            print("reads done", file=sys.stderr)
            list_ours, list_theirs = asked[0].ours, asked[0].theirs
            assert list_theirs is not None
            figures.append(
                Figure(
                    "concurrent_list",
                    f"`/list` page under {harness.CONCURRENT_CLIENTS} clients",
                    "req/s",
                    throughput(our_port, list_ours, settings.concurrent_seconds),
                    throughput(their_port, list_theirs, settings.concurrent_seconds),
                    f"`runs/search` page of 50 by {harness.CONCURRENT_CLIENTS} clients",
                )
            )
            mine, other = epoch_logging(our_port, their_port, experiment_id, settings.seed)
            figures.append(
                Figure(
                    "epoch_logging",
                    f"one 9-point request per epoch ({EPOCHS_LOGGED} epochs)",
                    "ms",
                    statistics.median(mine),
                    statistics.median(other),
                    "one 9-metric `runs/log-batch` per epoch",
                    harness.percentile(mine, 0.95),
                    harness.percentile(other, 0.95),
                )
            )
            our_workers = harness.workers(master)
            figures.append(
                Figure(
                    "rss",
                    "RSS of all server processes",
                    "MB",
                    rss_mb(process_tree(master)),
                    rss_mb(process_tree(their_pid)),
                    "the CLI, uvicorn's parent and workers, the job runner and its huey consumers",
                )
            )
            figures.append(
                Figure(
                    "rss_workers",
                    "RSS of the 2 workers",
                    "MB",
                    rss_mb(our_workers),
                    rss_mb(uvicorn_workers(their_pid)),
                    "uvicorn's 2 workers",
                )
            )
            figures.append(
                Figure(
                    "database_size",
                    "database size",
                    "MB",
                    harness.database_size_mb(kind, our_url, settings),
                    harness.database_size_mb(kind, ours_form(their_url), settings),
                    "the same measure of MLflow's database",
                    targeted=False,
                )
            )
    return result


# ------------------------------------------------------------------------ report


def number(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"
    return f"{value:,.0f}"


def table(comparisons: list[Comparison]) -> str:
    """Markdown: one row per case and database; ours, MLflow's, ours ÷ MLflow's, advantage."""
    lines = [
        "| case | database | ours | MLflow | ours ÷ MLflow | ours better by (target ≥ 10×) |",
        "|---|---|---|---|---|---|",
    ]
    for comparison in comparisons:
        for figure in comparison.figures:
            unit = "p50 ms" if figure.unit == "ms" else figure.unit
            ours = number(figure.ours, figure.unit)
            if figure.theirs is None:
                theirs, ratio, better = figure.asked_of_mlflow, "—", "—"
            else:
                theirs = number(figure.theirs, figure.unit)
                ratio = f"{figure.ratio:.3f}"
                advantage = figure.advantage or 0.0
                better = f"{advantage:,.1f}×"
                if figure.targeted:
                    better += " ✓" if advantage >= TARGET else " ✗ below"
            lines.append(
                f"| {figure.label} ({unit}) | {comparison.column} | {ours} | {theirs}"
                f" | {ratio} | {better} |"
            )
    return "\n".join(lines)


def asked_table(comparison: Comparison) -> str:
    """What MLflow was asked for each case."""
    lines = ["| case | MLflow was asked |", "|---|---|"]
    lines += [f"| {f.label} | {f.asked_of_mlflow} |" for f in comparison.figures]
    return "\n".join(lines)


def run_all(settings: harness.Settings, info: dict[str, Any], output: str | None) -> int:
    """`benchmarks.run --reference mlflow`: every database × N, then the ratio table."""
    comparisons = []
    try:
        for kind in settings.databases:
            for size in settings.sizes:
                comparisons.append(compare(kind, size, settings))
                # Each pass's figures as soon as they are measured: a later failure keeps them.
                print(table(comparisons[-1:]), file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    except harness.BenchmarkError as error:
        print(f"benchmark failed (everything started was stopped): {error}", file=sys.stderr)
        return 1
    print()
    print(f"MLflow {MLFLOW_VERSION}; load average at the reads: ", end="")
    print(", ".join(f"{c.column}: {c.load_average}" for c in comparisons))
    print()
    print(table(comparisons))
    print()
    print(asked_table(comparisons[0]))
    below = [
        (c.column, f.label)
        for c in comparisons
        for f in c.figures
        if f.targeted and f.advantage is not None and f.advantage < TARGET
    ]
    print()
    print(f"below {TARGET:g}× MLflow: {len(below)}")
    for column, label in below:
        print(f"- {column}: {label}")
    if output:
        document = {
            "machine": info,
            "settings": asdict(settings),
            "comparisons": [asdict(c) for c in comparisons],
        }
        Path(output).write_text(json.dumps(document, indent=2) + "\n")
    return 0
