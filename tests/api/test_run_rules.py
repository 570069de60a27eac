"""Run rules (SPEC §4.2): idempotent create by external_id, status and end_time agree,
replace semantics of server-evaluation rounds and of config."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from flask import current_app
from sqlalchemy import inspect, text

from runs_service.extensions import db
from runs_service.services import runs as run_service
from tests.helpers import AUTH, create_postgres_database, make_app


def iso(value: str) -> datetime:
    return datetime.fromisoformat(value)


# --- idempotent create -------------------------------------------------------------------


def test_create_with_an_existing_external_id_returns_that_run_with_200(
    client, auth, create_run, row_counts
):
    run = create_run("federated", external_id="wandb-abc123", run_description="first")
    before = row_counts()
    again = client.post(
        "/api/runs",
        json={"training_mode": "federated", "external_id": "wandb-abc123", "run_description": "x"},
        headers=auth,
    )
    assert again.status_code == 200
    assert again.get_json() == run
    assert again.headers["Location"].endswith(f"/api/runs/{run['id']}")
    assert row_counts() == before


def test_create_with_an_existing_external_id_and_another_mode_is_409(
    client, auth, create_run, row_counts
):
    run = create_run("federated", external_id="mlflow-7")
    before = row_counts()
    response = client.post(
        "/api/runs", json={"training_mode": "centralized", "external_id": "mlflow-7"}, headers=auth
    )
    assert response.status_code == 409
    message = response.get_json()["message"]
    assert "mlflow-7" in message and f"run {run['id']}" in message and "federated" in message
    assert row_counts() == before


def test_runs_without_external_id_never_collide(create_run):
    assert create_run()["id"] != create_run()["id"]


def test_a_create_racing_another_between_check_and_insert_answers_the_existing_run(
    client, auth, create_run, monkeypatch, row_counts
):
    """The check finds nothing, the insert hits the unique index: re-read, answer 200."""
    run = create_run("centralized", external_id="raced")
    real = run_service.run_by_external_id
    calls = []

    def blind_first_time(external_id):
        calls.append(external_id)
        return None if len(calls) == 1 else real(external_id)

    monkeypatch.setattr(run_service, "run_by_external_id", blind_first_time)
    before = row_counts()
    response = client.post(
        "/api/runs", json={"training_mode": "centralized", "external_id": "raced"}, headers=auth
    )
    assert len(calls) == 2
    assert response.status_code == 200
    assert response.get_json()["id"] == run["id"]
    assert row_counts() == before


def test_simultaneous_creates_with_one_external_id_make_one_run(app, row_counts):
    writers = 8
    barrier = threading.Barrier(writers)
    body = {"training_mode": "federated", "external_id": "client-generated-uuid"}

    def create():
        client = app.test_client()
        barrier.wait()
        return client.post("/api/runs", json=body, headers=AUTH)

    with ThreadPoolExecutor(max_workers=writers) as pool:
        responses = list(pool.map(lambda _: create(), range(writers)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * (writers - 1) + [201]
    assert len({response.get_json()["id"] for response in responses}) == 1
    assert row_counts()["runs"] == 1


def test_patch_to_an_external_id_another_run_has_is_409(client, auth, create_run):
    first = create_run(external_id="taken")
    second = create_run(external_id="mine")
    response = client.patch(
        f"/api/runs/{second['id']}", json={"external_id": "taken"}, headers=auth
    )
    assert response.status_code == 409
    assert f"run {first['id']}" in response.get_json()["message"]
    assert client.get(f"/api/runs/{second['id']}").get_json()["external_id"] == "mine"
    # Setting a run's own id again is fine.
    same = client.patch(f"/api/runs/{second['id']}", json={"external_id": "mine"}, headers=auth)
    assert same.status_code == 200


def test_openapi_states_that_create_may_answer_200_or_409(client):
    operation = client.get("/api/openapi.json").get_json()["paths"]["/api/runs"]["post"]
    assert {"200", "201", "409"} <= set(operation["responses"])
    assert "Location" in operation["responses"]["200"]["headers"]


# --- status and end_time -----------------------------------------------------------------


@pytest.mark.parametrize("status", ["completed", "failed"])
def test_finishing_without_end_time_ends_the_run_now(client, auth, create_run, status):
    run = create_run(start_time="2025-01-01T00:00:00Z")
    before = datetime.now(UTC)
    response = client.patch(f"/api/runs/{run['id']}", json={"status": status}, headers=auth)
    after = datetime.now(UTC)
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == status
    assert before - timedelta(seconds=1) <= iso(body["end_time"]) <= after
    assert body["duration_minutes"] is not None


def test_finishing_keeps_a_stored_or_given_end_time(client, auth, create_run):
    run = create_run(start_time="2025-01-01T00:00:00Z", end_time="2025-01-01T01:00:00Z")
    kept = client.patch(f"/api/runs/{run['id']}", json={"status": "completed"}, headers=auth)
    assert kept.get_json()["end_time"] == "2025-01-01T01:00:00+00:00"
    other = create_run(start_time="2025-01-01T00:00:00Z")
    given = client.patch(
        f"/api/runs/{other['id']}",
        json={"status": "failed", "end_time": "2025-01-01T00:30:00Z"},
        headers=auth,
    )
    assert given.get_json()["end_time"] == "2025-01-01T00:30:00+00:00"


def test_creating_a_finished_run_without_end_time_ends_it_now(create_run):
    before = datetime.now(UTC)
    run = create_run(status="completed", start_time="2025-01-01T00:00:00Z")
    assert before - timedelta(seconds=1) <= iso(run["end_time"]) <= datetime.now(UTC)
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    started_later = create_run(status="failed", start_time=future)
    assert started_later["end_time"] == started_later["start_time"]


def test_back_to_in_progress_clears_end_time(client, auth, create_run):
    run = create_run(status="completed", end_time=datetime.now(UTC).isoformat())
    response = client.patch(f"/api/runs/{run['id']}", json={"status": "in_progress"}, headers=auth)
    assert response.status_code == 200
    assert response.get_json()["end_time"] is None
    assert response.get_json()["duration_minutes"] is None


def test_in_progress_with_an_end_time_in_the_same_patch_is_422(client, auth, create_run):
    run = create_run(status="completed", start_time="2025-01-01T00:00:00Z")
    response = client.patch(
        f"/api/runs/{run['id']}",
        json={"status": "in_progress", "end_time": "2025-01-02T00:00:00Z"},
        headers=auth,
    )
    assert response.status_code == 422
    assert "end_time" in response.get_json()["message"]
    assert client.get(f"/api/runs/{run['id']}").get_json()["status"] == "completed"


def test_end_time_before_start_time_stays_422(client, auth, create_run):
    run = create_run(start_time="2025-01-01T00:00:00Z")
    response = client.patch(
        f"/api/runs/{run['id']}",
        json={"status": "completed", "end_time": "2024-12-31T23:59:59Z"},
        headers=auth,
    )
    assert response.status_code == 422
    assert client.get(f"/api/runs/{run['id']}").get_json()["end_time"] is None


# --- replace semantics -------------------------------------------------------------------


def test_reposting_a_round_replaces_every_field(client, auth, create_run):
    run = create_run("federated")
    url = f"/api/runs/{run['id']}/server-evaluations"
    first = {"round_number": 1, "loss": 0.4, "accuracy": 0.8, "additional_metrics": {"x": 1}}
    client.post(url, json={"evaluations": [first]}, headers=auth)
    client.post(url, json={"evaluations": [{"round_number": 1, "accuracy": 0.9}]}, headers=auth)
    (evaluation,) = client.get(f"/api/runs/{run['id']}/server-evaluation").get_json()["evaluations"]
    assert evaluation["accuracy"] == 0.9
    assert evaluation["loss"] is None
    assert "additional_metrics" not in evaluation


def test_patch_config_replaces_the_whole_object(client, auth, create_run):
    run = create_run(config={"learning_rate": 0.001, "batch_size": 32})
    response = client.patch(f"/api/runs/{run['id']}", json={"config": {"epochs": 10}}, headers=auth)
    assert response.get_json()["config"] == {"epochs": 10}


# --- migration 0005 ----------------------------------------------------------------------


@pytest.fixture
def fresh_database(database_url, tmp_path, is_postgres):
    if is_postgres:
        import os

        url, drop = create_postgres_database(os.environ["RUNS_TEST_DATABASE_URL"])
    else:
        url, drop = "sqlite:///" + str(tmp_path / "fresh.db"), (lambda: None)
    app = make_app(url, tmp_path)
    try:
        yield app
    finally:
        with app.app_context():
            db.engine.dispose()
        drop()


def alembic_config():
    return current_app.extensions["migrate"].migrate.get_config()


def insert_run(connection, external_id):
    connection.execute(
        text(
            "INSERT INTO runs (training_mode, status, start_time, external_id) "
            "VALUES ('centralized', 'completed', CURRENT_TIMESTAMP, :external_id)"
        ),
        {"external_id": external_id},
    )


def test_migration_refuses_duplicated_external_ids_naming_them(fresh_database):
    with fresh_database.app_context():
        command.upgrade(alembic_config(), "0004")
        with db.engine.begin() as connection:
            for external_id in ("dup-a", "dup-a", "dup-b", "dup-b", "dup-b", "single", None, None):
                insert_run(connection, external_id)
        with pytest.raises(RuntimeError) as refused:
            command.upgrade(alembic_config(), "0005")
        message = str(refused.value)
        assert "'dup-a' (runs 1, 2)" in message and "'dup-b' (runs 3, 4, 5)" in message
        assert "single" not in message and "flask db upgrade" in message
        with db.engine.connect() as connection:
            version = connection.execute(text("SELECT version_num FROM alembic_version"))
            assert version.scalar_one() == "0004"
        indexes = {index["name"] for index in inspect(db.engine).get_indexes("runs")}
        assert "ix_runs_external_id" not in indexes

        # Once the duplicates are resolved, the upgrade goes through.
        with db.engine.begin() as connection:
            connection.execute(text("UPDATE runs SET external_id = NULL WHERE id IN (2, 4, 5)"))
        command.upgrade(alembic_config(), "0005")
        indexes = {index["name"] for index in inspect(db.engine).get_indexes("runs")}
        assert "ix_runs_external_id" in indexes
