"""Analytics at 10,000 and 100,000 runs: the roll-ups against the scanning statements.

    .venv/bin/python -m benchmarks.analytics                       # both databases, 10k and 100k
    .venv/bin/python -m benchmarks.analytics --database postgres --runs 100000

Loading 100,000 runs through the HTTP API takes 20+ minutes per database on a 2-core
machine, so this bulk loader writes the seeded workload of `benchmarks.workload` (the
same runs as `benchmarks.run`: mode, status, start and end times) straight into `runs`
with SQL (each run in one of ten experiments, `exp-0`..`exp-9`), and each run's
`run_summaries` row with the best values the service would
derive from the run's points (max of `val_acc`/`val_precision`/`val_recall`/`val_f1`/
`val_auroc` over epochs; federated: of the server evaluations over training rounds, SPEC
§3). The points themselves are not written: analytics reads runs, run summaries and
roll-ups only. Then the roll-ups are rebuilt by the code behind `flask refresh-rollups`
(which must find them all missing), PostgreSQL is vacuumed and analysed as in
`benchmarks.run`, and for each query:

- in process, alternating in rounds: `analytics_summary(read_rollups=False)` (the
  scanning statements, the code path before the roll-ups) and the roll-ups' path, on the
  same database in the same run; the two answers must be equal;
- over HTTP (gunicorn, 2 workers, `benchmarks.run`'s service): the route as served,
  and `benchmarks.run`'s `/list` cases that need no metric summaries.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.run import (
    DEFAULT_POSTGRES_URL,
    READ_CASES,
    Client,
    Settings,
    fresh_database,
    percentile,
    service,
    settle,
)
from benchmarks.workload import ANCHOR, DEFAULT_SEED, WorkloadRun, generate_workload

CENTRALIZED_BESTS = {
    "best_accuracy": "val_acc",
    "best_precision": "val_precision",
    "best_recall": "val_recall",
    "best_f1": "val_f1",
    "best_auroc": "val_auroc",
}
FEDERATED_BESTS = {
    "best_accuracy": "accuracy",
    "best_precision": "precision",
    "best_recall": "recall",
    "best_f1": "f1_score",
    "best_auroc": "auroc",
}
CHUNK = 5_000
# In process: `now` is the workload's anchor, so days=30 keeps its last 30 days.
IN_PROCESS_QUERIES = {
    "default": {},
    "days=30": {"days": 30},
    "all, federated": {"status": "all", "training_mode": "federated"},
    # Not in the roll-ups: read from the matching runs either way (a tenth of the runs).
    "experiment": {"experiment": "exp-3"},
}


def http_queries() -> dict[str, str]:
    """The same questions over HTTP; days counts from today, so it reaches the anchor."""
    days = (datetime.now(UTC) - ANCHOR).days + 30
    base = "/api/runs/analytics/summary"
    return {
        "default": base,
        "days=30": f"{base}?days={days}",
        "all, federated": f"{base}?status=all&training_mode=federated",
        "experiment": f"{base}?experiment=exp-3",
    }


# benchmarks.run's list cases that read runs and run summaries only (the bulk load writes
# no metric summaries): over HTTP beside the analytics, for their growth to 100,000 runs.
LIST_CASES = {
    label: path
    for key, label, path in READ_CASES
    if key in ("list_start_time", "list_federated", "list_best_acc")
}


def best_values(run: WorkloadRun) -> dict[str, float | None]:
    """The run's best validation values as the service derives them (SPEC §3)."""
    if run.run["training_mode"] == "centralized":
        values: dict[str, list[float]] = {}
        for point in run.metrics:
            values.setdefault(point["metric_name"], []).append(point["metric_value"])
        return {
            column: max(values[name]) if name in values else None
            for column, name in CENTRALIZED_BESTS.items()
        }
    training = [e for e in run.evaluations if e["round_number"] >= 1]
    bests = {}
    for column, key in FEDERATED_BESTS.items():
        present = [e[key] for e in training if e.get(key) is not None]
        bests[column] = max(present) if present else None
    return bests


def bulk_load(app: Any, size: int, seed: int) -> float:
    """Write `size` workload runs and their summaries with SQL; seconds taken."""
    from runs_service.extensions import db
    from runs_service.models import Run, RunSummary

    started = time.perf_counter()
    runs: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    now = datetime.now(UTC)

    def flush() -> None:
        db.session.execute(Run.__table__.insert(), runs)
        db.session.execute(RunSummary.__table__.insert(), summaries)
        db.session.commit()
        runs.clear()
        summaries.clear()

    with app.app_context():
        for run_id, run in enumerate(generate_workload(size, seed=seed), start=1):
            body = run.run
            end = body.get("end_time")
            runs.append(
                {
                    "id": run_id,
                    "training_mode": body["training_mode"],
                    "status": body["status"],
                    "start_time": datetime.fromisoformat(body["start_time"]),
                    "end_time": datetime.fromisoformat(end) if end else None,
                    "run_description": body["run_description"],
                    "source_path": body["source_path"],
                    "config": body["config"],
                    # Ten experiments, so the experiment filter matches a tenth of the runs.
                    "experiment": f"exp-{run_id % 10}",
                }
            )
            summaries.append(
                {
                    "run_id": run_id,
                    "training_mode": body["training_mode"],
                    "metrics_count": len(run.metrics),
                    "has_server_evaluation": bool(run.evaluations),
                    "num_rounds": sum(1 for e in run.evaluations if e["round_number"] >= 1),
                    "registered_clients": len(run.clients),
                    "updated_at": now,
                    **best_values(run),
                }
            )
            if len(runs) == CHUNK:
                flush()
        if runs:
            flush()
    return time.perf_counter() - started


def differing_averages(scan: dict[str, Any], rolled: dict[str, Any]) -> list[str]:
    """The averages two answers round differently (by at most 1 in the 4th place: the scan's
    floating-point sum breaks exact ties by its noise); anything else must be equal."""
    differing = []
    for mode in ("centralized", "federated"):
        for key, value in scan[mode].items():
            other = rolled[mode][key]
            if value == other:
                continue
            if not key.startswith("avg_") or abs(value - other) > 1.00001e-4:
                raise AssertionError(f"{mode}.{key}: scan {value}, roll-ups {other}")
            differing.append(f"{mode}.{key} {value} / {other}")
    same = {k: v for k, v in scan.items() if k not in ("centralized", "federated", "comparison")}
    if same != {k: rolled[k] for k in same}:
        raise AssertionError(f"roll-ups and scan disagree:\n{scan}\n{rolled}")
    return differing


def time_in_process(app: Any, repetitions: int) -> dict[str, dict[str, float]]:
    """p50/p95 ms of each query by the scanning statements and by the roll-ups."""
    from runs_service.extensions import db
    from runs_service.services.analytics import analytics_summary

    samples = {(name, path): [] for name in IN_PROCESS_QUERIES for path in ("scan", "rollups")}
    with app.app_context():
        for name, query in IN_PROCESS_QUERIES.items():
            answers = [
                analytics_summary(**query, now=ANCHOR, read_rollups=flag) for flag in (False, True)
            ]
            db.session.rollback()
            ties = differing_averages(*answers)
            if ties:
                print(f"{name}: averages at a 5th-place tie rounded apart: {ties}", file=sys.stderr)
        for _ in range(repetitions):
            for name, query in IN_PROCESS_QUERIES.items():
                for path, flag in (("scan", False), ("rollups", True)):
                    began = time.perf_counter()
                    analytics_summary(**query, now=ANCHOR, read_rollups=flag)
                    db.session.rollback()
                    samples[(name, path)].append((time.perf_counter() - began) * 1000)
    return {
        f"{name} {path}": {
            "p50_ms": statistics.median(values),
            "p95_ms": percentile(values, 0.95),
        }
        for (name, path), values in samples.items()
    }


def time_http(port: int, repetitions: int) -> dict[str, dict[str, float]]:
    client = Client(port)
    queries = {**http_queries(), **LIST_CASES}
    samples: dict[str, list[float]] = {name: [] for name in queries}
    try:
        for path in queries.values():
            for _ in range(5):
                client.expect("GET", path)
        for _ in range(repetitions):
            for name, path in queries.items():
                began = time.perf_counter()
                client.expect("GET", path)
                samples[name].append((time.perf_counter() - began) * 1000)
    finally:
        client.close()
    return {
        f"{name} http": {"p50_ms": statistics.median(v), "p95_ms": percentile(v, 0.95)}
        for name, v in samples.items()
    }


def measure(kind: str, size: int, settings: Settings, repetitions: int) -> dict[str, Any]:
    from runs_service import create_app
    from runs_service.services.rollups import rebuild_rollups

    print(f"\n## {kind} N={size:,}", file=sys.stderr)
    result: dict[str, Any] = {"database": kind, "runs": size, "load1": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="runs-analytics-") as tmp:
        workdir = Path(tmp)
        with fresh_database(kind, workdir, settings) as url, service(url, workdir) as (port, _):
            app = create_app({"SQLALCHEMY_DATABASE_URI": url})
            result["load_seconds"] = bulk_load(app, size, settings.seed)
            began = time.perf_counter()
            with app.app_context():
                result["rollup_rows"] = rebuild_rollups()
            result["rebuild_seconds"] = time.perf_counter() - began
            settle(kind, url)
            print(
                f"loaded in {result['load_seconds']:.0f} s; roll-ups rebuilt "
                f"({result['rollup_rows']} rows) in {result['rebuild_seconds']:.1f} s",
                file=sys.stderr,
            )
            result["timings"] = {
                **time_in_process(app, repetitions),
                **time_http(port, repetitions),
            }
            with app.app_context():
                from runs_service.extensions import db

                db.engine.dispose()
    result["load1_after"] = os.getloadavg()[0]
    return result


def table(results: list[dict[str, Any]]) -> str:
    columns = [f"{r['database']} N={r['runs']:,}" for r in results]
    lines = [
        "| p50 / p95 ms | " + " | ".join(columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for name in IN_PROCESS_QUERIES:
        for path in ("scan", "rollups", "http"):
            key = f"{name} {path}"
            cells = [
                f"{r['timings'][key]['p50_ms']:.2f} / {r['timings'][key]['p95_ms']:.2f}"
                for r in results
            ]
            label = {
                "scan": "in process, scanning statements (before)",
                "rollups": "in process, roll-ups (after)",
                "http": "over HTTP, roll-ups",
            }[path]
            lines.append(f"| {name}: {label} | " + " | ".join(cells) + " |")
        ratios = [
            r["timings"][f"{name} scan"]["p50_ms"] / r["timings"][f"{name} rollups"]["p50_ms"]
            for r in results
        ]
        lines.append(
            f"| {name}: scan ÷ roll-ups | " + " | ".join(f"×{x:.1f}" for x in ratios) + " |"
        )
    for label in LIST_CASES:
        cells = [
            f"{r['timings'][f'{label} http']['p50_ms']:.2f} / "
            f"{r['timings'][f'{label} http']['p95_ms']:.2f}"
            for r in results
        ]
        lines.append(f"| {label} over HTTP | " + " | ".join(cells) + " |")
    lines.append("| roll-up rows | " + " | ".join(str(r["rollup_rows"]) for r in results) + " |")
    lines.append(
        "| bulk load, s / rebuild, s | "
        + " | ".join(f"{r['load_seconds']:.0f} / {r['rebuild_seconds']:.1f}" for r in results)
        + " |"
    )
    lines.append(
        "| load average (1 min) before / after | "
        + " | ".join(f"{r['load1']:.1f} / {r['load1_after']:.1f}" for r in results)
        + " |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.analytics", description=__doc__)
    parser.add_argument("--database", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--runs", default="10000,100000", help="comma-separated sizes")
    parser.add_argument("--repetitions", type=int, default=50)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--output", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    settings = Settings(
        databases=["sqlite", "postgres"] if args.database == "both" else [args.database],
        sizes=[int(size) for size in args.runs.split(",")],
        repetitions=args.repetitions,
        warmup=5,
        concurrent_seconds=0,
        postgres_url=args.postgres_url,
        seed=DEFAULT_SEED,
    )
    results = [
        measure(kind, size, settings, args.repetitions)
        for kind in settings.databases
        for size in settings.sizes
    ]
    print(table(results))
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
