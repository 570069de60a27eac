"""The import-results command: file and directory modes, both formats, dry run."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select

from runs_service.extensions import db
from runs_service.models import ServerEvaluation
from runs_service.services.results_file import SERVER_SECTION, parse_metrics_literal

EXAMPLE_PATH = Path(__file__).parent / "data" / "results_example_legacy.json"
EXAMPLE = json.loads(EXAMPLE_PATH.read_text())
JSON_FORMAT = {
    SERVER_SECTION: {k: parse_metrics_literal(v) for k, v in EXAMPLE[SERVER_SECTION].items()}
}


def rounds_of(app, run_id: int) -> list[tuple[int, float | None, int | None]]:
    with app.app_context():
        rows = db.session.execute(
            select(
                ServerEvaluation.round_number,
                ServerEvaluation.accuracy,
                ServerEvaluation.true_positives,
            )
            .where(ServerEvaluation.run_id == run_id)
            .order_by(ServerEvaluation.round_number)
        )
        return [tuple(row) for row in rows]


def evaluation_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(ServerEvaluation))


def write(directory: Path, name: str, document) -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text(json.dumps(document))
    return path


def test_imports_a_legacy_results_file(app, runner, create_run):
    run_id = create_run("federated")["id"]
    result = runner.invoke(args=["import-results", str(EXAMPLE_PATH), "--run-id", str(run_id)])
    assert result.exit_code == 0, result.output
    assert "6 inserted, 0 updated, 0 unchanged" in result.output
    rows = rounds_of(app, run_id)
    assert [row[0] for row in rows] == [0, 1, 2, 3, 4, 5]
    assert rows[0] == (0, 0.5, 475)


def test_json_format_gives_the_same_rows_and_reimport_is_unchanged(
    app, runner, create_run, tmp_path
):
    legacy_run, json_run = create_run("federated")["id"], create_run("federated")["id"]
    json_file = write(tmp_path / "exports", "new_format.json", JSON_FORMAT)
    runner.invoke(args=["import-results", str(EXAMPLE_PATH), "--run-id", str(legacy_run)])
    result = runner.invoke(args=["import-results", str(json_file), "--run-id", str(json_run)])
    assert result.exit_code == 0, result.output
    assert rounds_of(app, json_run) == rounds_of(app, legacy_run)
    again = runner.invoke(args=["import-results", str(json_file), "--run-id", str(json_run)])
    assert "0 inserted, 0 updated, 6 unchanged" in again.output


def test_dry_run_reports_and_writes_nothing(app, runner, create_run):
    run_id = create_run("federated")["id"]
    result = runner.invoke(
        args=["import-results", str(EXAMPLE_PATH), "--run-id", str(run_id), "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "Dry run: 6 rounds" in result.output
    assert "6 inserted" in result.output
    assert evaluation_count(app) == 0


def test_invalid_file_fails_naming_the_round_and_writes_nothing(app, runner, create_run, tmp_path):
    run_id = create_run("federated")["id"]
    bad = write(
        tmp_path,
        "bad.json",
        {SERVER_SECTION: {"0": "{'server_loss': 0.7}", "3": "{'server_accuracy': 1.5}"}},
    )
    result = runner.invoke(args=["import-results", str(bad), "--run-id", str(run_id)])
    assert result.exit_code == 1
    assert "round '3'" in result.output
    assert evaluation_count(app) == 0


def test_unknown_or_centralized_run_fails(runner, create_run):
    centralized = create_run("centralized")["id"]
    result = runner.invoke(args=["import-results", str(EXAMPLE_PATH), "--run-id", "4242"])
    assert result.exit_code == 1
    assert "Run 4242 not found" in result.output
    result = runner.invoke(args=["import-results", str(EXAMPLE_PATH), "--run-id", str(centralized)])
    assert result.exit_code == 1
    assert "centralized" in result.output


def test_directory_mode_imports_every_file_whose_run_exists(app, runner, create_run, tmp_path):
    legacy_run, json_run = create_run("federated")["id"], create_run("federated")["id"]
    directory = tmp_path / "results_in"
    write(directory, f"results_{legacy_run}.json", EXAMPLE)
    write(directory, f"results_{json_run}.json", JSON_FORMAT)
    write(directory, "results_987654.json", EXAMPLE)
    write(directory, "notes.json", {"ignored": True})
    result = runner.invoke(args=["import-results", "--directory", str(directory)])
    assert result.exit_code == 0, result.output
    assert "Imported 2 of 3 results files; 1 skipped (no run), 0 failed." in result.output
    assert "skipped results_987654.json: run 987654 does not exist" in result.output
    assert len(rounds_of(app, legacy_run)) == 6
    assert rounds_of(app, json_run) == rounds_of(app, legacy_run)


def test_directory_mode_dry_run_writes_nothing(app, runner, create_run, tmp_path):
    run_id = create_run("federated")["id"]
    directory = tmp_path / "results_in"
    write(directory, f"results_{run_id}.json", EXAMPLE)
    result = runner.invoke(args=["import-results", "--directory", str(directory), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "Validated 1 of 1 results files" in result.output
    assert evaluation_count(app) == 0


def test_directory_mode_reports_failures_and_imports_the_rest(app, runner, create_run, tmp_path):
    good_run, bad_run = create_run("federated")["id"], create_run("federated")["id"]
    directory = tmp_path / "results_in"
    write(directory, f"results_{good_run}.json", EXAMPLE)
    write(directory, f"results_{bad_run}.json", {SERVER_SECTION: {"0": "{'x': nan}"}})
    result = runner.invoke(args=["import-results", "--directory", str(directory)])
    assert result.exit_code == 1
    assert f"failed results_{bad_run}.json" in result.output
    assert "NaN" in result.output
    assert len(rounds_of(app, good_run)) == 6
    assert rounds_of(app, bad_run) == []


def test_directory_mode_refuses_symlinks_that_leave_the_directory(
    app, runner, create_run, tmp_path, caplog
):
    run_id = create_run("federated")["id"]
    directory = tmp_path / "results_in"
    directory.mkdir()
    (directory / f"results_{run_id}.json").symlink_to(EXAMPLE_PATH.resolve())
    result = runner.invoke(args=["import-results", "--directory", str(directory)])
    assert result.exit_code == 1
    assert "outside the results directory" in result.output
    # Reported once, on the `failed` line: no second report through the log.
    assert result.output.count("outside the results directory") == 1, result.output
    assert not [record for record in caplog.records if "refused" in record.getMessage()]
    assert evaluation_count(app) == 0


def test_usage_needs_a_file_with_a_run_id_or_a_directory(runner, tmp_path):
    assert runner.invoke(args=["import-results"]).exit_code == 2
    assert runner.invoke(args=["import-results", str(EXAMPLE_PATH)]).exit_code == 2
    both = ["import-results", str(EXAMPLE_PATH), "--run-id", "1", "--directory", str(tmp_path)]
    assert runner.invoke(args=both).exit_code == 2
    assert runner.invoke(args=["import-results", str(EXAMPLE_PATH), "--run-id", "0"]).exit_code == 2
