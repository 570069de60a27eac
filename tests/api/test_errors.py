"""Every error is the one JSON shape, never HTML, never a stack trace."""

from __future__ import annotations

from sqlalchemy.exc import OperationalError

ERROR_KEYS = {"code", "status", "message"}


def test_unknown_route_is_json_404(client):
    response = client.get("/no/such/route")
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert ERROR_KEYS <= set(body) <= ERROR_KEYS | {"errors"}
    assert body["code"] == 404 and body["status"] == "Not Found"


def test_wrong_method_is_json_405_with_allow(client, auth):
    response = client.put("/api/runs/1", json={}, headers=auth)
    assert response.status_code == 405
    assert response.mimetype == "application/json"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {
        "GET",
        "PATCH",
        "DELETE",
    }
    assert response.get_json()["status"] == "Method Not Allowed"


def test_routing_errors_come_before_authentication(client):
    assert client.put("/api/runs/1", json={}).status_code == 405
    assert client.post("/api/nothing-here", json={}).status_code == 404


def test_unhandled_error_is_json_500_without_a_trace(app, client):
    def explode():
        raise RuntimeError("secret internals")

    app.add_url_rule("/explode", "explode", explode)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.get("/explode")
    assert response.status_code == 500
    body = response.get_json()
    assert body["code"] == 500
    assert "secret internals" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


def test_database_error_is_503_with_retry_after(app, client):
    def unavailable():
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    app.add_url_rule("/unavailable", "unavailable", unavailable)
    response = client.get("/unavailable")
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert response.get_json()["status"] == "Service Unavailable"
    assert "connection refused" not in response.get_data(as_text=True)


def test_validation_errors_carry_field_details(client, auth):
    response = client.post("/api/runs", json={"training_mode": 3}, headers=auth)
    body = response.get_json()
    assert response.status_code == 422
    assert body["errors"]["json"]["training_mode"]
    assert body["message"].startswith("Invalid input: json.training_mode")
