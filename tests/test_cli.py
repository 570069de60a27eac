"""Flask commands: demo data."""

from __future__ import annotations

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
