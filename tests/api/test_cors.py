"""CORS: browsers on the origins in RUNS_CORS_ORIGINS may call the API; others get nothing."""

from __future__ import annotations

import pytest

FRONTEND = "http://localhost:3000"
OTHER_FRONTEND = "https://runs.example.org"
STRANGER = "https://evil.example.com"


@pytest.fixture
def cors_client(app_with):
    return app_with(RUNS_CORS_ORIGINS=(FRONTEND, OTHER_FRONTEND)).test_client()


def preflight(client, path: str, origin: str, method: str = "POST", headers: str = ""):
    request_headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        request_headers["Access-Control-Request-Headers"] = headers
    return client.options(path, headers=request_headers)


@pytest.mark.parametrize("origin", [FRONTEND, OTHER_FRONTEND])
def test_preflight_from_a_listed_origin_allows_the_write_with_a_token(cors_client, origin):
    response = preflight(cors_client, "/api/runs", origin, "POST", "authorization, content-type")
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == origin
    allowed_headers = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed_headers and "content-type" in allowed_headers
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Origin" in response.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_preflight_of_a_delete_and_a_patch_is_answered(cors_client):
    for method, path in (("DELETE", "/api/runs/1"), ("PATCH", "/api/runs/1")):
        response = preflight(cors_client, path, FRONTEND, method, "authorization")
        assert response.status_code == 200
        assert method in response.headers["Access-Control-Allow-Methods"]


def test_preflight_needs_no_token_even_when_reads_do(app_with):
    client = app_with(RUNS_CORS_ORIGINS=(FRONTEND,), RUNS_REQUIRE_AUTH_FOR_READS=True).test_client()
    response = preflight(client, "/api/runs/list", FRONTEND, "GET", "authorization")
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND
    # The request itself still needs its token.
    response = client.get("/api/runs/list", headers={"Origin": FRONTEND})
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND


def test_simple_read_from_a_listed_origin_exposes_etag(cors_client):
    response = cors_client.get("/api/runs/list", headers={"Origin": FRONTEND})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND
    exposed = {
        name.strip().lower()
        for name in response.headers["Access-Control-Expose-Headers"].split(",")
    }
    assert {"location", "content-disposition", "etag"} <= exposed


def test_create_from_a_listed_origin_exposes_location(cors_client, auth):
    response = cors_client.post(
        "/api/runs", json={"training_mode": "centralized"}, headers={"Origin": FRONTEND, **auth}
    )
    assert response.status_code == 201
    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert "Location" in response.headers["Access-Control-Expose-Headers"]


def test_errors_carry_cors_headers_so_the_page_can_read_them(cors_client):
    response = cors_client.get("/api/runs/424242", headers={"Origin": FRONTEND})
    assert response.status_code == 404
    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_unlisted_origin_gets_no_cors_headers(cors_client, method):
    response = preflight(cors_client, "/api/runs/list", STRANGER, method, "authorization")
    assert not [name for name in response.headers.keys() if name.startswith("Access-Control")]
    response = cors_client.get("/api/runs/list", headers={"Origin": STRANGER})
    assert response.status_code == 200
    assert not [name for name in response.headers.keys() if name.startswith("Access-Control")]


def test_a_request_without_origin_gets_no_cors_headers(cors_client):
    response = cors_client.get("/api/runs/list")
    assert not [name for name in response.headers.keys() if name.startswith("Access-Control")]


def test_by_default_no_origin_gets_cors_headers(client):
    response = preflight(client, "/api/runs", FRONTEND, "POST", "authorization")
    assert not [name for name in response.headers.keys() if name.startswith("Access-Control")]
    response = client.get("/api/runs/list", headers={"Origin": FRONTEND})
    assert not [name for name in response.headers.keys() if name.startswith("Access-Control")]


def test_preflight_allows_the_read_your_writes_header(cors_client):
    response = preflight(cors_client, "/api/runs/1", FRONTEND, "GET", "x-runs-read-primary")

    assert response.status_code == 200
    assert "x-runs-read-primary" in response.headers["Access-Control-Allow-Headers"].lower()
