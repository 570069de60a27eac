"""Conditional reads: every JSON GET answer has an ETag; a matching If-None-Match is 304."""

from __future__ import annotations

import pytest

from tests.helpers import log_evaluations, log_metrics, points

JSON_READS = [
    "/api/runs/list",
    "/api/runs/analytics/summary",
    "/api/runs/{id}",
    "/api/runs/{id}/metrics",
    "/api/runs/{id}/federated-rounds",
    "/api/runs/{id}/server-evaluation",
]


@pytest.fixture
def run_id(client, auth, create_run) -> int:
    run = create_run("federated", run_description="polled")
    log_evaluations(client, auth, run["id"], [{"round_number": 1, "accuracy": 0.8}])
    return run["id"]


@pytest.mark.parametrize("path", JSON_READS)
def test_every_json_read_has_an_etag_and_a_matching_one_is_304(client, run_id, path):
    url = path.format(id=run_id)
    first = client.get(url)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')

    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == etag

    # nginx's gzip turns the ETag weak; the weak form still matches (RFC 9110).
    weak = client.get(url, headers={"If-None-Match": f"W/{etag}"})
    assert weak.status_code == 304
    # One of several, and the wildcard, match too; another ETag does not.
    assert client.get(url, headers={"If-None-Match": f'"other", {etag}'}).status_code == 304
    assert client.get(url, headers={"If-None-Match": "*"}).status_code == 304
    stale = client.get(url, headers={"If-None-Match": '"not-this-one"'})
    assert stale.status_code == 200
    assert stale.get_json() == first.get_json()


def test_same_answer_same_etag(client, run_id):
    assert (
        client.get(f"/api/runs/{run_id}").headers["ETag"]
        == (client.get(f"/api/runs/{run_id}").headers["ETag"])
    )


def test_head_carries_the_etag_of_get(client, run_id):
    get = client.get(f"/api/runs/{run_id}/metrics")
    head = client.head(f"/api/runs/{run_id}/metrics")
    assert head.status_code == 200
    assert head.headers["ETag"] == get.headers["ETag"]
    assert (
        client.head(
            f"/api/runs/{run_id}/metrics", headers={"If-None-Match": get.headers["ETag"]}
        ).status_code
        == 304
    )


def test_a_write_that_changes_the_answer_changes_the_etag(client, auth, create_run):
    run = create_run("centralized")
    run_url = f"/api/runs/{run['id']}"
    metrics_url = f"{run_url}/metrics"
    before = {
        url: client.get(url).headers["ETag"] for url in (run_url, metrics_url, "/api/runs/list")
    }

    log_metrics(client, auth, run["id"], points(0, val_acc=0.75))
    after_metrics = client.get(metrics_url, headers={"If-None-Match": before[metrics_url]})
    assert after_metrics.status_code == 200
    assert after_metrics.headers["ETag"] != before[metrics_url]
    assert after_metrics.get_json()["total_epochs"] == 1

    client.patch(run_url, json={"run_description": "renamed"}, headers=auth)
    after_run = client.get(run_url, headers={"If-None-Match": before[run_url]})
    assert after_run.status_code == 200
    assert after_run.get_json()["run_description"] == "renamed"
    listed = client.get("/api/runs/list", headers={"If-None-Match": before["/api/runs/list"]})
    assert listed.status_code == 200


def test_a_write_that_changes_nothing_keeps_the_etag(client, auth, create_run):
    run = create_run("centralized")
    log_metrics(client, auth, run["id"], points(0, val_acc=0.75))
    url = f"/api/runs/{run['id']}/metrics"
    etag = client.get(url).headers["ETag"]
    log_metrics(client, auth, run["id"], points(0, val_acc=0.75))  # re-sent: unchanged
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304


def test_errors_writes_and_downloads_carry_no_etag(client, auth, create_run):
    run = create_run("centralized")
    log_metrics(client, auth, run["id"], points(0, val_acc=0.75))
    assert "ETag" not in client.get("/api/runs/424242").headers
    assert (
        "ETag"
        not in client.patch(
            f"/api/runs/{run['id']}", json={"run_description": "x"}, headers=auth
        ).headers
    )
    # Downloads are streamed while generated; hashing them would buffer the whole file.
    download = client.get(f"/api/runs/{run['id']}/download/json")
    assert download.status_code == 200
    assert "ETag" not in download.headers


def test_openapi_documents_etag_and_304_on_json_reads(client):
    spec = client.get("/api/openapi.json").get_json()
    for path in JSON_READS:
        operation = spec["paths"][path.replace("{id}", "{run_id}")]["get"]
        assert "ETag" in operation["responses"]["200"]["headers"], path
        assert "304" in operation["responses"], path
    download = spec["paths"]["/api/runs/{run_id}/download/json"]["get"]
    assert "304" not in download["responses"]
