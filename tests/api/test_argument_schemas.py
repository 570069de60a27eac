"""Request parsing builds no schema per request: every route's argument schema is one
instance, made when its route was declared (webargs would copy a class's every field on
each request)."""

from __future__ import annotations

import marshmallow

from runs_service.api import blueprint


def test_routes_parse_requests_with_instances_made_once(client, auth, create_run, monkeypatch):
    run_id = create_run("centralized")["id"]
    point = {"metric_name": "val_loss", "metric_value": 0.5, "step": 1}

    def requests() -> list[int]:
        return [
            client.get("/api/runs/list?limit=5&sort_by=best_val_accuracy").status_code,
            client.get(f"/api/runs/{run_id}/metric-history?names=val_loss").status_code,
            client.post(
                f"/api/runs/{run_id}/metrics", json={"metrics": [point]}, headers=auth
            ).status_code,
            client.get("/api/runs/analytics/summary?status=all").status_code,
        ]

    # The first requests may build nested schemas, once per field, as marshmallow does.
    assert requests() == [200, 200, 200, 200]
    made = []
    original = marshmallow.Schema.__init__

    def counting_init(self, *args, **kwargs):
        made.append(type(self).__name__)
        original(self, *args, **kwargs)

    monkeypatch.setattr(marshmallow.Schema, "__init__", counting_init)
    assert requests() == [200, 200, 200, 200]
    assert made == []


def test_a_schema_class_given_to_arguments_becomes_one_instance():
    class Query(marshmallow.Schema):
        name = marshmallow.fields.String()

    blp = blueprint.Blueprint("probe", __name__)
    view = blp.arguments(Query, location="query")(lambda query: query)
    [parameters] = view._apidoc["arguments"]["parameters"]
    assert isinstance(parameters["schema"], Query)
