"""Concurrent writers lose nothing, duplicate nothing and never see a 500 or a lock error.

The thread tests run on the session database (file-backed SQLite, or PostgreSQL with
RUNS_TEST_DATABASE_URL). The process test runs two processes on one SQLite file, the
way two gunicorn workers share it.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import event, func, select

from runs_service import create_app
from runs_service.extensions import db, sqlite_begin_statement
from runs_service.models import Client, Run, RunMetric
from tests.helpers import AUTH, WRITER_TOKEN

METRIC_WRITERS = 16
RUN_CREATORS = 4
CLIENT_REGISTRARS = 4
STEPS_PER_WRITER = 25
RUNS_PER_CREATOR = 5
SHARED_STEPS = 10
CLIENTS_PER_REGISTRAR = 6
CLIENT_OVERLAP = 3
PROCESS_WRITES = 15


def metric_batch(writer: int) -> list[dict[str, Any]]:
    """The writer's own points plus points every writer sends with the same values."""
    own = [
        {"metric_name": "val_acc", "metric_value": 0.5, "step": writer * STEPS_PER_WRITER + step}
        for step in range(STEPS_PER_WRITER)
    ] + [
        {"metric_name": f"train_loss_w{writer}", "metric_value": 1.0 / (step + 1), "step": step}
        for step in range(STEPS_PER_WRITER)
    ]
    shared = [
        {"metric_name": "val_loss", "metric_value": 0.25, "step": step}
        for step in range(SHARED_STEPS)
    ]
    return own + shared


def client_batch(registrar: int) -> list[dict[str, Any]]:
    """Clients of one registrar; neighbours share CLIENT_OVERLAP identifiers."""
    start = registrar * (CLIENTS_PER_REGISTRAR - CLIENT_OVERLAP)
    return [
        {"client_identifier": f"client-{number}"}
        for number in range(start, start + CLIENTS_PER_REGISTRAR)
    ]


def run_at_once(tasks: list[Callable[[], Any]]) -> list[Any]:
    """Start every task together (behind a barrier) on its own thread; return the results."""
    barrier = threading.Barrier(len(tasks))

    def start(task: Callable[[], Any]) -> Any:
        barrier.wait(timeout=30)
        return task()

    with ThreadPoolExecutor(max_workers=len(tasks)) as pool:
        return list(pool.map(start, tasks))


def test_simultaneous_batches_creates_and_registrations_lose_nothing(app, create_run):
    centralized = create_run("centralized")["id"]
    federated = create_run("federated")["id"]
    runs_before = 2

    def write_metrics(writer: int) -> Callable[[], list]:
        def task() -> list:
            client = app.test_client()
            response = client.post(
                f"/api/runs/{centralized}/metrics",
                json={"metrics": metric_batch(writer)},
                headers=AUTH,
            )
            return [(response.status_code, response.get_json())]

        return task

    def create_runs(creator: int) -> Callable[[], list]:
        def task() -> list:
            client = app.test_client()
            answers = []
            for number in range(RUNS_PER_CREATOR):
                response = client.post(
                    "/api/runs",
                    json={"training_mode": "federated", "external_id": f"c{creator}-{number}"},
                    headers=AUTH,
                )
                answers.append((response.status_code, response.get_json()))
            return answers

        return task

    def register_clients(registrar: int) -> Callable[[], list]:
        def task() -> list:
            client = app.test_client()
            response = client.post(
                f"/api/runs/{federated}/clients",
                json={"clients": client_batch(registrar)},
                headers=AUTH,
            )
            return [(response.status_code, response.get_json())]

        return task

    tasks = (
        [write_metrics(writer) for writer in range(METRIC_WRITERS)]
        + [create_runs(creator) for creator in range(RUN_CREATORS)]
        + [register_clients(registrar) for registrar in range(CLIENT_REGISTRARS)]
    )
    answers = [answer for result in run_at_once(tasks) for answer in result]

    statuses = Counter(status for status, _ in answers)
    assert set(statuses) <= {200, 201}, [body for status, body in answers if status >= 300]

    expected_points = {
        (point["metric_name"], point["step"])
        for writer in range(METRIC_WRITERS)
        for point in metric_batch(writer)
    }
    expected_clients = {
        item["client_identifier"]
        for registrar in range(CLIENT_REGISTRARS)
        for item in client_batch(registrar)
    }
    with app.app_context():
        stored_points = db.session.execute(
            select(RunMetric.metric_name, RunMetric.step).where(RunMetric.run_id == centralized)
        ).all()
        stored_clients = db.session.scalars(
            select(Client.client_identifier).where(Client.run_id == federated)
        ).all()
        external_ids = db.session.scalars(
            select(Run.external_id).where(Run.external_id.is_not(None))
        ).all()
        run_count = db.session.scalar(select(func.count()).select_from(Run))

    assert len(stored_points) == len(set(stored_points)), "a metric point was duplicated"
    assert set(stored_points) == expected_points
    assert len(stored_clients) == len(set(stored_clients)), "a client was duplicated"
    assert set(stored_clients) == expected_clients
    assert sorted(external_ids) == sorted(
        f"c{creator}-{number}"
        for creator in range(RUN_CREATORS)
        for number in range(RUNS_PER_CREATOR)
    )
    assert run_count == runs_before + RUN_CREATORS * RUNS_PER_CREATOR

    # What each batch reported adds up: the shared points were inserted exactly once.
    metric_counts = [body for _, body in answers[:METRIC_WRITERS]]
    assert sum(counts["inserted"] for counts in metric_counts) == len(expected_points)
    # The run's summary (kept at write time) saw every committed batch.
    listed = app.test_client().get("/api/runs/list", query_string={"sort_by": "id"}).get_json()
    by_id = {run["id"]: run for run in listed["runs"]}
    assert by_id[centralized]["metrics_count"] == len(expected_points)
    assert by_id[federated]["federated_info"]["num_clients"] == len(expected_clients)


def test_concurrent_writers_moving_runs_between_rollup_groups_keep_them_exact(app, create_run):
    """8 writers on runs of one mode and day: metric batches that raise and lower bests,
    status changes back and forth, creates and deletes; no error, no deadlock, and the
    roll-ups equal a rebuild from the runs afterwards."""
    from runs_service.services.rollups import rebuild_rollups
    from tests.helpers import ADMIN_AUTH

    runs = [create_run("centralized")["id"] for _ in range(16)]

    def writer(number: int) -> list:
        client = app.test_client()
        answers = []
        for step in range(12):
            run_id = runs[(number * 5 + step) % len(runs)]
            value = ((number * 7 + step * 3) % 10) / 10
            points = [{"metric_name": "val_acc", "metric_value": value, "step": step % 3}]
            response = client.post(
                f"/api/runs/{run_id}/metrics", json={"metrics": points}, headers=AUTH
            )
            answers.append((response.status_code, response.get_json()))
            status = ("completed", "in_progress", "failed")[(number + step) % 3]
            response = client.patch(f"/api/runs/{run_id}", json={"status": status}, headers=AUTH)
            answers.append((response.status_code, response.get_json()))
        created = client.post("/api/runs", json={"training_mode": "centralized"}, headers=AUTH)
        answers.append((created.status_code, None))
        response = client.delete(f"/api/runs/{created.get_json()['id']}", headers=ADMIN_AUTH)
        answers.append((response.status_code, None))
        return answers

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = [answer for result in pool.map(writer, range(8)) for answer in result]
    assert {status for status, _ in answers} <= {200, 201, 204}, answers
    with app.app_context():
        assert rebuild_rollups() == 0


def test_identical_batches_sent_at_once_store_each_point_once(app, create_run):
    run_id = create_run("centralized")["id"]
    batch = {"metrics": metric_batch(0)}

    def send() -> tuple[int, dict]:
        response = app.test_client().post(f"/api/runs/{run_id}/metrics", json=batch, headers=AUTH)
        return response.status_code, response.get_json()

    answers = run_at_once([send] * METRIC_WRITERS)
    assert {status for status, _ in answers} == {200}, answers
    assert sum(body["inserted"] for _, body in answers) == len(batch["metrics"])
    assert sum(body["unchanged"] for _, body in answers) == (METRIC_WRITERS - 1) * len(
        batch["metrics"]
    )
    with app.app_context():
        stored = db.session.scalar(
            select(func.count()).select_from(RunMetric).where(RunMetric.run_id == run_id)
        )
    assert stored == len(batch["metrics"])


def test_sqlite_write_requests_take_the_write_lock_first(app, auth, create_run, is_postgres):
    if is_postgres:
        pytest.skip("SQLite's transaction modes")
    run_id = create_run("centralized")["id"]
    executed: list[str] = []

    def trace(dbapi_connection, connection_record) -> None:
        dbapi_connection.set_trace_callback(executed.append)

    with app.app_context():
        engine = db.engine
        engine.dispose()  # new connections, each traced from its first statement
    event.listen(engine, "connect", trace)
    try:
        client = app.test_client()
        client.get(f"/api/runs/{run_id}")
        read_begins = [sql for sql in executed if sql.startswith("BEGIN")]
        executed.clear()
        client.post(
            f"/api/runs/{run_id}/metrics",
            json={"metrics": [{"metric_name": "val_acc", "metric_value": 0.9, "step": 0}]},
            headers=auth,
        )
        write_begins = [sql for sql in executed if sql.startswith("BEGIN")]
    finally:
        event.remove(engine, "connect", trace)
        engine.dispose()
    # Readers never queue behind a writer; a writer never has to upgrade a read lock.
    assert read_begins == ["BEGIN"]
    assert write_begins and write_begins[0] == "BEGIN IMMEDIATE"


def test_postgresql_reads_run_in_autocommit_and_writes_in_transactions(
    app, auth, create_run, is_postgres
):
    if not is_postgres:
        pytest.skip("PostgreSQL's connection modes")
    run_id = create_run("centralized")["id"]
    modes: list[tuple[str, bool]] = []

    def record(connection, cursor, statement, parameters, context, executemany) -> None:
        modes.append((statement.split()[0], connection.connection.driver_connection.autocommit))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        client = app.test_client()
        for _ in range(3):  # the same pooled connections serve reads and writes in turn
            assert client.get(f"/api/runs/{run_id}").status_code == 200
            reads = list(modes)
            modes.clear()
            answer = client.post(
                f"/api/runs/{run_id}/metrics",
                json={"metrics": [{"metric_name": "val_acc", "metric_value": 0.9, "step": 0}]},
                headers=auth,
            )
            assert answer.status_code == 200
            writes = list(modes)
            modes.clear()
            assert reads and all(autocommit for _, autocommit in reads), reads
            assert writes and not any(autocommit for _, autocommit in writes), writes
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_only_read_requests_start_deferred_transactions(app):
    with app.test_request_context(method="GET"):
        assert sqlite_begin_statement() == "BEGIN"
    for method in ("POST", "PATCH", "DELETE", "PUT"):
        with app.test_request_context(method=method):
            assert sqlite_begin_statement() == "BEGIN IMMEDIATE"
    # CLI commands and migrations write outside any request.
    with app.app_context():
        assert sqlite_begin_statement() == "BEGIN IMMEDIATE"


def _process_writer(database_url: str, results_dir: str, worker: int, queue) -> None:
    """One 'gunicorn worker': its own app and connections, writing as fast as it can."""
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "RUNS_API_TOKENS": (WRITER_TOKEN,),
            "RUNS_RESULTS_DIR": results_dir,
        }
    )

    def write(thread: int) -> list[tuple[int, str]]:
        client = app.test_client()
        answers = []
        for number in range(PROCESS_WRITES):
            created = client.post(
                "/api/runs",
                json={
                    "training_mode": "centralized",
                    "external_id": f"w{worker}-{thread}-{number}",
                },
                headers=AUTH,
            )
            answers.append((created.status_code, created.get_data(as_text=True)))
            if created.status_code != 201:
                continue
            logged = client.post(
                f"/api/runs/{created.get_json()['id']}/metrics",
                json={"metrics": metric_batch(number % METRIC_WRITERS)},
                headers=AUTH,
            )
            answers.append((logged.status_code, logged.get_data(as_text=True)))
        return answers

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = [answer for result in pool.map(write, range(2)) for answer in result]
    with app.app_context():
        db.engine.dispose()
    queue.put(answers)


def test_two_processes_writing_one_sqlite_file_never_see_database_is_locked(tmp_path):
    database_url = "sqlite:///" + str(tmp_path / "shared.db")
    setup: Flask = create_app({"SQLALCHEMY_DATABASE_URI": database_url})
    with setup.app_context():
        upgrade()
        db.engine.dispose()

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [
        context.Process(
            target=_process_writer, args=(database_url, str(tmp_path / "results"), worker, queue)
        )
        for worker in range(2)
    ]
    for worker in workers:
        worker.start()
    answers = [answer for _ in workers for answer in queue.get(timeout=120)]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0

    failures = [(status, body) for status, body in answers if status not in (200, 201)]
    assert not failures, failures[:3]
    assert not any("locked" in body for _, body in answers)
    with setup.app_context():
        runs = db.session.scalar(select(func.count()).select_from(Run))
        points = db.session.scalar(select(func.count()).select_from(RunMetric))
        db.engine.dispose()
    assert runs == 2 * 2 * PROCESS_WRITES
    assert points == runs * len(metric_batch(0))
