"""Run records through the HTTP API: create, read, update, delete."""

from __future__ import annotations

from sqlalchemy import text

from runs_service.extensions import db


def test_create_run_answers_201_with_location_and_record(client, auth):
    response = client.post(
        "/api/runs",
        json={
            "training_mode": "centralized",
            "start_time": "2025-11-04T12:00:01.123456",
            "run_description": "ResNet50 baseline",
            "config": {"learning_rate": 0.001, "batch_size": 32},
        },
        headers=auth,
    )
    assert response.status_code == 201
    run = response.get_json()
    assert response.headers["Location"].endswith(f"/api/runs/{run['id']}")
    # Naive inputs are taken as UTC and returned with an offset.
    assert run["start_time"] == "2025-11-04T12:00:01.123456+00:00"
    assert run["status"] == "in_progress"
    assert run["end_time"] is None
    assert run["duration_minutes"] is None
    assert run["config"] == {"learning_rate": 0.001, "batch_size": 32}
    assert client.get(f"/api/runs/{run['id']}").get_json() == run


def test_create_run_defaults_start_time_to_now(client, auth):
    response = client.post("/api/runs", json={"training_mode": "federated"}, headers=auth)
    assert response.status_code == 201
    assert response.get_json()["start_time"].endswith("+00:00")


def test_offset_timestamps_are_stored_as_utc(client, auth, create_run):
    run = create_run(start_time="2025-01-01T02:00:00+02:00", end_time="2025-01-01T01:30:00Z")
    assert run["start_time"] == "2025-01-01T00:00:00+00:00"
    assert run["duration_minutes"] == 90.0


def test_patch_updates_only_the_given_fields(client, auth, create_run):
    run = create_run(start_time="2025-01-01T00:00:00Z", run_description="before")
    response = client.patch(
        f"/api/runs/{run['id']}",
        json={"status": "completed", "end_time": "2025-01-01T00:45:30Z"},
        headers=auth,
    )
    assert response.status_code == 200
    updated = response.get_json()
    assert updated["status"] == "completed"
    assert updated["duration_minutes"] == 45.5
    assert updated["run_description"] == "before"


def test_patch_rejects_end_before_start_and_changes_nothing(client, auth, create_run):
    run = create_run(start_time="2025-01-01T00:00:00Z")
    response = client.patch(
        f"/api/runs/{run['id']}", json={"end_time": "2024-12-31T00:00:00Z"}, headers=auth
    )
    assert response.status_code == 422
    assert "end_time" in response.get_json()["message"]
    assert client.get(f"/api/runs/{run['id']}").get_json()["end_time"] is None


def test_create_rejects_end_before_start(client, auth, row_counts):
    before = row_counts()
    response = client.post(
        "/api/runs",
        json={
            "training_mode": "centralized",
            "start_time": "2025-01-02T00:00:00Z",
            "end_time": "2025-01-01T00:00:00Z",
        },
        headers=auth,
    )
    assert response.status_code == 422
    assert "end_time" in response.get_json()["message"]
    assert row_counts() == before


def test_patch_cannot_change_training_mode(client, auth, create_run):
    run = create_run()
    response = client.patch(
        f"/api/runs/{run['id']}", json={"training_mode": "federated"}, headers=auth
    )
    assert response.status_code == 422
    assert "training_mode" in response.get_json()["message"]


def test_invalid_run_fields_are_named(client, auth, row_counts):
    before = row_counts()
    response = client.post(
        "/api/runs",
        json={"training_mode": "swarm", "status": "done", "run_description": "x" * 1025},
        headers=auth,
    )
    assert response.status_code == 422
    errors = response.get_json()["errors"]["json"]
    assert set(errors) == {"training_mode", "status", "run_description"}
    assert row_counts() == before


def test_unknown_run_returns_404_json(client, auth, admin_auth):
    for method in ("get", "patch", "delete"):
        headers = admin_auth if method == "delete" else auth
        response = getattr(client, method)("/api/runs/424242", json={}, headers=headers)
        assert response.status_code == 404
        assert response.get_json() == {
            "code": 404,
            "status": "Not Found",
            "message": "Run 424242 not found",
        }


def test_out_of_range_run_ids_are_404_not_500(client):
    for run_id in ("0", str(2**31), str(2**63), "9" * 40):
        response = client.get(f"/api/runs/{run_id}")
        assert response.status_code == 404
        assert response.is_json


def test_out_of_range_run_ids_are_the_same_404_on_every_route_and_method(client, admin_auth):
    expected = client.get("/api/runs/2147483648").get_json()
    assert expected["code"] == 404
    routes = [
        "/api/runs/{id}",
        "/api/runs/{id}/metrics",
        "/api/runs/{id}/server-evaluations",
        "/api/runs/{id}/server-evaluation",
        "/api/runs/{id}/clients",
        "/api/runs/{id}/federated-rounds",
        "/api/runs/{id}/download/csv",
        "/api/runs/backfill/{id}/server-evaluations",
    ]
    for run_id in ("0", "007", str(2**31), "18446744073709551616", "9" * 40):
        for route in routes:
            for method in ("get", "post", "patch", "delete", "put"):
                response = getattr(client, method)(
                    route.format(id=run_id), json={}, headers=admin_auth
                )
                assert response.status_code == 404, (method, route, run_id)
                assert response.get_json() == expected, (method, route, run_id)
                assert "Allow" not in response.headers


def test_delete_removes_the_run_and_everything_it_owns(
    client, auth, admin_auth, create_run, row_counts
):
    run = create_run("federated")
    other = create_run("federated")
    for run_id in (run["id"], other["id"]):
        client.post(
            f"/api/runs/{run_id}/clients",
            json={"clients": [{"client_identifier": "client_0"}]},
            headers=auth,
        )
        client.post(
            f"/api/runs/{run_id}/metrics",
            json={
                "metrics": [
                    {"metric_name": "val_loss", "metric_value": 0.4, "step": 0},
                    {
                        "metric_name": "train_loss",
                        "metric_value": 0.5,
                        "step": 0,
                        "client_identifier": "client_0",
                        "round_number": 1,
                    },
                ]
            },
            headers=auth,
        )
        client.post(
            f"/api/runs/{run_id}/server-evaluations",
            json={"evaluations": [{"round_number": 0, "loss": 0.7}]},
            headers=auth,
        )
    assert row_counts() == {
        "runs": 2,
        "clients": 2,
        "server_evaluations": 2,
        "run_metrics": 4,
        "run_summaries": 2,
        # val_loss, client_0's train_loss and server_loss of each run.
        "metric_summaries": 6,
        # One 32-step block of each metric-point series (val_loss, client_0's train_loss).
        "metric_blocks": 4,
        "run_tags": 0,
        # Two runs in progress, of the same mode and day, in two roll-up shards.
        "analytics_rollups": 2,
    }

    response = client.delete(f"/api/runs/{run['id']}", headers=admin_auth)
    assert response.status_code == 204
    assert response.data == b""
    assert client.get(f"/api/runs/{run['id']}").status_code == 404
    assert row_counts() == {
        "runs": 1,
        "clients": 1,
        "server_evaluations": 1,
        "run_metrics": 2,
        "run_summaries": 1,
        "metric_summaries": 3,
        "metric_blocks": 2,
        "run_tags": 0,
        "analytics_rollups": 1,
    }


def test_database_rejects_an_invalid_enum_value(app):
    """The CHECK constraints back the schema's validation."""
    import pytest
    from sqlalchemy.exc import IntegrityError

    with app.app_context(), pytest.raises(IntegrityError):
        db.session.execute(
            text(
                "INSERT INTO runs (training_mode, status, start_time) "
                "VALUES ('swarm', 'completed', CURRENT_TIMESTAMP)"
            )
        )
    with app.app_context():
        db.session.rollback()
