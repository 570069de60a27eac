"""Per-epoch logging of a long run over HTTP: does a write cost more as the run grows?

    .venv/bin/python -m benchmarks.epoch_logging                   # 1,000 epochs, both databases
    .venv/bin/python -m benchmarks.epoch_logging --epochs 300 --database sqlite

Issue 12 item 7: a training loop sends one 9-point request per epoch (the trainer's
train_* and val_* metrics). For each database: a fresh database and gunicorn with 2
workers (the harness of benchmarks.run), one centralized run, then one
POST /api/runs/{id}/metrics per epoch, one after the other over one keep-alive
connection, as a trainer sends them. Reports the p50/p95 per request of the first and
last 100 epochs and of every tenth of the run, and checks the targets: p50 ≤ 4 ms at
any epoch, and the last 100 requests within 1.3× of the first 100.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from runs_service.catalogue import HISTORY_FIELDS

if __package__:
    from benchmarks import run as harness
else:  # run as a script: benchmarks/ itself is on sys.path
    import run as harness

DEFAULT_EPOCHS = 1_000
WINDOW = 100  # requests at each end of the run that are compared
SLICES = 10
P50_TARGET_MS = 4.0
GROWTH_TARGET = 1.3
TRAINER_METRICS = HISTORY_FIELDS


@dataclass
class EpochLoggingResult:
    """The per-request latencies of one database, summarised."""

    database: str
    epochs: int
    window: int
    first_p50_ms: float = 0.0
    first_p95_ms: float = 0.0
    last_p50_ms: float = 0.0
    last_p95_ms: float = 0.0
    slice_p50_ms: list[float] = field(default_factory=list)

    @property
    def growth(self) -> float:
        """p50 of the last requests over p50 of the first ones."""
        return self.last_p50_ms / self.first_p50_ms

    @property
    def worst_p50_ms(self) -> float:
        return max(self.first_p50_ms, self.last_p50_ms, *self.slice_p50_ms)


def epoch_body(rng: random.Random, epoch: int, epochs: int) -> bytes:
    """The 9 points a trainer logs at the end of one epoch (step = epoch, 0-indexed)."""
    progress = epoch / max(1, epochs - 1)
    accuracy = min(0.99, 0.6 + 0.35 * progress + rng.gauss(0, 0.01))
    values = {
        "train_loss": max(0.01, 0.7 * (1 - progress) + rng.gauss(0, 0.01)),
        "val_loss": max(0.01, 0.75 * (1 - progress) + 0.1 + rng.gauss(0, 0.02)),
        **{name: min(1.0, max(0.0, accuracy + rng.gauss(0, 0.02))) for name in TRAINER_METRICS},
    }
    points = [
        {"metric_name": name, "metric_value": round(values[name], 6), "step": epoch}
        for name in TRAINER_METRICS
    ]
    return harness.dumps({"metrics": points})


def log_epochs(port: int, epochs: int, seed: int) -> list[float]:
    """Create a run and log every epoch; the latency of each request in ms."""
    client = harness.Client(port)
    try:
        created = client.expect(
            "POST",
            "/api/runs",
            harness.dumps({"training_mode": "centralized", "config": {"epochs": epochs}}),
            status=201,
        )
        run_id = json.loads(created)["id"]
        rng = random.Random(seed)
        bodies = [epoch_body(rng, epoch, epochs) for epoch in range(epochs)]
        path = f"/api/runs/{run_id}/metrics"
        latencies = []
        for body in bodies:
            started = time.perf_counter()
            client.expect("POST", path, body)
            latencies.append((time.perf_counter() - started) * 1000)
        return latencies
    finally:
        client.close()


def summarise(database: str, latencies: list[float]) -> EpochLoggingResult:
    window = min(WINDOW, len(latencies) // 2)
    first, last = latencies[:window], latencies[-window:]
    size = max(1, len(latencies) // SLICES)
    slices = [latencies[start : start + size] for start in range(0, len(latencies), size)]
    return EpochLoggingResult(
        database=database,
        epochs=len(latencies),
        window=window,
        first_p50_ms=harness.percentile(first, 0.5),
        first_p95_ms=harness.percentile(first, 0.95),
        last_p50_ms=harness.percentile(last, 0.5),
        last_p95_ms=harness.percentile(last, 0.95),
        slice_p50_ms=[harness.percentile(part, 0.5) for part in slices if part],
    )


def benchmark(database: str, epochs: int, settings: harness.Settings) -> EpochLoggingResult:
    with tempfile.TemporaryDirectory(prefix="runs-epochs-") as directory:
        workdir = Path(directory)
        with harness.fresh_database(database, workdir, settings) as url:
            with harness.service(url, workdir) as (port, _master):
                return summarise(database, log_epochs(port, epochs, settings.seed))


def table(results: list[EpochLoggingResult]) -> str:
    lines = [
        "| per-epoch logging, 9 points per request | target | "
        + " | ".join(f"{r.database} ({r.epochs:,} epochs)" for r in results)
        + " |",
        "|---|---|" + "---|" * len(results),
    ]

    def row(label: str, target: str, cells: list[str]) -> None:
        lines.append(f"| {label} | {target} | " + " | ".join(cells) + " |")

    window = min(r.window for r in results)
    first, last = f"first {window} requests", f"last {window} requests"
    target = f"≤ {P50_TARGET_MS:g}"
    row(f"p50 {first}, ms", target, [f"{r.first_p50_ms:.2f}" for r in results])
    row(f"p95 {first}, ms", "", [f"{r.first_p95_ms:.2f}" for r in results])
    row(f"p50 {last}, ms", target, [f"{r.last_p50_ms:.2f}" for r in results])
    row(f"p95 {last}, ms", "", [f"{r.last_p95_ms:.2f}" for r in results])
    row("last / first (p50)", f"≤ {GROWTH_TARGET:g}", [f"{r.growth:.2f}" for r in results])
    row(
        "p50 per tenth of the run, ms",
        "",
        [" / ".join(f"{value:.1f}" for value in r.slice_p50_ms) for r in results],
    )
    return "\n".join(lines)


def checks(results: list[EpochLoggingResult]) -> list[tuple[str, bool]]:
    found = []
    for r in results:
        found.append((f"{r.database}: p50 ≤ {P50_TARGET_MS:g} ms", r.worst_p50_ms <= P50_TARGET_MS))
        found.append((f"{r.database}: last/first ≤ {GROWTH_TARGET:g}", r.growth <= GROWTH_TARGET))
    return found


def parse_args(argv: list[str] | None) -> tuple[list[str], int, harness.Settings, str | None]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--output", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--postgres-url", default=harness.DEFAULT_POSTGRES_URL)
    parser.add_argument("--seed", type=int, default=harness.DEFAULT_SEED)
    args = parser.parse_args(argv)
    if args.epochs < 2 * SLICES:
        parser.error(f"--epochs must be at least {2 * SLICES}")
    databases = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    settings = harness.Settings(
        databases=databases,
        sizes=[],
        repetitions=0,
        warmup=0,
        concurrent_seconds=0.0,
        postgres_url=args.postgres_url,
        seed=args.seed,
    )
    return databases, args.epochs, settings, args.output


def main(argv: list[str] | None = None) -> int:
    databases, epochs, settings, output = parse_args(argv)
    # TERM (e.g. from a CI timeout) unwinds like Ctrl-C, so gunicorn and databases are cleaned up.
    signal.signal(signal.SIGTERM, harness.interrupt)
    results = []
    try:
        for database in databases:
            print(f"{database}: logging {epochs:,} epochs", file=sys.stderr)
            results.append(benchmark(database, epochs, settings))
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    except harness.BenchmarkError as error:
        print(f"benchmark failed (everything started was stopped): {error}", file=sys.stderr)
        return 1
    print(table(results))
    found = checks(results)
    for label, met in found:
        print(f"{harness.mark(met)} {label}")
    if output:
        figures = {
            "machine": harness.machine(),
            "results": [asdict(r) | {"growth": r.growth} for r in results],
        }
        Path(output).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
