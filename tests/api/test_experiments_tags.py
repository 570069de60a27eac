"""Experiments and tags (SPEC §2), and the list's filters people expect (several statuses
and modes, text search): through the API, with statement counts that do not grow."""

from __future__ import annotations

import pytest

from runs_service.catalogue import MAX_SEARCH_LENGTH, MAX_TAG_LENGTH, MAX_TAGS_PER_RUN


def listed(client, **query) -> list[int]:
    response = client.get("/api/runs/list", query_string=query)
    assert response.status_code == 200, response.get_json()
    return sorted(run["id"] for run in response.get_json()["runs"])


# --- on the run record -------------------------------------------------------------------


def test_experiment_and_tags_are_stored_and_returned_sorted(client, create_run):
    run = create_run(experiment="resnet-ablation", tags=["non-iid", "baseline", "baseline"])
    assert run["experiment"] == "resnet-ablation"
    assert run["tags"] == ["baseline", "non-iid"]
    assert client.get(f"/api/runs/{run['id']}").get_json()["tags"] == ["baseline", "non-iid"]
    (summary,) = client.get("/api/runs/list").get_json()["runs"]
    assert summary["experiment"] == "resnet-ablation"
    assert summary["tags"] == ["baseline", "non-iid"]


def test_a_run_without_them_has_no_experiment_and_no_tags(client, create_run):
    run = create_run()
    assert run["experiment"] is None and run["tags"] == []
    (summary,) = client.get("/api/runs/list").get_json()["runs"]
    assert summary["experiment"] is None and summary["tags"] == []


def test_patch_replaces_the_tag_set_and_changes_the_experiment(
    client, auth, create_run, row_counts
):
    run = create_run(experiment="a", tags=["x", "y"])
    url = f"/api/runs/{run['id']}"
    changed = client.patch(url, json={"tags": ["y", "z"], "experiment": "b"}, headers=auth)
    assert changed.status_code == 200
    assert changed.get_json()["tags"] == ["y", "z"] and changed.get_json()["experiment"] == "b"
    untouched = client.patch(url, json={"run_description": "d"}, headers=auth).get_json()
    assert untouched["tags"] == ["y", "z"]
    cleared = client.patch(url, json={"tags": [], "experiment": None}, headers=auth).get_json()
    assert cleared["tags"] == [] and cleared["experiment"] is None
    assert row_counts()["run_tags"] == 0


def test_deleting_a_run_deletes_its_tags(client, admin_auth, create_run, row_counts):
    run = create_run(tags=["a", "b"])
    create_run(tags=["a"])
    assert client.delete(f"/api/runs/{run['id']}", headers=admin_auth).status_code == 204
    assert row_counts()["run_tags"] == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tags", ["has space"]),
        ("tags", ["comma,inside"]),
        ("tags", [""]),
        ("tags", ["x" * (MAX_TAG_LENGTH + 1)]),
        ("tags", ["-leading-dash"]),
        ("tags", [f"t{number}" for number in range(MAX_TAGS_PER_RUN + 1)]),
        ("tags", "baseline"),
        ("tags", [1]),
        ("tags", None),
        ("experiment", ""),
        ("experiment", "e" * 129),
        ("experiment", 7),
    ],
)
def test_bad_tags_and_experiments_are_422_naming_the_field(
    client, auth, create_run, row_counts, field, value
):
    run = create_run(tags=["kept"])
    before = row_counts()
    for method, url in (("post", "/api/runs"), ("patch", f"/api/runs/{run['id']}")):
        body = (
            {field: value} if method == "patch" else {"training_mode": "centralized", field: value}
        )
        response = getattr(client, method)(url, json=body, headers=auth)
        assert response.status_code == 422, (method, field, value)
        assert field in response.get_json()["message"]
    assert row_counts() == before


def test_the_longest_allowed_values_are_accepted(create_run):
    tags = [f"{number:0{MAX_TAG_LENGTH}d}" for number in range(MAX_TAGS_PER_RUN)]
    run = create_run(experiment="e" * 128, tags=tags)
    assert run["tags"] == sorted(tags)


# --- filters -----------------------------------------------------------------------------


@pytest.fixture
def tagged(create_run) -> dict[str, int]:
    return {
        "base": create_run(experiment="ablation", tags=["baseline"])["id"],
        "both": create_run(experiment="ablation", tags=["baseline", "non-iid"])["id"],
        "noniid": create_run("federated", experiment="fl", tags=["non-iid"], status="failed")["id"],
        "bare": create_run(status="completed")["id"],
    }


def test_list_filters_by_experiment_and_by_every_tag(client, tagged):
    assert listed(client, experiment="ablation") == sorted([tagged["base"], tagged["both"]])
    assert listed(client, experiment="none-such") == []
    assert listed(client, tag="baseline") == sorted([tagged["base"], tagged["both"]])
    assert listed(client, tag="baseline,non-iid") == [tagged["both"]]
    repeated = client.get("/api/runs/list?tag=non-iid&tag=baseline").get_json()["runs"]
    assert [run["id"] for run in repeated] == [tagged["both"]]
    assert listed(client, tag="non-iid", experiment="fl") == [tagged["noniid"]]
    assert listed(client, tag="missing") == []
    assert client.get("/api/runs/list", query_string={"tag": "baseline"}).get_json()["total"] == 2


def test_list_takes_several_statuses_and_modes(client, tagged):
    both = listed(client, status="failed,completed")
    assert both == sorted([tagged["noniid"], tagged["bare"]])
    assert listed(client, status=["failed", "completed"]) == both
    assert listed(client, status="in_progress") == sorted([tagged["base"], tagged["both"]])
    assert listed(client, training_mode="federated,centralized") == sorted(tagged.values())
    assert listed(client, training_mode="federated") == [tagged["noniid"]]


@pytest.mark.parametrize(
    "query",
    [
        "status=failed,unknown",
        "status=failed,",
        "training_mode=federated&training_mode=swarm",
        "tag=has%20space",
        "tag=" + ",".join(f"t{number}" for number in range(MAX_TAGS_PER_RUN + 1)),
        "q=" + "x" * (MAX_SEARCH_LENGTH + 1),
        "q=a%00b",
        "experiment=",
    ],
)
def test_bad_filter_values_are_422_naming_the_parameter(client, query):
    response = client.get(f"/api/runs/list?{query}")
    assert response.status_code == 422, response.get_json()
    assert query.split("=")[0] in response.get_json()["message"]


@pytest.mark.parametrize(
    "query",
    ["limit=5&limit=6", "sort_by=id&sort_by=status", "q=a&q=b", "experiment=a&experiment=b"],
)
def test_a_single_valued_parameter_given_twice_is_422_not_the_first(client, query):
    response = client.get(f"/api/runs/list?{query}")
    assert response.status_code == 422
    name = query.split("=")[0]
    assert f"Give {name} once" in response.get_json()["message"]


def test_q_searches_description_and_external_id_ignoring_case(client, create_run):
    resnet = create_run(run_description="ResNet50 baseline", external_id="wandb-AAA")["id"]
    mobile = create_run(run_description="MobileNet", external_id="mlflow-resnet-7")["id"]
    other = create_run(run_description="50% of the data_set")["id"]
    create_run()
    assert listed(client, q="resnet") == sorted([resnet, mobile])
    assert listed(client, q="RESNET50") == [resnet]
    assert listed(client, q="wandb-aaa") == [resnet]
    # LIKE's wildcards are searched for as text.
    assert listed(client, q="50%") == [other]
    assert listed(client, q="a_s") == [other]
    assert listed(client, q="%") == [other]
    assert listed(client, q="_") == [other]
    assert listed(client, q="") == sorted([resnet, mobile, other, resnet + 3])
    assert listed(client, q="nothing like it") == []


def test_analytics_filters_by_experiment_and_tag(client, tagged):
    def total(**query):
        response = client.get(
            "/api/runs/analytics/summary", query_string={"status": "all", **query}
        )
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    assert total()["total_runs"] == 4
    assert total(experiment="ablation")["total_runs"] == 2
    assert total(tag="non-iid")["total_runs"] == 2
    body = total(tag="baseline,non-iid")
    assert body["total_runs"] == 1
    assert body["status_counts"] == {"completed": 0, "failed": 0, "in_progress": 1}
    assert total(tag="non-iid", experiment="fl")["federated"]["count"] == 1
    bad = client.get("/api/runs/analytics/summary?tag=bad%20tag")
    assert bad.status_code == 422 and "tag" in bad.get_json()["message"]


def test_filters_keep_the_statement_count_fixed(app, client, create_run, count_statements):
    query = {
        "tag": "a,b",
        "experiment": "exp",
        "status": "in_progress,completed",
        "training_mode": "centralized,federated",
        "q": "run",
    }

    def add(count):
        for number in range(count):
            create_run(run_description=f"run {number}", experiment="exp", tags=["a", "b", "c"])

    add(2)
    with count_statements() as few:
        assert len(client.get("/api/runs/list", query_string=query).get_json()["runs"]) == 2
    with count_statements() as few_analytics:
        client.get("/api/runs/analytics/summary", query_string={"tag": "a,b", "experiment": "exp"})
    add(30)
    with count_statements() as many:
        assert len(client.get("/api/runs/list", query_string=query).get_json()["runs"]) == 32
    with count_statements() as many_analytics:
        client.get("/api/runs/analytics/summary", query_string={"tag": "a,b", "experiment": "exp"})
    # The page carries its total; analytics reads its three statements.
    assert few.count == many.count == 1, many.statements
    assert few_analytics.count == many_analytics.count == 3


def test_openapi_documents_the_new_fields_and_filters(client):
    spec = client.get("/api/openapi.json").get_json()
    parameters = {
        parameter["name"]: parameter
        for parameter in spec["paths"]["/api/runs/list"]["get"]["parameters"]
    }
    assert {"experiment", "tag", "q"} <= set(parameters)
    assert parameters["status"]["schema"]["type"] == "array"
    assert parameters["q"]["schema"]["maxLength"] == MAX_SEARCH_LENGTH
    assert parameters["tag"]["schema"]["maxItems"] == MAX_TAGS_PER_RUN
    analytics = spec["paths"]["/api/runs/analytics/summary"]["get"]["parameters"]
    assert {"experiment", "tag"} <= {parameter["name"] for parameter in analytics}
    run_create = spec["components"]["schemas"]["RunCreate"]["properties"]
    assert run_create["tags"]["maxItems"] == MAX_TAGS_PER_RUN
    assert run_create["experiment"]["maxLength"] == 128
