"""Benchmark the series routes end to end: metric-history (M4 in SQL) and compare.

    .venv/bin/python -m benchmarks.series                 # both databases
    .venv/bin/python -m benchmarks.series --databases sqlite --repetitions 20
    .venv/bin/python -m benchmarks.series --direct --cases compare_10x3   # one case

For each database: a fresh database, gunicorn (2 workers) as benchmarks.run serves it,
loaded through the write API with one run holding a 100,000-point series, one holding a
1,000,000-point series, and ten runs of 1,000 epochs × 3 metrics; then, over one
keep-alive connection, every case once per round (warm-up first). Prints p50/p95 in ms
and the ratio of each p50 to its target (issue 12); BENCHMARKS.md keeps the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from benchmarks.run import (
    DEFAULT_POSTGRES_URL,
    MAX_METRICS_PER_BATCH,
    REPO,
    BenchmarkError,
    Client,
    fresh_database,
    percentile,
    postgres_admin,
    service,
    settle,
)

COMPARE_RUNS = 10
COMPARE_EPOCHS = 1_000
COMPARE_METRICS = ("train_loss", "val_loss", "val_acc")
# (key, label, target p50 ms)
CASES = (
    ("history_100k", "`metric-history` 100,000 points, max_points=1000", 30.0),
    ("history_1m", "`metric-history` 1,000,000 points, max_points=1000", 150.0),
    ("compare_10x3", "`compare` 10 runs × 3 metrics × 1,000 epochs, max_points=500", 40.0),
)


def dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def noisy_curve(length: int, seed: int) -> list[float]:
    """A loss-like curve with noise and a few spikes, so M4 has shape to keep."""
    rng = random.Random(seed)
    values = []
    for step in range(length):
        value = 2.0 * math.exp(-step / (length / 5)) + rng.gauss(0, 0.05)
        if rng.random() < 1e-4:
            value += 5.0
        values.append(round(value, 6))
    return values


def create_run(client: Client, mode: str = "centralized") -> int:
    body = dumps({"training_mode": mode, "run_description": "series benchmark"})
    return json.loads(client.expect("POST", "/api/runs", body, status=201))["id"]


def post_series(client: Client, run_id: int, name: str, values: list[float]) -> None:
    for offset in range(0, len(values), MAX_METRICS_PER_BATCH):
        batch = [
            {"metric_name": name, "metric_value": value, "step": offset + index}
            for index, value in enumerate(values[offset : offset + MAX_METRICS_PER_BATCH])
        ]
        client.expect("POST", f"/api/runs/{run_id}/metrics", dumps({"metrics": batch}))


def insert_series(url: str, rows: list[tuple[int, str, float, int]]) -> None:
    """Bulk-insert points straight into run_metrics (--direct): the reads are what is timed."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            connection.executemany(
                "INSERT INTO run_metrics (run_id, metric_name, metric_value, step, dataset_type)"
                " VALUES (?, ?, ?, ?, 'other')",
                rows,
            )
        return
    with postgres_admin(url) as connection, connection.cursor() as cursor:
        columns = "run_id, metric_name, metric_value, step, dataset_type"
        with cursor.copy(f"COPY run_metrics ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row((*row, "other"))


def refresh_summaries(url: str) -> None:
    """Rebuild the per-series summaries of points written past the API (as after a restore)."""
    env = {**os.environ, "RUNS_DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "runs_service", "refresh-summaries"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise BenchmarkError(f"flask refresh-summaries failed:\n{done.stderr[-2000:]}")


def load(port: int, url: str, direct: bool, cases: list[str]) -> dict[str, str]:
    """Store the workload of the chosen cases; answer the path of each."""
    client = Client(port)
    pending: list[tuple[int, str, float, int]] = []

    def store(run_id: int, name: str, values: list[float]) -> None:
        if direct:
            pending.extend((run_id, name, value, step) for step, value in enumerate(values))
        else:
            post_series(client, run_id, name, values)

    paths = {}
    try:
        if "history_100k" in cases:
            run_id = create_run(client)
            store(run_id, "val_loss", noisy_curve(100_000, 1))
            paths["history_100k"] = (
                f"/api/runs/{run_id}/metric-history?names=val_loss&max_points=1000"
            )
        if "history_1m" in cases:
            run_id = create_run(client)
            store(run_id, "val_loss", noisy_curve(1_000_000, 2))
            paths["history_1m"] = (
                f"/api/runs/{run_id}/metric-history?names=val_loss&max_points=1000"
            )
        compared = []
        for index in range(COMPARE_RUNS if "compare_10x3" in cases else 0):
            run_id = create_run(client)
            epochs = COMPARE_EPOCHS - 50 * index  # runs of different lengths
            for position, name in enumerate(COMPARE_METRICS):
                curve = noisy_curve(epochs, 100 * index + position)
                if name == "val_acc":
                    curve = [min(1.0, max(0.0, 1.0 - value / 3)) for value in curve]
                store(run_id, name, curve)
            compared.append(run_id)
    finally:
        client.close()
    if pending:
        insert_series(url, pending)
        refresh_summaries(url)
    if compared:
        paths["compare_10x3"] = (
            "/api/runs/compare?run_ids="
            + ",".join(map(str, compared))
            + "&names="
            + ",".join(COMPARE_METRICS)
            + "&max_points=500"
        )
    return paths


def check(key: str, data: bytes) -> None:
    body = json.loads(data)
    series = body["series"]
    if key.startswith("history"):
        (only,) = series
        if not only["downsampled"] or not 4 <= len(only["steps"]) <= 1000:
            raise BenchmarkError(f"{key}: not downsampled to at most 1,000 points")
    elif len(series) != COMPARE_RUNS * len(COMPARE_METRICS):
        raise BenchmarkError(f"{key}: expected {COMPARE_RUNS * len(COMPARE_METRICS)} series")


def measure(port: int, paths: dict[str, str], repetitions: int, warmup: int) -> dict:
    client = Client(port)
    samples: dict[str, list[float]] = {key: [] for key in paths}
    try:
        for key, path in paths.items():
            for _ in range(warmup):
                data = client.expect("GET", path)
            check(key, data)
        for _ in range(repetitions):
            for key, path in paths.items():
                started = time.perf_counter()
                client.expect("GET", path)
                samples[key].append((time.perf_counter() - started) * 1000)
    finally:
        client.close()
    return {
        key: {"p50_ms": statistics.median(times), "p95_ms": percentile(times, 0.95)}
        for key, times in samples.items()
    }


def benchmark(
    kind: str, postgres_url: str, repetitions: int, warmup: int, direct: bool, cases: list[str]
) -> dict:
    settings = SimpleNamespace(postgres_url=postgres_url)
    with tempfile.TemporaryDirectory(prefix="runs-series-") as directory:
        workdir = Path(directory)
        with fresh_database(kind, workdir, settings) as url, service(url, workdir) as (port, _):
            started = time.perf_counter()
            paths = load(port, url, direct, cases)
            print(f"{kind}: loaded in {time.perf_counter() - started:.0f} s", file=sys.stderr)
            settle(kind, url)
            return measure(port, paths, repetitions, warmup)


def table(results: dict[str, dict]) -> str:
    kinds = list(results)
    lines = [
        "| case | target p50 | " + " | ".join(f"{kind} p50 / p95 (ratio)" for kind in kinds) + " |",
        "|---|---|" + "---|" * len(kinds),
    ]
    for key, label, target in CASES:
        if key not in results[kinds[0]]:
            continue
        cells = [
            f"{results[kind][key]['p50_ms']:.1f} / {results[kind][key]['p95_ms']:.1f} ms "
            f"({results[kind][key]['p50_ms'] / target:.2f}×)"
            for kind in kinds
        ]
        lines.append(f"| {label} | {target:.0f} ms | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--repetitions", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--direct",
        action="store_true",
        help="insert the points with SQL instead of the write API (loads in seconds; the "
        "reads timed are the same)",
    )
    parser.add_argument(
        "--cases",
        nargs="+",
        choices=[key for key, _, _ in CASES],
        default=[key for key, _, _ in CASES],
        help="the cases to load and time (default: all; the 1,000,000-point one loads longest)",
    )
    args = parser.parse_args(argv)
    results = {}
    for kind in args.databases:
        results[kind] = benchmark(
            kind, args.postgres_url, args.repetitions, args.warmup, args.direct, args.cases
        )
        print(json.dumps({kind: results[kind]}), file=sys.stderr, flush=True)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
