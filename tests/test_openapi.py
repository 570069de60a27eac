"""The OpenAPI document and the docs page."""

from __future__ import annotations

from http import HTTPStatus


def test_openapi_document_describes_every_route(app, client):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    documented = {
        (path, method.upper())
        for path, operations in spec["paths"].items()
        for method in operations
        if method != "parameters"
    }
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(("static", "swagger_ui", "api-docs", "web.")):
            continue
        path = rule.rule.replace("<run_id:run_id>", "{run_id}").replace("<run_id>", "{run_id}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, f"{method} {path} is not documented"


def test_writes_declare_the_bearer_token_and_their_errors(client):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method in ("post", "patch", "delete"):
                scope = "admin" if method == "delete" else "write"
                assert operation["security"] == [{"bearerAuth": [scope]}], (method, path)
                for status in (401, 403, 413, 415):
                    assert str(status) in operation["responses"], (method, path, status)


def test_run_id_bounds_are_documented(client):
    spec = client.get("/api/openapi.json").get_json()
    parameters = spec["paths"]["/api/runs/{run_id}"]["parameters"]
    (run_id,) = [p for p in parameters if p["name"] == "run_id"]
    assert run_id["schema"] == {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}


def test_batch_limits_are_documented(client):
    schemas = client.get("/api/openapi.json").get_json()["components"]["schemas"]
    assert schemas["MetricBatch"]["properties"]["metrics"]["maxItems"] == 10_000
    assert schemas["ServerEvaluationBatch"]["properties"]["evaluations"]["maxItems"] == 1_000


def test_docs_page_is_served_from_the_installed_package(client):
    page = client.get("/api/docs/")
    assert page.status_code == HTTPStatus.OK
    html = page.get_data(as_text=True)
    assert "/api/openapi.json" in html
    assert "https://" not in html and "http://cdn" not in html
    with client.get("/api/docs/swagger-ui-bundle.js") as bundle:
        assert bundle.status_code == HTTPStatus.OK
        assert len(bundle.data) > 100_000
