"""Bearer tokens, body caps and media types."""

from __future__ import annotations

import pytest

WRITES = [
    ("post", "/api/runs", {"training_mode": "centralized"}),
    ("patch", "/api/runs/1", {"status": "completed"}),
    ("delete", "/api/runs/1", None),
    ("post", "/api/runs/1/metrics", {"metrics": []}),
    ("post", "/api/runs/1/server-evaluations", {"evaluations": []}),
    ("post", "/api/runs/1/clients", {"clients": []}),
]


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_writes_without_a_token_are_401_with_www_authenticate(
    client, row_counts, method, path, body
):
    before = row_counts()
    response = getattr(client, method)(path, json=body)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in response.get_json()["message"]
    assert row_counts() == before


@pytest.mark.parametrize(
    "header", ["Bearer wrong-token", "Basic dGVzdDp0ZXN0", "Bearer ", "test-writer-token"]
)
def test_an_invalid_token_is_401(client, row_counts, header):
    before = row_counts()
    response = client.post(
        "/api/runs", json={"training_mode": "centralized"}, headers={"Authorization": header}
    )
    assert response.status_code == 401
    assert "Bearer" in response.headers["WWW-Authenticate"]
    assert row_counts() == before


def test_any_configured_token_is_accepted(app_with):
    app = app_with(RUNS_API_TOKENS=("first", "second"))
    client = app.test_client()
    for token in ("first", "second"):
        response = client.post(
            "/api/runs",
            json={"training_mode": "centralized"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 201


def test_with_no_token_configured_writes_are_403_saying_how_to_enable_them(app_with):
    app = app_with(RUNS_READ_TOKENS=(), RUNS_API_TOKENS=(), RUNS_ADMIN_TOKENS=())
    response = app.test_client().post(
        "/api/runs",
        json={"training_mode": "centralized"},
        headers={"Authorization": "Bearer anything"},
    )
    assert response.status_code == 403
    assert "RUNS_API_TOKENS" in response.get_json()["message"]


def test_reads_are_open_by_default_and_closed_when_configured(app_with, auth):
    open_app = app_with()
    assert open_app.test_client().get("/api/runs/1").status_code == 404
    closed = app_with(RUNS_REQUIRE_AUTH_FOR_READS=True).test_client()
    assert closed.get("/api/runs/1").status_code == 401
    assert closed.get("/api/runs/1", headers=auth).status_code == 404
    # Probes and the API description stay open for load balancers and consumers.
    assert closed.get("/healthz").status_code == 200
    assert closed.get("/api/openapi.json").status_code == 200


def test_body_over_the_cap_is_413_and_changes_nothing(app_with, auth, row_counts):
    app = app_with(MAX_CONTENT_LENGTH=1024)
    before = row_counts()
    response = app.test_client().post(
        "/api/runs",
        json={"training_mode": "centralized", "run_description": "x" * 2000},
        headers=auth,
    )
    assert response.status_code == 413
    assert response.is_json
    assert response.get_json()["code"] == 413
    assert row_counts() == before


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_non_json_bodies_are_415(client, auth, row_counts, content_type):
    before = row_counts()
    response = client.post(
        "/api/runs",
        data='{"training_mode": "centralized"}',
        content_type=content_type,
        headers=auth,
    )
    assert response.status_code == 415
    assert "application/json" in response.get_json()["message"]
    assert row_counts() == before


def test_json_body_without_a_content_type_is_415(client, auth):
    response = client.post("/api/runs", data=b'{"training_mode": "centralized"}', headers=auth)
    assert response.status_code == 415


def test_missing_body_is_422_naming_the_required_field(client, auth):
    response = client.post("/api/runs", headers=auth)
    assert response.status_code == 422
    assert "training_mode" in response.get_json()["message"]


def test_token_comparison_checks_every_configured_token():
    from runs_service.security import token_is_valid

    assert token_is_valid("b", ("a", "b"))
    assert not token_is_valid("c", ("a", "b"))
    assert not token_is_valid("", ("a",))
    assert not token_is_valid("ab", ("a", "b"))
