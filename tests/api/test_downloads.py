"""GET /api/runs/{run_id}/download/{csv,json,summary}: streamed attachments."""

from __future__ import annotations

import csv
import io
import json

from runs_service.services.definitions import CSV_COLUMNS
from tests.helpers import log_evaluations, log_metrics, points

FORMULA = '=HYPERLINK("http://x","y")'
FORMULA_PREFIXES = ("=", "+", "-", "@")


def run_with_history(client, auth, create_run, **fields) -> int:
    """A centralized run with three epochs written out of order, some values missing."""
    run = create_run(**fields)
    log_metrics(
        client,
        auth,
        run["id"],
        points(2, train_loss=0.3, val_loss=0.35, val_acc=0.9, val_recall=0.0)
        + points(0, train_loss=0.7, train_acc=0.6, val_loss=0.65, val_acc=0.55)
        + points(1, train_loss=0.5, val_loss=0.45, val_acc=0.8)
        + points(2, val_cm_tp=45, val_cm_tn=40, val_cm_fp=10, val_cm_fn=5),
    )
    return run["id"]


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_csv_is_a_streamed_attachment_with_header_and_one_row_per_epoch(client, auth, create_run):
    run_id = run_with_history(client, auth, create_run)
    response = client.get(f"/api/runs/{run_id}/download/csv")
    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="run_{run_id}_metrics.csv"'
    )
    header, *rows = csv_rows(response)
    assert header == list(CSV_COLUMNS)
    assert header == (
        "epoch,train_loss,train_acc,train_f1,val_loss,val_acc,val_precision,val_recall,val_f1,"
        "val_auroc"
    ).split(",")
    assert [row[0] for row in rows] == ["1", "2", "3"]
    assert rows[0] == ["1", "0.7", "0.6", "", "0.65", "0.55", "", "", "", ""]
    # Missing values are empty cells; a genuine 0.0 is a value.
    assert rows[2] == ["3", "0.3", "", "", "0.35", "0.9", "", "0.0", "", ""]


def test_csv_without_history_is_404_json(client, create_run):
    run = create_run()
    response = client.get(f"/api/runs/{run['id']}/download/csv")
    assert response.status_code == 404
    assert response.get_json() == {
        "code": 404,
        "status": "Not Found",
        "message": "No training history available",
    }


def test_csv_of_a_federated_run_has_one_row_per_training_round(client, auth, create_run):
    run = create_run("federated")
    log_evaluations(
        client,
        auth,
        run["id"],
        [
            {"round_number": 0, "loss": 0.7, "accuracy": 0.5},
            {"round_number": 1, "loss": 0.5, "accuracy": 0.7, "auroc": 0.75},
            {"round_number": 2, "loss": 0.4, "accuracy": 0.8},
        ],
    )
    header, *rows = csv_rows(client.get(f"/api/runs/{run['id']}/download/csv"))
    assert rows == [
        ["1", "", "", "", "0.5", "0.7", "", "", "", "0.75"],
        ["2", "", "", "", "0.4", "0.8", "", "", "", ""],
    ]


def test_csv_of_a_federated_run_with_only_round_zero_is_404(client, auth, create_run):
    run = create_run("federated")
    log_evaluations(client, auth, run["id"], [{"round_number": 0, "loss": 0.7}])
    assert client.get(f"/api/runs/{run['id']}/download/csv").status_code == 404


def test_json_download_is_the_metrics_document_as_a_file(client, auth, create_run):
    run_id = run_with_history(client, auth, create_run, run_description=FORMULA)
    response = client.get(f"/api/runs/{run_id}/download/json")
    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "application/json"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="run_{run_id}_results.json"'
    )
    document = json.loads(response.get_data(as_text=True))
    assert document == client.get(f"/api/runs/{run_id}/metrics").get_json()
    assert document["metadata"]["start_time"].endswith("+00:00")


def test_json_download_of_a_run_without_history_keeps_the_empty_history(client, create_run):
    run = create_run()
    response = client.get(f"/api/runs/{run['id']}/download/json")
    assert response.status_code == 200
    assert json.loads(response.get_data(as_text=True))["training_history"] == []


def test_summary_report_lists_facts_finals_bests_matrix_and_every_epoch(client, auth, create_run):
    run_id = run_with_history(
        client,
        auth,
        create_run,
        status="completed",
        start_time="2025-11-04T12:00:00Z",
        end_time="2025-11-04T12:30:00Z",
        run_description="DenseNet121 lr sweep",
        config={"learning_rate": 1e-05, "batch_size": 32},
    )
    response = client.get(f"/api/runs/{run_id}/download/summary")
    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "text/plain"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="run_{run_id}_summary.txt"'
    )
    report = response.get_data(as_text=True)
    lines = report.splitlines()
    for expected in (
        f"Experiment:             run_{run_id}",
        "Description:            DenseNet121 lr sweep",
        "Training mode:          centralized",
        "Status:                 completed",
        "Start time:             2025-11-04T12:00:00+00:00",
        "Duration (minutes):     30.0",
        "Epochs:                 3",
        "learning_rate:          1e-05",
        "batch_size:             32",
        "accuracy:               0.9000",
        "recall:                 0.0000",
        "precision:              n/a",
        "Best epoch (val acc):   3",
        "Lowest val loss:        0.3500",
        "True positives:         45",
        "Total:                  100",
    ):
        assert expected in lines, expected
    assert any(line.startswith("Sensitivity:            0.9000 (95% CI ") for line in lines)
    assert "Specificity:            0.8000" in report
    history = lines[lines.index("## Training history") + 1 :]
    assert history[0].split() == list(CSV_COLUMNS)
    assert [row.split()[0] for row in history[1:]] == ["1", "2", "3"]


def test_summary_of_a_federated_run_shows_the_initial_evaluation(client, auth, create_run):
    run = create_run("federated")
    log_evaluations(
        client,
        auth,
        run["id"],
        [{"round_number": 0, "loss": 0.69, "accuracy": 0.5}, {"round_number": 1, "loss": 0.4}],
    )
    report = client.get(f"/api/runs/{run['id']}/download/summary").get_data(as_text=True)
    assert "Training rounds:        1" in report
    initial = report.split("Initial evaluation (round 0)")[1]
    assert "loss:                   0.6900" in initial
    assert "accuracy:               0.5000" in initial
    history = report.split("## Training history (training rounds)\n")[1].splitlines()
    assert history[0].split() == ["round", *CSV_COLUMNS[1:]]
    assert [row.split()[0] for row in history[1:]] == ["1"]


def test_summary_of_a_run_without_history_says_so(client, create_run):
    run = create_run()
    response = client.get(f"/api/runs/{run['id']}/download/summary")
    assert response.status_code == 200
    assert "No training history available." in response.get_data(as_text=True)


def test_description_formula_never_reaches_a_report_live(client, auth, create_run):
    for description in (f"baseline\n{FORMULA}", f"\t{FORMULA}", f"@SUM(A1)\r\n{FORMULA}", FORMULA):
        run_id = run_with_history(client, auth, create_run, run_description=description)
        csv_text = client.get(f"/api/runs/{run_id}/download/csv").get_data(as_text=True)
        assert "HYPERLINK" not in csv_text
        report = client.get(f"/api/runs/{run_id}/download/summary").get_data(as_text=True)
        assert "HYPERLINK" in report
        for line in report.splitlines():
            for cell in [line, *line.split("\t"), *line.split(":", 1)[1:]]:
                assert not cell.strip(" ").startswith(FORMULA_PREFIXES), line
        # The description stays on its own line, whatever line breaks it carries.
        description_line = next(line for line in report.splitlines() if "HYPERLINK" in line)
        assert description_line.startswith("Description:")
    assert f"Description:            '{FORMULA}" in report
