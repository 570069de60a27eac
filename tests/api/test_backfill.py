"""Backfill of server evaluations from results files and bodies, through the HTTP API."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from runs_service.extensions import db
from runs_service.models import ServerEvaluation
from runs_service.services.ingest import EVALUATION_VALUE_FIELDS
from runs_service.services.results_file import SERVER_SECTION, parse_metrics_literal

EXAMPLE = json.loads(
    (Path(__file__).parent.parent / "data" / "results_example_legacy.json").read_text()
)
STORED_FIELDS = ("round_number", *EVALUATION_VALUE_FIELDS)


def url(run_id: int, query: str = "") -> str:
    return f"/api/runs/backfill/{run_id}/server-evaluations{query}"


def results_dir(app) -> Path:
    directory = Path(app.config["RUNS_RESULTS_DIR"])
    directory.mkdir(exist_ok=True)
    return directory


def write_results(app, run_id: int, document) -> Path:
    path = results_dir(app) / f"results_{run_id}.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def as_json_objects(document: dict) -> dict:
    """The same document with every legacy round string written as a JSON object."""
    rounds = document[SERVER_SECTION]
    return {**document, SERVER_SECTION: {k: parse_metrics_literal(v) for k, v in rounds.items()}}


def stored_evaluations(app, run_id: int) -> list[dict]:
    with app.app_context():
        rows = db.session.execute(
            select(ServerEvaluation)
            .where(ServerEvaluation.run_id == run_id)
            .order_by(ServerEvaluation.round_number)
        ).scalars()
        return [{name: getattr(row, name) for name in STORED_FIELDS} for row in rows]


@pytest.fixture
def federated_run(create_run):
    return create_run("federated")["id"]


def test_file_backfill_stores_every_round_and_answers_counts(app, client, auth, federated_run):
    write_results(app, federated_run, EXAMPLE)
    response = client.post(url(federated_run), headers=auth)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "run_id": federated_run,
        "success": True,
        "message": f"Backfilled 6 rounds of server evaluations from results_{federated_run}.json.",
        "rounds_processed": 6,
        "inserted": 6,
        "updated": 0,
        "unchanged": 0,
    }
    rows = stored_evaluations(app, federated_run)
    assert [row["round_number"] for row in rows] == [0, 1, 2, 3, 4, 5]
    assert rows[1] == {
        "round_number": 1,
        "loss": 0.616,
        "accuracy": 0.6126,
        "precision": 0.6064,
        "recall": 0.6421,
        "f1_score": 0.6237,
        "auroc": 0.58,
        "true_positives": 305,
        "true_negatives": 277,
        "false_positives": 198,
        "false_negatives": 170,
        "num_samples": 950,
        "evaluation_time": None,
        "additional_metrics": None,
    }


def test_legacy_strings_and_json_objects_give_identical_rows(
    app, client, auth, create_run, federated_run
):
    other_run = create_run("federated")["id"]
    write_results(app, federated_run, EXAMPLE)
    write_results(app, other_run, as_json_objects(EXAMPLE))
    assert client.post(url(federated_run), headers=auth).status_code == 200
    assert client.post(url(other_run), headers=auth).status_code == 200
    legacy_rows = stored_evaluations(app, federated_run)
    assert len(legacy_rows) == 6
    assert stored_evaluations(app, other_run) == legacy_rows


def test_body_document_gives_the_same_rows_as_the_file(
    app, client, auth, create_run, federated_run
):
    other_run = create_run("federated")["id"]
    write_results(app, federated_run, EXAMPLE)
    assert client.post(url(federated_run), headers=auth).status_code == 200
    response = client.post(url(other_run), json=as_json_objects(EXAMPLE), headers=auth)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["message"] == (
        "Backfilled 6 rounds of server evaluations from the request body."
    )
    assert stored_evaluations(app, other_run) == stored_evaluations(app, federated_run)


def test_numpy_reprs_and_lists_are_read(app, client, auth, federated_run):
    document = {
        SERVER_SECTION: {
            "1": "{'server_loss': np.float64(0.25), 'server_accuracy': np.float32(0.5), "
            "'server_cm_tp': np.int64(475), 'per_class_recall': [np.float64(0.9), 0.8], "
            "'num-examples': np.int32(950), 'lr': 1e-05}"
        }
    }
    response = client.post(url(federated_run), json=document, headers=auth)
    assert response.status_code == 200, response.get_json()
    (row,) = stored_evaluations(app, federated_run)
    assert (row["loss"], row["accuracy"], row["true_positives"]) == (0.25, 0.5, 475)
    assert row["additional_metrics"] == {
        "per_class_recall": [0.9, 0.8],
        "num-examples": 950,
        "lr": 1e-05,
    }


def test_float_counts_are_stored_as_integers(app, client, auth, federated_run):
    write_results(app, federated_run, {SERVER_SECTION: {"0": "{'server_cm_tp': 475.0}"}})
    assert client.post(url(federated_run), headers=auth).status_code == 200
    (row,) = stored_evaluations(app, federated_run)
    assert row["true_positives"] == 475
    assert isinstance(row["true_positives"], int)


def test_a_round_missing_keys_stores_nulls_not_zeros(app, client, auth, federated_run):
    write_results(
        app, federated_run, {SERVER_SECTION: {"2": "{'server_loss': 0.5, 'server_cm_tp': 3.0}"}}
    )
    assert client.post(url(federated_run), headers=auth).status_code == 200
    (row,) = stored_evaluations(app, federated_run)
    assert row["loss"] == 0.5
    assert row["true_positives"] == 3
    for name in ("accuracy", "precision", "recall", "f1_score", "auroc", "true_negatives"):
        assert row[name] is None, name
    assert row["num_samples"] is None


def test_backfilling_twice_leaves_the_same_rows_and_reports_unchanged(
    app, client, auth, federated_run
):
    write_results(app, federated_run, EXAMPLE)
    assert client.post(url(federated_run), headers=auth).get_json()["inserted"] == 6
    first_rows = stored_evaluations(app, federated_run)
    second = client.post(url(federated_run), headers=auth).get_json()
    assert (second["inserted"], second["updated"], second["unchanged"]) == (0, 0, 6)
    assert stored_evaluations(app, federated_run) == first_rows


def test_a_changed_round_is_reported_as_updated(app, client, auth, federated_run):
    write_results(app, federated_run, EXAMPLE)
    client.post(url(federated_run), headers=auth)
    changed = as_json_objects(EXAMPLE)
    changed[SERVER_SECTION]["5"]["server_loss"] = 0.2
    answer = client.post(url(federated_run), json=changed, headers=auth).get_json()
    assert (answer["inserted"], answer["updated"], answer["unchanged"]) == (0, 1, 5)
    assert stored_evaluations(app, federated_run)[5]["loss"] == 0.2


@pytest.mark.parametrize("flag", ["true", "1", "yes", "TRUE", "Yes"])
def test_dry_run_validates_reports_and_writes_nothing(
    app, client, auth, federated_run, row_counts, flag
):
    write_results(app, federated_run, EXAMPLE)
    before = row_counts()
    response = client.post(url(federated_run, f"?dry_run={flag}"), headers=auth)
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer["message"] == (
        f"Dry run: 6 rounds from results_{federated_run}.json are valid; nothing was written."
    )
    assert (answer["rounds_processed"], answer["inserted"], answer["unchanged"]) == (6, 6, 0)
    assert row_counts() == before


def test_dry_run_after_an_import_reports_unchanged(app, client, auth, federated_run):
    write_results(app, federated_run, EXAMPLE)
    client.post(url(federated_run), headers=auth)
    answer = client.post(url(federated_run, "?dry_run=true"), headers=auth).get_json()
    assert (answer["inserted"], answer["updated"], answer["unchanged"]) == (0, 0, 6)


@pytest.mark.parametrize("flag", ["false", "0", "no"])
def test_dry_run_false_writes(app, client, auth, federated_run, flag):
    write_results(app, federated_run, EXAMPLE)
    assert client.post(url(federated_run, f"?dry_run={flag}"), headers=auth).status_code == 200
    assert len(stored_evaluations(app, federated_run)) == 6


@pytest.mark.parametrize("query", ["?dry_run=maybe", "?dry_run=", "?dryrun=true", "?force=1"])
def test_invalid_or_unknown_query_parameters_are_422(
    app, client, auth, federated_run, row_counts, query
):
    write_results(app, federated_run, EXAMPLE)
    before = row_counts()
    response = client.post(url(federated_run, query), headers=auth)
    assert response.status_code == 422
    assert response.get_json()["code"] == 422
    assert row_counts() == before


TEN_MB = 10 * 1024 * 1024
HOSTILE_ROUNDS = {
    "nested structure": ("{'server_loss': {'a': 1}}", "nested structure"),
    "nested json object": ({"server_loss": {"a": 1}}, "must be a number"),
    "call": ("{'server_loss': __import__('os').system('true')}", "'__import__' is not allowed"),
    "ten megabyte string": ("{'x': [" + "1," * (TEN_MB // 2) + "]}", "the limit is 65,536"),
    "huge integer": ("{'server_cm_tp': " + "9" * 40 + "}", "beyond ±2^63-1"),
    "huge json integer": ({"x": 10**30}, "beyond ±2^63-1"),
    "nan": ("{'server_loss': nan}", "NaN and infinity are not allowed"),
    "numpy nan": ("{'server_loss': np.float64(nan)}", "NaN and infinity are not allowed"),
    "negative count": ("{'server_cm_fp': -1.0}", "server_cm_fp: Must be greater than"),
    "fractional count": ({"server_cm_tp": 475.5}, "must be a whole number"),
    "score above one": ("{'server_accuracy': 1.5}", "server_accuracy: Must be"),
}


@pytest.mark.parametrize("via", ["file", "body"])
@pytest.mark.parametrize("case", sorted(HOSTILE_ROUNDS))
def test_each_hostile_round_is_422_naming_the_round_and_writes_nothing(
    app, client, auth, federated_run, row_counts, case, via
):
    # Both byte caps above the 10 MB string, so the per-round string cap decides: 422, not 413.
    app.config.update(
        MAX_CONTENT_LENGTH=16 * 1024 * 1024, RUNS_MAX_RESULTS_FILE_BYTES=16 * 1024 * 1024
    )
    metrics, reason = HOSTILE_ROUNDS[case]
    document = {SERVER_SECTION: {"0": "{'server_loss': 0.7}", "7": metrics}}
    before = row_counts()
    if via == "file":
        write_results(app, federated_run, document)
        response = client.post(url(federated_run), headers=auth)
    else:
        response = client.post(url(federated_run), json=document, headers=auth)
    body = response.get_json()
    assert response.status_code == 422, body
    assert "round '7'" in body["message"]
    assert reason in body["message"]
    assert reason in body["errors"][SERVER_SECTION]["7"][0]
    assert row_counts() == before


@pytest.mark.parametrize("via", ["file", "body"])
@pytest.mark.parametrize("round_key", ["one", "-1", "1.5", "01", "2000000"])
def test_a_non_numeric_or_out_of_range_round_key_is_422(
    app, client, auth, federated_run, row_counts, via, round_key
):
    document = {SERVER_SECTION: {"0": {"server_loss": 0.7}, round_key: {"server_loss": 0.5}}}
    before = row_counts()
    if via == "file":
        write_results(app, federated_run, document)
        response = client.post(url(federated_run), headers=auth)
    else:
        response = client.post(url(federated_run), json=document, headers=auth)
    assert response.status_code == 422
    assert f"round {round_key!r}" in response.get_json()["message"]
    assert row_counts() == before


def test_nan_in_a_results_file_is_422_and_in_a_body_is_400(
    app, client, auth, federated_run, row_counts
):
    before = row_counts()
    raw = '{"evaluate_metrics_serverapp": {"0": {"server_loss": NaN}}}'
    write_results(app, federated_run, raw)
    response = client.post(url(federated_run), headers=auth)
    assert response.status_code == 422
    assert f"results_{federated_run}.json is not valid JSON" in response.get_json()["message"]
    response = client.post(
        url(federated_run), data=raw, content_type="application/json", headers=auth
    )
    assert response.status_code == 400
    assert row_counts() == before


def test_file_that_is_not_json_is_422(app, client, auth, federated_run):
    write_results(app, federated_run, "{'evaluate_metrics_serverapp': {}}")
    response = client.post(url(federated_run), headers=auth)
    assert response.status_code == 422
    assert "is not valid JSON" in response.get_json()["message"]


@pytest.mark.parametrize(
    "document",
    [{}, {"train_metrics_clientapp": {"1": "{}"}}, {SERVER_SECTION: {}}, {SERVER_SECTION: []}],
)
def test_a_document_without_server_evaluations_is_422(app, client, auth, federated_run, document):
    write_results(app, federated_run, document)
    for response in (
        client.post(url(federated_run), headers=auth),
        client.post(url(federated_run), json=document, headers=auth),
    ):
        assert response.status_code == 422
        assert "no server evaluations" in response.get_json()["message"]


def test_unknown_run_is_404(app, client, auth):
    write_results(app, 999, EXAMPLE)
    response = client.post(url(999), headers=auth)
    assert response.status_code == 404
    assert response.get_json()["message"] == "Run 999 not found"
    assert client.post(url(2**31), headers=auth).status_code == 404


def test_missing_file_is_404_naming_the_file_but_not_the_directory(
    app, client, auth, federated_run
):
    results_dir(app)
    response = client.post(url(federated_run), headers=auth)
    assert response.status_code == 404
    message = response.get_json()["message"]
    assert f"results_{federated_run}.json" in message
    assert app.config["RUNS_RESULTS_DIR"] not in response.get_data(as_text=True)
    assert "results" + os.sep not in message


def test_missing_results_directory_is_404(app, client, auth, federated_run):
    assert not Path(app.config["RUNS_RESULTS_DIR"]).exists()
    assert client.post(url(federated_run), headers=auth).status_code == 404


def test_centralized_run_is_409(app, client, auth, create_run, row_counts):
    run_id = create_run("centralized")["id"]
    write_results(app, run_id, EXAMPLE)
    before = row_counts()
    for response in (
        client.post(url(run_id), headers=auth),
        client.post(url(run_id), json=EXAMPLE, headers=auth),
    ):
        assert response.status_code == 409
        assert "centralized" in response.get_json()["message"]
    assert row_counts() == before


def test_file_over_the_size_cap_is_413_before_reading(app, client, auth, federated_run):
    path = write_results(app, federated_run, EXAMPLE)
    app.config["RUNS_MAX_RESULTS_FILE_BYTES"] = path.stat().st_size - 1
    response = client.post(url(federated_run), headers=auth)
    assert response.status_code == 413
    message = response.get_json()["message"]
    assert f"results_{federated_run}.json" in message
    assert "RUNS_MAX_RESULTS_FILE_BYTES" in message
    app.config["RUNS_MAX_RESULTS_FILE_BYTES"] = path.stat().st_size
    assert client.post(url(federated_run), headers=auth).status_code == 200


def test_body_over_the_content_cap_is_413(app, client, auth, federated_run, row_counts):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    before = row_counts()
    document = {SERVER_SECTION: {"0": "{'x': [" + "1," * 1000 + "]}"}}
    response = client.post(url(federated_run), json=document, headers=auth)
    assert response.status_code == 413
    assert row_counts() == before


def test_symlink_escaping_the_results_directory_is_refused(
    app, client, auth, federated_run, row_counts, tmp_path
):
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps(EXAMPLE))
    (results_dir(app) / f"results_{federated_run}.json").symlink_to(outside)
    before = row_counts()
    response = client.post(url(federated_run), headers=auth)
    assert response.status_code == 403
    body = response.get_data(as_text=True)
    assert "outside the results directory" in response.get_json()["message"]
    assert str(tmp_path) not in body
    assert row_counts() == before


def test_symlinked_directory_escape_is_refused(app, client, auth, federated_run, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "data.json").write_text(json.dumps(EXAMPLE))
    (results_dir(app) / "sub").symlink_to(elsewhere)
    (results_dir(app) / f"results_{federated_run}.json").symlink_to("sub/data.json")
    assert client.post(url(federated_run), headers=auth).status_code == 403


def test_symlink_staying_inside_the_results_directory_is_read(app, client, auth, federated_run):
    target = results_dir(app) / "archive" / "run.json"
    target.parent.mkdir()
    target.write_text(json.dumps(EXAMPLE))
    (results_dir(app) / f"results_{federated_run}.json").symlink_to(target)
    response = client.post(url(federated_run), headers=auth)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["inserted"] == 6


def test_a_directory_or_fifo_in_place_of_the_file_is_refused(app, client, auth, create_run):
    directory_run, fifo_run = create_run("federated")["id"], create_run("federated")["id"]
    (results_dir(app) / f"results_{directory_run}.json").mkdir()
    os.mkfifo(results_dir(app) / f"results_{fifo_run}.json")
    for run_id in (directory_run, fifo_run):
        response = client.post(url(run_id), headers=auth)
        assert response.status_code == 403
        assert "not a regular file" in response.get_json()["message"]


def test_backfill_needs_a_token_and_a_json_body(app, client, auth, federated_run):
    write_results(app, federated_run, EXAMPLE)
    response = client.post(url(federated_run))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    response = client.post(url(federated_run), data="x=1", content_type="text/plain", headers=auth)
    assert response.status_code == 415


def test_concurrent_backfills_of_one_run_write_each_round_once(app, auth, federated_run):
    write_results(app, federated_run, EXAMPLE)
    workers = 8
    barrier = threading.Barrier(workers)
    answers: list = [None] * workers

    def backfill(index: int) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(url(federated_run), headers=auth)
        answers[index] = (response.status_code, response.get_json())

    threads = [threading.Thread(target=backfill, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [status for status, _ in answers] == [200] * workers, answers
    assert sum(answer["inserted"] for _, answer in answers) == 6
    assert all(answer["updated"] == 0 for _, answer in answers)
    assert all(answer["inserted"] + answer["unchanged"] == 6 for _, answer in answers)
    rows = stored_evaluations(app, federated_run)
    assert [row["round_number"] for row in rows] == [0, 1, 2, 3, 4, 5]


def test_openapi_documents_the_route_and_its_errors(client):
    spec = client.get("/api/openapi.json").get_json()
    operation = spec["paths"]["/api/runs/backfill/{run_id}/server-evaluations"]["post"]
    assert {"200", "400", "401", "403", "404", "409", "413", "415", "422"} <= set(
        operation["responses"]
    )
    assert operation["requestBody"]["required"] is False
    assert [parameter["name"] for parameter in operation["parameters"]] == ["dry_run"]
    assert "RUNS_MAX_RESULTS_FILE_BYTES" in operation["description"]
    assert "symbolic link" in operation["description"]
    assert operation["security"] == [{"bearerAuth": ["write"]}]
