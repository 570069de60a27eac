"""Flask commands: demo data."""

from __future__ import annotations

import os

from sqlalchemy import func, select

from runs_service.extensions import db
from runs_service.models import Run, RunMetric, ServerEvaluation, TrainingMode


def test_demo_data_fills_an_empty_database(app, runner):
    result = runner.invoke(args=["demo-data", "--count", "12"])
    assert result.exit_code == 0, result.output
    assert "Loaded 12 demo runs" in result.output
    with app.app_context():
        modes = db.session.scalars(select(Run.training_mode)).all()
        assert len(modes) == 12
        assert set(modes) == {TrainingMode.CENTRALIZED, TrainingMode.FEDERATED}
        assert db.session.scalar(select(func.count()).select_from(RunMetric)) > 12 * 10
        rounds = db.session.scalars(select(ServerEvaluation.round_number)).all()
        assert 0 in rounds


def test_demo_data_refuses_a_database_with_runs(app, runner, create_run):
    create_run()
    result = runner.invoke(args=["demo-data", "--count", "2"])
    assert result.exit_code != 0
    assert "--force" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Run)) == 1


def test_demo_data_if_empty_skips_quietly_and_force_adds(app, runner, create_run):
    create_run()
    skipped = runner.invoke(args=["demo-data", "--count", "2", "--if-empty"])
    assert skipped.exit_code == 0
    forced = runner.invoke(args=["demo-data", "--count", "2", "--force"])
    assert forced.exit_code == 0
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Run)) == 3


def test_refresh_summaries_rebuilds_stored_facts_from_the_data(app, runner, client, auth):
    from sqlalchemy import update

    from runs_service.models import RunSummary

    runner.invoke(args=["demo-data", "--count", "4"])
    before = client.get("/api/runs/list?sort_by=id").get_json()["runs"]
    with app.app_context():
        # Simulate summaries gone stale (a restore from an older dump, say).
        db.session.execute(update(RunSummary).values(best_accuracy=None, metrics_count=0))
        db.session.commit()
    stale = client.get("/api/runs/list?sort_by=id").get_json()["runs"]
    assert all(run["metrics_count"] == 0 for run in stale)
    result = runner.invoke(args=["refresh-summaries"])
    assert result.exit_code == 0, result.output
    assert "4 runs" in result.output
    assert client.get("/api/runs/list?sort_by=id").get_json()["runs"] == before


def test_demo_data_writes_the_results_file_of_a_run_whose_evaluations_it_did_not_log(
    app, runner, client, auth
):
    result = runner.invoke(args=["demo-data", "--count", "12"])
    assert result.exit_code == 0, result.output
    results_dir = app.config["RUNS_RESULTS_DIR"]
    files = os.listdir(results_dir)
    assert len(files) == 1 and f"Wrote {os.path.join(results_dir, files[0])}" in result.output
    run_id = int(files[0].removeprefix("results_").removesuffix(".json"))
    before = client.get(f"/api/runs/{run_id}/server-evaluation").get_json()
    assert before["is_federated"] and not before["has_server_evaluation"]
    backfill = client.post(f"/api/runs/backfill/{run_id}/server-evaluations", headers=auth)
    assert backfill.status_code == 200, backfill.get_json()
    assert backfill.get_json()["updated"] == 0 and backfill.get_json()["inserted"] >= 2
    after = client.get(f"/api/runs/{run_id}/server-evaluation").get_json()
    assert [item["round"] for item in after["evaluations"]][:2] == [0, 1]


def test_demo_data_is_the_same_on_every_load(app, runner, client):
    runner.invoke(args=["demo-data", "--count", "6"])
    first = client.get("/api/runs/list?sort_by=id&limit=6").get_json()
    with app.app_context():
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
    runner.invoke(args=["demo-data", "--count", "6", "--force"])
    second = client.get("/api/runs/list?sort_by=id&limit=6").get_json()
    for run in first["runs"] + second["runs"]:
        run.pop("id")
    assert first == second
