"""The dashboard's pages through the test client: HTML, CSP, escaping, tokens, 404s."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from runs_service.web.views import CONTENT_SECURITY_POLICY, SERVER_ROUNDS_SHOWN
from tests.helpers import AUTH, log_evaluations, log_metrics, points

VENDOR = Path(__file__).parents[2] / "runs_service" / "web" / "static" / "vendor" / "uplot-1.6.32"
# sha256 of the files taken from the npm registry's uplot 1.6.32 tarball
# (dist.shasum c800a63b432bad692d6d746f44f0882aa73a49ae).
VENDOR_SHA256 = {
    "uPlot.iife.min.js": "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f",
    "uPlot.min.css": "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04",
    "LICENSE": "8f989229699b4fe2f1a0432d0e9edc338a8a911e250e2d1b01ecd770a5f5b1bd",
}
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_vendored_uplot_is_the_published_release():
    for name, digest in VENDOR_SHA256.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    package = json.loads((VENDOR / "package.json").read_text())
    assert (package["name"], package["version"], package["license"]) == ("uplot", "1.6.32", "MIT")


@pytest.fixture
def runs(client, auth, create_run):
    centralized = create_run("centralized", run_description=HOSTILE, config={"lr": 0.001})
    for step in range(3):
        batch = points(step, val_acc=0.5 + step / 10, val_loss=1 - step / 10)
        batch += points(step, val_cm_tp=300, val_cm_tn=200, val_cm_fp=30, val_cm_fn=40 - step)
        log_metrics(client, auth, centralized["id"], batch)
    federated = create_run("federated", run_description="FedAvg")
    log_evaluations(
        client,
        auth,
        federated["id"],
        [{"round_number": r, "loss": 0.7 - r / 10, "accuracy": 0.5 + r / 10} for r in range(3)],
    )
    return centralized, federated


@pytest.mark.parametrize("path", ["/", "/analytics", "/compare", "/compare?run_ids=1,2"])
def test_pages_are_html_with_a_strict_csp(client, runs, path):
    path = path.replace("1,2", f"{runs[0]['id']},{runs[1]['id']}")
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY
    html = response.get_data(as_text=True)
    assert "<script>" not in html and "style=" not in html and "http://" not in html
    assert "https://" not in html


def test_run_page_shows_facts_cards_confusion_matrix_and_downloads(client, runs):
    centralized, _ = runs
    html = client.get(f"/runs/{centralized['id']}").get_data(as_text=True)
    assert f"<title>Run {centralized['id']} · centralized" in html
    assert "true positive" in html and "[0.8" in html  # sensitivity interval
    assert f"/api/runs/{centralized['id']}/download/csv" in html
    assert "0.7000" in html  # best val_acc, four places as the API rounds


def test_federated_run_page_marks_round_zero_as_the_initial_model(client, runs):
    _, federated = runs
    html = client.get(f"/runs/{federated['id']}").get_data(as_text=True)
    assert "initial model" in html
    assert "Server evaluation per round" in html


def test_markup_in_a_description_is_escaped_everywhere(client, runs):
    centralized, _ = runs
    for path in (f"/runs/{centralized['id']}", "/", f"/compare?run_ids={centralized['id']}"):
        html = client.get(path).get_data(as_text=True)
        assert HOSTILE not in html, path
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html, path


def test_missing_run_page_is_html_while_the_api_stays_json(client):
    page = client.get("/runs/424242")
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "Run 424242 not found" in page.get_data(as_text=True)
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert client.get("/runs/not-a-number").mimetype == "text/html"
    api = client.get("/api/runs/424242")
    assert api.status_code == 404 and api.get_json()["message"] == "Run 424242 not found"


def test_bad_list_filters_explain_themselves_in_the_page(client):
    response = client.get("/?sort_by=nonsense")
    assert response.status_code == 422 and response.mimetype == "text/html"
    assert "sort_by" in response.get_data(as_text=True)


def test_empty_form_fields_are_ignored(client, runs):
    response = client.get("/?status=&training_mode=&started_after=&sort_by=id")
    assert response.status_code == 200
    assert f"/runs/{runs[1]['id']}" in response.get_data(as_text=True)


def test_compare_of_a_missing_run_names_it(client, runs):
    response = client.get(f"/compare?run_ids={runs[0]['id']},999999")
    assert response.status_code == 404
    assert "999999" in response.get_data(as_text=True)


def test_with_reads_behind_a_token_pages_are_shells_and_fragments_need_the_token(app_with, auth):
    app = app_with(RUNS_REQUIRE_AUTH_FOR_READS=True)
    client = app.test_client()
    run = client.post("/api/runs", json={"training_mode": "centralized"}, headers=auth).get_json()
    shell = client.get(f"/runs/{run['id']}")
    assert shell.status_code == 200
    html = shell.get_data(as_text=True)
    assert f'data-fragment="/fragments/runs/{run["id"]}"' in html
    assert "Confusion matrix" not in html  # no data without the token
    with client.get("/assets/js/common.js") as script:
        assert script.status_code == 200
    denied = client.get(f"/fragments/runs/{run['id']}")
    assert denied.status_code == 401 and denied.mimetype == "application/json"
    assert client.get("/fragments/runs", headers=auth).status_code == 200
    fragment = client.get(f"/fragments/runs/{run['id']}", headers=auth)
    assert fragment.status_code == 200 and "Confusion matrix" in fragment.get_data(as_text=True)
    assert client.get("/fragments/analytics", headers=AUTH).status_code == 200
    assert client.get("/api/runs/list").status_code == 401


def test_metric_columns_and_sorting_by_a_metric(client, runs):
    from runs_service.schemas.listing import RunListQuerySchema

    if "metrics" not in RunListQuerySchema().fields:
        pytest.skip("the list query offers no metric columns yet")
    centralized, federated = runs
    query = "metrics=val_loss&sort_by=metric&sort_metric=val_loss&sort_stat=best&sort_order=asc"
    html = client.get(f"/?{query}").get_data(as_text=True)
    assert 'aria-sort="ascending"' in html and "val_loss <span" in html
    assert "0.8000" in html  # val_loss best = last = 0.8 at step 2
    assert html.index(f'/runs/{centralized["id"]}"') < html.index(f'/runs/{federated["id"]}"')
    # The form's metric-sort fields count only when sorting by a metric.
    plain = client.get("/?sort_by=id&sort_metric=val_loss&sort_stat=best")
    assert plain.status_code == 200


def test_long_federated_run_page_shows_round_zero_and_the_latest_rounds(client, auth, create_run):
    run = create_run("federated")
    rounds = SERVER_ROUNDS_SHOWN + 10
    log_evaluations(
        client,
        auth,
        run["id"],
        [{"round_number": r, "accuracy": 0.5 + r / 1000} for r in range(rounds + 1)],
    )
    html = client.get(f"/runs/{run['id']}").get_data(as_text=True)
    table = html[html.index('<table class="data rounds">') :]
    table = table[: table.index("</table>")]
    shown = [int(number) for number in re.findall(r'<th scope="row" class="num">(\d+)', table)]
    assert shown == [0, *range(rounds - SERVER_ROUNDS_SHOWN + 1, rounds + 1)]
    assert f"latest {SERVER_ROUNDS_SHOWN} of {rounds} training rounds" in html
    assert f"/api/runs/{run['id']}/server-evaluation" in html


def test_run_and_compare_pages_cost_the_same_statements_for_any_run_length(
    client, auth, create_run, count_statements
):
    short, long = create_run("centralized"), create_run("centralized")
    for run, epochs in ((short, 3), (long, 300)):
        batch = [
            point
            for step in range(epochs)
            for point in points(step, val_acc=0.5 + step / 1000, val_loss=1 - step / 1000)
        ]
        log_metrics(client, auth, run["id"], batch)
    counts = []
    for path in (
        f"/runs/{short['id']}",
        f"/runs/{long['id']}",
        f"/compare?run_ids={short['id']}",
        f"/compare?run_ids={short['id']},{long['id']}",
    ):
        with count_statements() as counter:
            assert client.get(path).status_code == 200
        counts.append(counter.count)
    assert counts[0] == counts[1] and counts[2] == counts[3], counts
