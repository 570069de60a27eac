"""A real runs_service for the client's tests: gunicorn on a free port over a temp SQLite db.

The service runs from the repository's own virtualenv (`.venv`, or $RUNS_SERVICE_VENV),
never from the client's: the client under test shares nothing with it but HTTP. Without
that virtualenv the service tests skip, unless RUNS_CLIENT_TEST_REQUIRE_SERVICE=1 (as
in .ci/run) turns the skip into a failure.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The service's checkout ($RUNS_SERVICE_DIR, e.g. another branch's worktree) and venv.
REPO = Path(os.environ.get("RUNS_SERVICE_DIR") or Path(__file__).resolve().parents[2])
WRITER_TOKEN = "client-tests-writer"
ADMIN_TOKEN = "client-tests-admin"
STARTUP_SECONDS = 60
STOP_SECONDS = 30


def service_bin() -> Path | None:
    venv = Path(os.environ.get("RUNS_SERVICE_VENV") or REPO / ".venv")
    found = venv / "bin"
    return found if (found / "gunicorn").exists() else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Service:
    """One gunicorn master (and its worker), started and stopped by PID."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        found = service_bin()
        if found is None:
            message = "runs_service's virtualenv is missing (make .venv/bin/.installed)"
            if os.environ.get("RUNS_CLIENT_TEST_REQUIRE_SERVICE") == "1":
                pytest.fail(message)
            pytest.skip(message)
        self.bin = found
        self.directory = directory
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.env = {
            **os.environ,
            "RUNS_DATABASE_URL": f"sqlite:///{directory / 'runs.db'}",
            "RUNS_API_TOKENS": WRITER_TOKEN,
            "RUNS_ADMIN_TOKENS": ADMIN_TOKEN,
            "FLASK_APP": "runs_service",
        }
        subprocess.run(
            [str(self.bin / "flask"), "--app", "runs_service", "db", "upgrade"],
            cwd=REPO,
            env=self.env,
            check=True,
            capture_output=True,
        )

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def start(self) -> None:
        log = open(self.directory / "gunicorn.log", "ab")  # noqa: SIM115 - child keeps it
        self.process = subprocess.Popen(
            [
                str(self.bin / "gunicorn"),
                "-c", "gunicorn.conf.py",
                "--bind", f"127.0.0.1:{self.port}",
                "--workers", "1",
                "--threads", "4",
                "--graceful-timeout", "5",
                "wsgi:app",
            ],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer in {STARTUP_SECONDS} s: {self.log_tail()}")

    def stop(self) -> None:
        """TERM to the master's PID, then wait for it (KILL to its group if it hangs)."""
        if self.process is None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        self.process = None
        # The worker leaves with its master; wait until the port is really closed.
        deadline = time.monotonic() + STOP_SECONDS
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.1)

    def log_tail(self) -> str:
        path = self.directory / "gunicorn.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def call(self, method: str, path: str, body: Any = None, token: str | None = WRITER_TOKEN):
        """One request; returns (status, parsed JSON body)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                raw, status = answer.read(), answer.status
        except urllib.error.HTTPError as error:
            raw, status = error.read(), error.code
        return status, (json.loads(raw) if raw else None)

    def get(self, path: str) -> Any:
        status, body = self.call("GET", path, token=None)
        assert status == 200, (path, status, body)
        return body

    def runs(self) -> list[dict[str, Any]]:
        return self.get("/api/runs/list?limit=1000")["runs"]

    def run_by_external_id(self, external_id: str) -> dict[str, Any]:
        """The run record with this external_id (there must be exactly one)."""
        found = []
        for summary in self.runs():
            record = self.get(f"/api/runs/{summary['id']}")
            if record["external_id"] == external_id:
                found.append(record)
        assert len(found) == 1, (external_id, found)
        return found[0]

    def metrics_count(self, run_id: int) -> int:
        for summary in self.runs():
            if summary["id"] == run_id:
                return summary["metrics_count"]
        raise AssertionError(f"run {run_id} not listed")

    def resend(self, run_id: int, kind: str, items: list[dict[str, Any]]) -> dict[str, int]:
        """POST items again: an answer of all `unchanged` proves they are stored as sent."""
        paths = {
            "metrics": "metrics",
            "evaluations": "server-evaluations",
            "clients": "clients",
        }
        status, body = self.call("POST", f"/api/runs/{run_id}/{paths[kind]}", {kind: items})
        assert status == 200, (status, body)
        return body


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Iterator[Service]:
    running = Service(tmp_path_factory.mktemp("service"))
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def spool_dir(tmp_path) -> Path:
    return tmp_path / "spool"
