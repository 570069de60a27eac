"""Benchmark the Python client (client/): log_metrics overhead and points/s through it.

    client/.venv/bin/python benchmarks/client.py              # about a minute
    client/.venv/bin/python benchmarks/client.py --steps 50000 --output client.json

Runs in the client's virtualenv (runs_client installed, no Flask); serves runs_service
with gunicorn (gunicorn.conf.py, 2 workers) from the repository's `.venv` over a fresh
SQLite database, on a free loopback port, and stops it at the end. Three cases, one run:

1. overhead: p50/p95/p99 of one `log_metrics` call with a 9-metric dict, timed in
   bursts of 1,000 calls (9,000 points, below one batch) with a flush between bursts,
   so the sender is idle while the loop is timed;
2. sustained: a loop logging 9 metrics per step as fast as it can while the sender
   ships to the service: points/s the loop logged, points/s stored (until flush()
   returns), and the per-call latencies meanwhile; the stored count is checked;
3. raw HTTP: the same points as prepared 10,000-point JSON batches over one keep-alive
   connection: the service's single-connection ingestion rate, for comparison.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from runs_client import RunsClient

REPO = Path(__file__).resolve().parent.parent
TOKEN = "benchmark-token"
NAMES = (
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "val_precision",
    "val_recall",
    "val_f1",
    "val_auroc",
    "learning_rate",
)
BURST = 1_000
BATCH = 10_000


def metrics_at(step: int) -> dict[str, float]:
    return {name: (step % 997) / 1000 + index / 10_000 for index, name in enumerate(NAMES)}


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_service(workdir: Path) -> tuple[subprocess.Popen, str]:
    venv = Path(os.environ.get("RUNS_SERVICE_VENV") or REPO / ".venv") / "bin"
    port = free_port()
    env = {
        **os.environ,
        "RUNS_DATABASE_URL": f"sqlite:///{workdir / 'runs.db'}",
        "RUNS_API_TOKENS": TOKEN,
        "BIND": f"127.0.0.1:{port}",
    }
    subprocess.run(
        [str(venv / "flask"), "--app", "runs_service", "db", "upgrade"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    with (workdir / "gunicorn.log").open("wb") as log:
        master = subprocess.Popen(
            [str(venv / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1):
                return master, url
        except OSError:
            time.sleep(0.2)
    master.kill()
    raise RuntimeError("gunicorn did not start")


def stop_service(master: subprocess.Popen) -> None:
    master.send_signal(signal.SIGTERM)
    try:
        master.wait(40)
    except subprocess.TimeoutExpired:
        os.killpg(master.pid, signal.SIGKILL)
        master.wait()


def metrics_count(url: str, run_id: int) -> int:
    with urllib.request.urlopen(f"{url}/api/runs/list?limit=1000") as answer:
        runs = json.load(answer)["runs"]
    return next(run["metrics_count"] for run in runs if run["id"] == run_id)


def overhead(url: str, spool: Path, bursts: int) -> dict[str, float]:
    client = RunsClient(url, token=TOKEN, spool_dir=spool)
    samples: list[float] = []
    with client.start_run(run_description="benchmark: overhead") as run:
        step = 0
        for _ in range(bursts):
            client.flush(60)
            for _ in range(BURST):
                values = metrics_at(step)
                started = time.perf_counter_ns()
                run.log_metrics(values, step=step)
                samples.append(time.perf_counter_ns() - started)
                step += 1
    client.close()
    assert metrics_count(url, run.run_id) == step * len(NAMES)
    return {
        "calls": len(samples),
        "p50_us": percentile(samples, 0.50) / 1000,
        "p95_us": percentile(samples, 0.95) / 1000,
        "p99_us": percentile(samples, 0.99) / 1000,
    }


def sustained(url: str, spool: Path, steps: int, queue_size: int) -> dict[str, float]:
    client = RunsClient(url, token=TOKEN, spool_dir=spool, queue_size=queue_size)
    samples: list[float] = []
    run = client.start_run(run_description="benchmark: sustained")
    prepared = [metrics_at(step) for step in range(steps)]
    started = time.perf_counter()
    for step, values in enumerate(prepared):
        call = time.perf_counter_ns()
        run.log_metrics(values, step=step)
        samples.append(time.perf_counter_ns() - call)
    logged = time.perf_counter() - started
    assert client.flush(600), "not everything was sent in 10 minutes"
    stored = time.perf_counter() - started
    run.finish()
    client.close()
    points = steps * len(NAMES)
    assert metrics_count(url, run.run_id) == points
    return {
        "points": points,
        "queue_size": queue_size,
        "logged_points_per_s": points / logged,
        "stored_points_per_s": points / stored,
        "p50_us": percentile(samples, 0.50) / 1000,
        "p99_us": percentile(samples, 0.99) / 1000,
        "max_ms": max(samples) / 1e6,
        "max_at_step": samples.index(max(samples)),
        "calls_over_1ms": sum(sample > 1e6 for sample in samples),
    }


def raw_http(url: str, steps: int) -> dict[str, float]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    body = json.dumps({"training_mode": "centralized", "run_description": "benchmark: raw"})
    connection.request("POST", "/api/runs", body, headers)
    run_id = json.loads(connection.getresponse().read())["id"]
    points = [
        {"metric_name": name, "metric_value": value, "step": step}
        for step in range(steps)
        for name, value in metrics_at(step).items()
    ]
    batches = [
        json.dumps({"metrics": points[start : start + BATCH]}).encode()
        for start in range(0, len(points), BATCH)
    ]
    started = time.perf_counter()
    for batch in batches:
        connection.request("POST", f"/api/runs/{run_id}/metrics", batch, headers)
        answer = connection.getresponse()
        answer.read()
        assert answer.status == 200, answer.status
    elapsed = time.perf_counter() - started
    connection.close()
    assert metrics_count(url, run_id) == len(points)
    return {"points": len(points), "stored_points_per_s": len(points) / elapsed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20_000, help="steps of 9 metrics")
    parser.add_argument("--bursts", type=int, default=50, help="bursts of 1,000 timed calls")
    parser.add_argument(
        "--queue-size", type=int, default=100_000, help="RunsClient queue_size (its default)"
    )
    parser.add_argument("--output", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="runs-client-bench-") as directory:
        workdir = Path(directory)
        master, url = start_service(workdir)
        try:
            figures = {
                "overhead": overhead(url, workdir / "spool", args.bursts),
                "sustained": sustained(url, workdir / "spool", args.steps, args.queue_size),
                "raw_http": raw_http(url, args.steps),
                "python": platform.python_version(),
                "load_average": os.getloadavg(),
            }
        finally:
            stop_service(master)
    o, s, r = figures["overhead"], figures["sustained"], figures["raw_http"]
    print(
        f"log_metrics, 9 metrics, sender idle: p50 {o['p50_us']:.1f} µs, "
        f"p95 {o['p95_us']:.1f} µs, p99 {o['p99_us']:.1f} µs ({o['calls']:,} calls)"
    )
    print(
        f"sustained loop, {s['points']:,} points: logged {s['logged_points_per_s']:,.0f}/s, "
        f"stored {s['stored_points_per_s']:,.0f}/s; per call p50 {s['p50_us']:.1f} µs, "
        f"p99 {s['p99_us']:.1f} µs, max {s['max_ms']:.1f} ms (step {s['max_at_step']:,}); "
        f"{s['calls_over_1ms']} calls over 1 ms"
    )
    print(
        f"raw HTTP, 10,000-point batches, one connection: "
        f"{r['stored_points_per_s']:,.0f} points/s; client/raw = "
        f"{s['stored_points_per_s'] / r['stored_points_per_s']:.2f}"
    )
    print(f"load average during the run: {figures['load_average']}")
    if args.output:
        Path(args.output).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
