"""Write cost as a run grows, and summary reads: this tree against another commit, in one run.

    .venv/bin/python -m benchmarks.against_base --base HEAD~1   # this tree and HEAD~1
    .venv/bin/python -m benchmarks.against_base                 # this tree only

benchmarks.epoch_logging measures one tree's per-epoch logging in detail; this one puts
two commits side by side on the same machine minutes apart, which is what a ratio
needs on a shared machine.

For every database and source tree: gunicorn (2 workers) on a fresh database, then
- per-epoch logging: one run, 1,000 sequential requests of one 9-point epoch each (the
  history metrics a trainer logs), on one keep-alive connection; p50 of the first and of
  the last 100 requests, and their ratio (a write cost that grows with the run shows
  here);
- ingestion: 100 centralized runs of 20 epochs × 14 metrics, each posted as one batch by
  4 loader threads; points/s;
- reads of the 1,000-epoch run: `metric-summaries` and `/metrics`, p50 of 200.
With --base, the other commit is exported with `git archive` to a temporary folder and
served from there by the same interpreter, trees taking turns per database, so both
meet the same machine; ratios are new ÷ base. The shared machine is noisy: compare the
ratios, and repeat (--rounds) to see the spread.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.run import (
    DEFAULT_POSTGRES_URL,
    HOST,
    TOKEN,
    WORKERS,
    BenchmarkError,
    Client,
    Settings,
    drain,
    free_port,
    fresh_database,
    run_threads,
    settle,
    stop,
    tail,
    wait_ready,
)
from benchmarks.workload import DEFAULT_SEED, generate_workload
from runs_service.catalogue import HISTORY_FIELDS

REPO = Path(__file__).resolve().parent.parent
EPOCHS = 1_000
WINDOW = 100
# The history metrics of one epoch (SPEC §4.1 training_history), as a trainer logs them.
EPOCH_METRICS = HISTORY_FIELDS
INGEST_RUNS = 100
READ_REPETITIONS = 200
TARGET_EPOCH_P50_MS = 4.0
TARGET_GROWTH = 1.3


@contextmanager
def serve(tree: Path, database_url: str, workdir: Path) -> Iterator[int]:
    """Migrate and serve `tree`'s code with gunicorn; yield the port."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        RUNS_DATABASE_URL=database_url,
        RUNS_API_TOKENS=TOKEN,
        RUNS_RESULTS_DIR=str(workdir / "results"),
        BIND=f"{HOST}:{port}",
        WEB_CONCURRENCY=str(WORKERS),
        # The tree's own package wins over the editable install of this one.
        PYTHONPATH=str(tree),
    )
    env.pop("RUNS_REQUIRE_AUTH_FOR_READS", None)
    upgrade = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "runs_service", "db", "upgrade"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )
    if upgrade.returncode != 0:
        raise BenchmarkError(f"flask db upgrade failed:\n{upgrade.stderr[-2000:]}")
    log_path = workdir / f"gunicorn-{port}.log"
    with log_path.open("wb") as log:
        master = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=tree,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_ready(port, master)
        yield port
    except Exception:
        print(f"gunicorn log (tail):\n{tail(log_path)}", file=sys.stderr)
        raise
    finally:
        stop(master)


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def values(epoch: int) -> list[float]:
    """Plausible values of one epoch: losses fall, scores rise, with a little wobble."""
    progress = 1 - 1 / (1 + epoch / 50)
    wobble = ((epoch * 37) % 11) / 1000
    loss, score = 0.7 - 0.5 * progress + wobble, 0.5 + 0.45 * progress - wobble
    return [loss, loss + 0.02, score, score - 0.01, score, score, score, score, score]


def per_epoch(port: int) -> tuple[int, list[float]]:
    """Log EPOCHS epochs one request each; return the run id and each request's ms."""
    client = Client(port)
    try:
        body = dumps({"training_mode": "centralized", "run_description": "per-epoch logging"})
        run_id = json.loads(client.expect("POST", "/api/runs", body, status=201))["id"]
        timings = []
        for epoch in range(EPOCHS):
            batch = dumps(
                {
                    "metrics": [
                        {"metric_name": name, "metric_value": value, "step": epoch}
                        for name, value in zip(EPOCH_METRICS, values(epoch), strict=True)
                    ]
                }
            )
            started = time.perf_counter()
            client.expect("POST", f"/api/runs/{run_id}/metrics", batch)
            timings.append((time.perf_counter() - started) * 1000)
        return run_id, timings
    finally:
        client.close()


def ingest(port: int, seed: int) -> float:
    """Points per second of whole-run batches from 4 loader threads."""
    runs = [run for run in generate_workload(2 * INGEST_RUNS, seed=seed) if not run.clients]
    runs = runs[:INGEST_RUNS]
    setup = Client(port)
    tasks: queue.SimpleQueue = queue.SimpleQueue()
    points = 0
    try:
        for run in runs:
            run_id = json.loads(setup.expect("POST", "/api/runs", dumps(run.run), status=201))["id"]
            tasks.put((run_id, dumps({"metrics": run.metrics})))
            points += len(run.metrics)
    finally:
        setup.close()

    def post(client: Client, task: tuple[int, bytes]) -> None:
        client.expect("POST", f"/api/runs/{task[0]}/metrics", task[1])

    started = time.perf_counter()
    run_threads(4, lambda _, halt: drain(tasks, port, post, halt))
    return points / (time.perf_counter() - started)


def reads(port: int, run_id: int) -> dict[str, float | None]:
    """p50 ms of the summary reads of the grown run (None where the tree has no such route)."""
    paths = {
        "metric_summaries": f"/api/runs/{run_id}/metric-summaries",
        "metrics": f"/api/runs/{run_id}/metrics",
    }
    client = Client(port)
    samples: dict[str, list[float]] = {key: [] for key in paths}
    try:
        present = {key: client.request("GET", path)[0] == 200 for key, path in paths.items()}
        for _ in range(READ_REPETITIONS):
            for key, path in paths.items():
                if present[key]:
                    started = time.perf_counter()
                    client.expect("GET", path)
                    samples[key].append((time.perf_counter() - started) * 1000)
    finally:
        client.close()
    return {key: statistics.median(values) if values else None for key, values in samples.items()}


def measure(tree: Path, kind: str, settings: Settings) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="runs-epochs-") as tmp:
        workdir = Path(tmp)
        with fresh_database(kind, workdir, settings) as url, serve(tree, url, workdir) as port:
            run_id, timings = per_epoch(port)
            settle(kind, url)
            read = reads(port, run_id)
            points_per_second = ingest(port, settings.seed)
    first = statistics.median(timings[:WINDOW])
    last = statistics.median(timings[-WINDOW:])
    return {
        "epoch_p50_first_ms": first,
        "epoch_p50_last_ms": last,
        "epoch_p50_all_ms": statistics.median(timings),
        "growth": last / first,
        "ingest_points_per_second": points_per_second,
        "metric_summaries_p50_ms": read["metric_summaries"],
        "metrics_p50_ms": read["metrics"],
    }


@contextmanager
def exported(revision: str) -> Iterator[Path]:
    """The tree of `revision` in a temporary folder (git archive: the repository is untouched)."""
    with tempfile.TemporaryDirectory(prefix="runs-base-") as tmp:
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", "--format=tar", revision],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        yield Path(tmp)


def fmt(value: float | None, unit: str = "") -> str:
    return "–" if value is None else f"{value:,.2f}{unit}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.against_base")
    parser.add_argument("--database", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--base", metavar="REV", help="also measure this commit, interleaved")
    parser.add_argument("--rounds", type=int, default=1, help="repeat everything this often")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--output", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    databases = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    settings = Settings(databases, [], 0, 0, 0.0, args.postgres_url, DEFAULT_SEED)
    results: list[dict[str, Any]] = []
    with exported(args.base) if args.base else nullcontext_path() as base:
        trees = [("new", REPO)] + ([("base", base)] if base is not None else [])
        for round_number in range(args.rounds):
            for kind in databases:
                # Alternate which tree goes first, so neither always meets a warmer machine.
                order = trees if round_number % 2 == 0 else list(reversed(trees))
                for label, tree in order:
                    figures = measure(tree, kind, settings)
                    figures.update(tree=label, database=kind, round=round_number)
                    print(json.dumps(figures), file=sys.stderr)
                    results.append(figures)
    print(report(results, databases, bool(args.base)))
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    return 0


@contextmanager
def nullcontext_path() -> Iterator[None]:
    yield None


EPOCH_TARGET = f"≤ {TARGET_EPOCH_P50_MS:g}"
KEYS = (
    ("epoch_p50_first_ms", "per-epoch request p50, epochs 1-100 (ms)", EPOCH_TARGET),
    ("epoch_p50_last_ms", "per-epoch request p50, epochs 901-1,000 (ms)", EPOCH_TARGET),
    ("growth", "last 100 ÷ first 100", f"≤ {TARGET_GROWTH:g}"),
    ("ingest_points_per_second", "ingestion, whole-run batches (points/s)", "≥ base − 10 %"),
    ("metric_summaries_p50_ms", "`metric-summaries`, 1,000 epochs (ms)", "≤ 5"),
    ("metrics_p50_ms", "`/metrics`, 1,000 epochs (ms)", ""),
)


def report(results: list[dict[str, Any]], databases: list[str], with_base: bool) -> str:
    """A markdown table: medians over rounds per tree and database, and new ÷ base."""
    lines = []
    header = ["case", "target"]
    for kind in databases:
        header += [f"{kind} new"] + ([f"{kind} base", f"{kind} new÷base"] if with_base else [])
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))

    def median_of(kind: str, tree: str, key: str) -> float | None:
        values = [r[key] for r in results if r["database"] == kind and r["tree"] == tree and r[key]]
        return statistics.median(values) if values else None

    for key, label, target in KEYS:
        row = [label, target]
        for kind in databases:
            new = median_of(kind, "new", key)
            row.append(fmt(new))
            if with_base:
                base = median_of(kind, "base", key)
                row += [fmt(base), fmt(None if not (new and base) else new / base, "×")]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
