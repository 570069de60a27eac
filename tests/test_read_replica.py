"""RUNS_READ_DATABASE_URL against a real streaming standby started here.

The module starts its own throw-away primary (initdb, replication allowed) and a hot
standby made from it with pg_basebackup, each on a free port in a temporary directory,
and removes both at the end, failed or not. It runs in the PostgreSQL pass
(RUNS_TEST_DATABASE_URL), where missing PostgreSQL server programs are a failure.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import create_engine, text

from runs_service import create_app
from runs_service.extensions import READ_PRIMARY_HEADER, db
from tests.helpers import AUTH, WRITER_TOKEN

pytestmark = pytest.mark.postgres

PROGRAMS = ("initdb", "pg_ctl", "pg_basebackup")
# Short, so that the test sees reads return to the standby soon after it is back.
RETRY_SECONDS = 1.0
READ_PRIMARY = {READ_PRIMARY_HEADER: "1"}


def server_programs() -> Path:
    """The directory of initdb, pg_ctl and pg_basebackup (Debian keeps them off PATH)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[4]))
    on_path = shutil.which("pg_ctl")
    for directory in ([str(Path(on_path).parent)] if on_path else []) + candidates[::-1]:
        if all(os.access(Path(directory) / name, os.X_OK) for name in PROGRAMS):
            return Path(directory)
    pytest.fail(f"RUNS_TEST_DATABASE_URL is set but {', '.join(PROGRAMS)} are not installed")


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Cluster:
    """One PostgreSQL server process: a data directory and a port."""

    programs: Path
    data: Path
    port: int
    as_postgres: list[str]

    def run(self, program: str, *arguments: str) -> None:
        command = [*self.as_postgres, str(self.programs / program), *arguments]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{program} failed:\n{done.stdout}\n{done.stderr}"

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data}"
            " -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
        )
        self.run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", f"{self.data}.log", "-w", "start"
        )

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def stop_if_running(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def query(self, sql: str):
        engine = create_engine(self.url("runs"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                return connection.execute(text(sql)).scalar()
        finally:
            engine.dispose()


@dataclass
class Replication:
    primary: Cluster
    standby: Cluster


@pytest.fixture(scope="module")
def replication(database_url: str) -> Iterator[Replication]:
    """A primary with a database `runs` (schema migrated) and its hot standby."""
    if not database_url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL server programs (the RUNS_TEST_DATABASE_URL pass)")
    programs = server_programs()
    # initdb and pg_ctl refuse to run as root: run them as `postgres`, in a directory it owns.
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    with ExitStack() as cleanup:
        root = Path(tempfile.mkdtemp(prefix="runs-replica-"))
        cleanup.callback(shutil.rmtree, root, ignore_errors=True)
        if as_postgres:
            owner = pwd.getpwnam("postgres")
            os.chown(root, owner.pw_uid, owner.pw_gid)
        primary = Cluster(programs, root / "primary", free_port(), as_postgres)
        standby = Cluster(programs, root / "standby", free_port(), as_postgres)
        # Its default pg_hba.conf trusts local and loopback connections, replication included.
        primary.run("initdb", "-D", str(primary.data), "-U", "postgres", "-A", "trust", "-N")
        cleanup.callback(primary.stop_if_running)
        primary.start()
        primary_admin = create_engine(primary.url(), isolation_level="AUTOCOMMIT")
        with primary_admin.connect() as connection:
            connection.execute(text("CREATE DATABASE runs"))
        primary_admin.dispose()
        app = create_app({"SQLALCHEMY_DATABASE_URI": primary.url("runs")})
        with app.app_context():
            upgrade()
            db.engine.dispose()
        primary.run(
            "pg_basebackup",
            *("-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"),
            *("-D", str(standby.data), "-R", "-X", "stream", "-c", "fast"),
        )
        cleanup.callback(standby.stop_if_running)
        standby.start()
        yield Replication(primary, standby)


@pytest.fixture
def app(replication: Replication, tmp_path) -> Iterator[Flask]:
    application = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": replication.primary.url("runs"),
            "RUNS_READ_DATABASE_URL": replication.standby.url("runs"),
            "RUNS_READ_REPLICA_RETRY_SECONDS": RETRY_SECONDS,
            "RUNS_API_TOKENS": (WRITER_TOKEN,),
            "RUNS_RESULTS_DIR": str(tmp_path / "results"),
        }
    )
    yield application
    with application.app_context():
        for engine in db.engines.values():
            engine.dispose()


def create_run(client, description: str) -> int:
    created = client.post(
        "/api/runs",
        json={"training_mode": "centralized", "run_description": description},
        headers=AUTH,
    )
    assert created.status_code == 201, created.get_json()
    return created.get_json()["id"]


def wait_for(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def replayed(client, run_id: int) -> bool:
    """Whether a plain read (the standby's, while it is up) finds the run."""
    return client.get(f"/api/runs/{run_id}").status_code == 200


def assert_reads_come_from_the_standby(client, replication: Replication) -> None:
    """With replay paused, the standby lags: a fresh write is invisible to plain reads."""
    replication.standby.query("SELECT pg_wal_replay_pause()")
    try:
        run_id = create_run(client, "written while the standby lags")
        missed = client.get(f"/api/runs/{run_id}")
        read_own_write = client.get(f"/api/runs/{run_id}", headers=READ_PRIMARY)
        listed = client.get("/api/runs/list", headers=READ_PRIMARY).get_json()
    finally:
        replication.standby.query("SELECT pg_wal_replay_resume()")
    assert missed.status_code == 404
    assert read_own_write.status_code == 200
    assert read_own_write.get_json()["run_description"] == "written while the standby lags"
    assert run_id in [run["id"] for run in listed["runs"]]
    wait_for(lambda: replayed(client, run_id), "the standby to replay the write")


def test_reads_go_to_the_standby_and_the_header_reads_the_primary(app, replication):
    client = app.test_client()
    run_id = create_run(client, "first")
    wait_for(lambda: replayed(client, run_id), "the standby to replay the first write")

    assert_reads_come_from_the_standby(client, replication)
    # Writes go to the primary: the standby (read-only) would refuse them.
    patched = client.patch(f"/api/runs/{run_id}", json={"status": "completed"}, headers=AUTH)
    assert patched.status_code == 200
    assert client.get("/readyz").status_code == 200


def test_reads_fall_back_to_the_primary_while_the_standby_is_down(app, replication):
    client = app.test_client()
    fallback = app.extensions["runs_read_replica"]
    run_id = create_run(client, "before the outage")
    wait_for(lambda: replayed(client, run_id), "the standby to replay the write")

    replication.standby.stop()
    try:
        during = [client.get(f"/api/runs/{run_id}") for _ in range(5)]
        noticed_until = fallback.replica_down_until
        written_during = create_run(client, "during the outage")
        seen_during = client.get(f"/api/runs/{written_during}")
        # One failed connection put the standby aside; the reads since did not retry it.
        assert fallback.replica_down_until == noticed_until
    finally:
        replication.standby.start()

    assert [reply.status_code for reply in during] == [200] * 5
    assert noticed_until > 0
    assert seen_during.status_code == 200
    assert seen_during.get_json()["run_description"] == "during the outage"
    # Back: once the retry period is over, reads return to the standby.
    wait_for(lambda: time.monotonic() > fallback.replica_down_until, "the retry period")
    wait_for(lambda: replayed(client, written_during), "the standby to catch up")
    assert_reads_come_from_the_standby(client, replication)
