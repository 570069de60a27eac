"""Token scopes: read tokens read, write tokens write (but never delete), admin tokens do all."""

from __future__ import annotations

import pytest

from tests.helpers import ADMIN_AUTH, AUTH, READER_AUTH

RESULTS = {"evaluate_metrics_serverapp": {"1": {"server_accuracy": 0.5}}}
# Every write route, with a body that succeeds, and the scope it needs.
WRITES = [
    ("post", "/api/runs", {"training_mode": "federated"}, "write", 201),
    ("patch", "/api/runs/{id}", {"status": "completed"}, "write", 200),
    (
        "post",
        "/api/runs/{id}/metrics",
        {"metrics": [{"metric_name": "val_acc", "metric_value": 0.5, "step": 0}]},
        "write",
        200,
    ),
    (
        "post",
        "/api/runs/{id}/server-evaluations",
        {"evaluations": [{"round_number": 1, "accuracy": 0.5}]},
        "write",
        200,
    ),
    ("post", "/api/runs/{id}/clients", {"clients": [{"client_identifier": "c1"}]}, "write", 200),
    ("post", "/api/runs/backfill/{id}/server-evaluations", RESULTS, "write", 200),
    ("delete", "/api/runs/{id}", None, "admin", 204),
]
TOKENS = {"read": READER_AUTH, "write": AUTH, "admin": ADMIN_AUTH}
RANK = {"read": 1, "write": 2, "admin": 3}
NEEDS = {
    "write": "needs a write token (RUNS_API_TOKENS or RUNS_ADMIN_TOKENS)",
    "admin": "needs an admin token (RUNS_ADMIN_TOKENS)",
}


def send(client, method, path, body, run_id, headers):
    return getattr(client, method)(path.format(id=run_id), json=body, headers=headers)


@pytest.mark.parametrize("held", ["read", "write", "admin"])
@pytest.mark.parametrize(("method", "path", "body", "needed", "success"), WRITES)
def test_every_write_route_checks_the_scope_of_the_token(
    client, create_run, row_counts, held, method, path, body, needed, success
):
    run_id = create_run("federated")["id"]
    before = row_counts()
    response = send(client, method, path, body, run_id, TOKENS[held])
    if RANK[held] >= RANK[needed]:
        assert response.status_code == success, response.get_json()
    else:
        assert response.status_code == 403
        message = response.get_json()["message"]
        assert NEEDS[needed] in message
        assert f"only {held} scope" in message
        assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
        assert row_counts() == before


@pytest.mark.parametrize(("method", "path", "body", "needed", "success"), WRITES)
def test_every_write_route_refuses_a_missing_or_unknown_token(
    client, create_run, row_counts, method, path, body, needed, success
):
    run_id = create_run("federated")["id"]
    before = row_counts()
    for headers in ({}, {"Authorization": "Bearer not-a-configured-token"}):
        response = send(client, method, path, body, run_id, headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert row_counts() == before


def test_a_training_jobs_token_can_never_delete(client, create_run):
    run = create_run("centralized")
    response = client.delete(f"/api/runs/{run['id']}", headers=AUTH)
    assert response.status_code == 403
    assert response.get_json() == {
        "code": 403,
        "status": "Forbidden",
        "message": "This operation needs an admin token (RUNS_ADMIN_TOKENS); the token sent "
        "has only write scope.",
    }
    assert client.get(f"/api/runs/{run['id']}").status_code == 200


def test_delete_without_admin_tokens_configured_says_how_to_enable_it(app_with, create_run):
    app = app_with(RUNS_ADMIN_TOKENS=())
    client = app.test_client()
    run_id = client.post("/api/runs", json={"training_mode": "centralized"}, headers=AUTH)
    response = client.delete(f"/api/runs/{run_id.get_json()['id']}", headers=AUTH)
    assert response.status_code == 403
    assert "set RUNS_ADMIN_TOKENS" in response.get_json()["message"]


def test_a_token_in_several_lists_has_the_widest_scope(app_with):
    app = app_with(RUNS_READ_TOKENS=("shared",), RUNS_ADMIN_TOKENS=("shared",))
    client = app.test_client()
    headers = {"Authorization": "Bearer shared"}
    created = client.post("/api/runs", json={"training_mode": "centralized"}, headers=headers)
    assert created.status_code == 201
    assert (
        client.delete(f"/api/runs/{created.get_json()['id']}", headers=headers).status_code == 204
    )


@pytest.mark.parametrize("held", ["read", "write", "admin"])
def test_with_reads_closed_every_scope_reads(app_with, held):
    client = app_with(RUNS_REQUIRE_AUTH_FOR_READS=True).test_client()
    assert client.get("/api/runs/list").status_code == 401
    assert client.get("/api/runs/list", headers=TOKENS[held]).status_code == 200


def test_reads_closed_with_only_write_tokens_configured_accepts_them(app_with):
    client = app_with(
        RUNS_REQUIRE_AUTH_FOR_READS=True, RUNS_READ_TOKENS=(), RUNS_ADMIN_TOKENS=()
    ).test_client()
    assert client.get("/api/runs/list", headers=AUTH).status_code == 200
    assert client.get("/api/runs/list", headers=READER_AUTH).status_code == 401


def test_reads_closed_with_no_token_at_all_is_403_saying_how_to_enable_them(app_with):
    client = app_with(
        RUNS_REQUIRE_AUTH_FOR_READS=True,
        RUNS_READ_TOKENS=(),
        RUNS_API_TOKENS=(),
        RUNS_ADMIN_TOKENS=(),
    ).test_client()
    response = client.get("/api/runs/list")
    assert response.status_code == 403
    assert "RUNS_READ_TOKENS" in response.get_json()["message"]


def test_openapi_names_the_scope_of_every_write(client):
    spec = client.get("/api/openapi.json").get_json()
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    for name in ("RUNS_READ_TOKENS", "RUNS_API_TOKENS", "RUNS_ADMIN_TOKENS"):
        assert name in scheme["description"]
    for method, path, _, needed, _ in WRITES:
        operation = spec["paths"][path.replace("{id}", "{run_id}")][method]
        assert operation["security"] == [{"bearerAuth": [needed]}], (method, path)
