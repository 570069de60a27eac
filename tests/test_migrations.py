"""The migrations build the schema from nothing, and agree with the models."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from runs_service.extensions import db
from runs_service.models import Client, Run, RunMetric, ServerEvaluation
from runs_service.models.types import include_object_for, utc_now
from runs_service.services.metric_blocks import computed_blocks, stored_blocks
from runs_service.services.metric_summaries import (
    computed_summaries,
    run_series_points,
    same_summary,
    stored_summaries,
)
from tests.helpers import create_postgres_database, make_app


def empty_database(tmp_path, name: str, is_postgres: bool) -> tuple[str, Callable[[], None]]:
    """The URL of a database of the session's kind with nothing in it, and how to drop it."""
    if is_postgres:
        return create_postgres_database(os.environ["RUNS_TEST_DATABASE_URL"])
    return f"sqlite:///{tmp_path / name}.db", lambda: None


def test_models_and_migrations_agree(app):
    """No autogenerate drift: a model change without a revision fails here."""
    with app.app_context(), db.engine.connect() as connection:
        include_object = include_object_for(connection.dialect.name)
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": include_object}
        )
        assert compare_metadata(context, db.metadata) == []


def test_upgrade_builds_the_schema_from_nothing_and_downgrade_removes_it(
    database_url, tmp_path, is_postgres
):
    url, drop = empty_database(tmp_path, "fresh", is_postgres)
    app = make_app(url, tmp_path)
    try:
        with app.app_context():
            upgrade()
            tables = set(inspect(db.engine).get_table_names())
            assert {"runs", "clients", "run_metrics", "server_evaluations"} <= tables
            downgrade(revision="base")
            assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
            db.engine.dispose()
    finally:
        drop()


def test_metric_summaries_revision_fills_them_from_existing_points(
    database_url, tmp_path, is_postgres
):
    """Data written before 0004, then the upgrade: every series summary as recomputed."""
    url, drop = empty_database(tmp_path, "before", is_postgres)
    app = make_app(url, tmp_path)
    rng = random.Random(3)
    try:
        with app.app_context():
            upgrade(revision="0003")
            runs = [
                {"id": number, "training_mode": mode, "status": "completed"}
                for number, mode in enumerate(["centralized", "federated", "federated"], 1)
            ]
            for run in runs:
                run["start_time"] = utc_now()
            db.session.execute(Run.__table__.insert(), runs)
            db.session.execute(
                Client.__table__.insert(),
                [{"id": 7, "run_id": 2, "client_identifier": "a", "created_at": utc_now()}],
            )
            points = {}
            for _ in range(120):
                run_id = rng.choice([1, 2, 3])
                client = 7 if run_id == 2 and rng.random() < 0.3 else None
                round_number = rng.choice([None, 1, 2]) if run_id != 1 else None
                name = rng.choice(["val_acc", "val_loss", "learning_rate", "server_auc", "x"])
                key = (run_id, name, rng.randint(0, 9), client, round_number)
                points[key] = rng.choice([0.0, 0.1, 0.5, 0.5, 0.9, -2.0])
            db.session.execute(
                RunMetric.__table__.insert(),
                [
                    {
                        "run_id": run_id,
                        "metric_name": name,
                        "step": step,
                        "client_id": client,
                        "round_number": round_number,
                        "metric_value": value,
                        "dataset_type": "other",
                    }
                    for (run_id, name, step, client, round_number), value in points.items()
                ],
            )
            evaluations = []
            for run_id in (2, 3):
                for round_number in range(5):
                    evaluations.append(
                        {
                            "run_id": run_id,
                            "round_number": round_number,
                            "accuracy": rng.choice([None, 0.5, 0.7, 0.7]),
                            "loss": rng.choice([None, 0.2, 0.3]),
                            "true_positives": rng.choice([None, 3]),
                            "num_samples": 10,
                            "additional_metrics": rng.choice(
                                [
                                    None,
                                    {"lr": 0.1, "hist": [1, 2], "flag": True},
                                    {"server_custom": 2, "loss": 9.0, "accuracy": 1},
                                ]
                            ),
                        }
                    )
            db.session.execute(ServerEvaluation.__table__.insert(), evaluations)
            db.session.commit()
            upgrade()
            for run in runs:
                expected = computed_summaries(run["id"])
                assert expected
                actual = stored_summaries(run["id"], expected)
                assert set(actual) == set(expected)
                for key, summary in expected.items():
                    assert same_summary(actual[key], summary), (key, actual[key], summary)
            stored_count = db.session.execute(
                text("SELECT count(*) FROM metric_summaries")
            ).scalar_one()
            assert stored_count == sum(len(computed_summaries(run["id"])) for run in runs)
            db.session.remove()
            db.engine.dispose()
    finally:
        drop()


def test_analytics_rollups_revision_fills_them_from_existing_runs(
    database_url, tmp_path, is_postgres
):
    """Runs and summaries written before 0007, then the upgrade: the roll-ups as rebuilt."""
    from runs_service.models import RunSummary
    from runs_service.services.rollups import computed_rollups, rebuild_rollups

    url, drop = empty_database(tmp_path, "before_rollups", is_postgres)
    app = make_app(url, tmp_path)
    rng = random.Random(7)
    try:
        with app.app_context():
            upgrade(revision="0006")
            start = utc_now()
            runs, summaries = [], []
            for number in range(1, 41):
                status = rng.choice(["completed", "failed", "in_progress"])
                begin = start - timedelta(hours=rng.randint(0, 72), microseconds=number)
                end = None if status == "in_progress" else begin + timedelta(minutes=number)
                runs.append(
                    {
                        "id": number,
                        "training_mode": rng.choice(["centralized", "federated"]),
                        "status": status,
                        "start_time": begin,
                        "end_time": end,
                    }
                )
                summaries.append(
                    {
                        "run_id": number,
                        "metrics_count": 0,
                        "best_accuracy": rng.choice([None, 0.25, 0.9, rng.random()]),
                        "best_recall": rng.choice([None, rng.random()]),
                        "has_server_evaluation": False,
                        "num_rounds": 0,
                        "registered_clients": 0,
                        "updated_at": start,
                    }
                )
            runs.append(
                {
                    "id": 41,
                    "training_mode": "federated",
                    "status": "failed",
                    "start_time": start,
                    "end_time": start,
                }
            )  # no summary
            db.session.execute(Run.__table__.insert(), runs)
            db.session.execute(RunSummary.__table__.insert(), summaries)
            db.session.commit()
            upgrade()
            assert sum(group["runs"] for group in computed_rollups().values()) == 41
            assert rebuild_rollups() == 0
            db.engine.dispose()
    finally:
        drop()


def test_metric_blocks_revision_fills_them_from_existing_points(
    database_url, tmp_path, is_postgres
):
    """Points written before 0008, then the upgrade: every block as a recomputation has it."""
    url, drop = empty_database(tmp_path, "before_blocks", is_postgres)
    app = make_app(url, tmp_path)
    rng = random.Random(8)
    try:
        with app.app_context():
            upgrade(revision="0006")
            runs = [
                {"id": 1, "training_mode": "centralized", "status": "completed"},
                {"id": 2, "training_mode": "federated", "status": "completed"},
            ]
            for run in runs:
                run["start_time"] = utc_now()
            db.session.execute(Run.__table__.insert(), runs)
            db.session.execute(
                Client.__table__.insert(),
                [{"id": 7, "run_id": 2, "client_identifier": "a", "created_at": utc_now()}],
            )
            points = {}
            for _ in range(400):
                run_id = rng.choice([1, 2])
                client = 7 if run_id == 2 and rng.random() < 0.3 else None
                round_number = rng.choice([None, 1, 2]) if run_id == 2 else None
                name = rng.choice(["val_loss", "server_auc", "x"])
                key = (run_id, name, rng.randint(0, 300), client, round_number)
                points[key] = rng.choice([0.0, 0.1, 0.5, 0.5, 0.9, -2.0])
            db.session.execute(
                RunMetric.__table__.insert(),
                [
                    {
                        "run_id": run_id,
                        "metric_name": name,
                        "step": step,
                        "client_id": client,
                        "round_number": round_number,
                        "metric_value": value,
                        "dataset_type": "other",
                    }
                    for (run_id, name, step, client, round_number), value in points.items()
                ],
            )
            db.session.commit()
            upgrade()
            for run in runs:
                expected = computed_blocks(run_series_points(run["id"])[0])
                assert len(expected) > 5
                stored = stored_blocks(run["id"])
                assert set(stored) == set(expected)
                for key, block in expected.items():
                    assert same_summary(stored[key], block), (key, stored[key], block)
            # The federated run's run-level server_auc points are no metric series.
            assert ("server_auc", 0) not in {key[:2] for key in stored_blocks(2)}
            db.session.remove()
            db.engine.dispose()
    finally:
        drop()


def test_run_summary_training_mode_revision_copies_each_runs_mode(
    database_url, tmp_path, is_postgres
):
    """Summaries written before 0009, then the upgrade: each holds its run's mode, which
    is required and checked from then on."""
    from sqlalchemy.exc import IntegrityError

    from runs_service.models import RunSummary

    url, drop = empty_database(tmp_path, "before_summary_mode", is_postgres)
    app = make_app(url, tmp_path)
    rng = random.Random(9)
    modes = {number: rng.choice(["centralized", "federated"]) for number in range(1, 31)}
    try:
        with app.app_context():
            upgrade(revision="0008")
            db.session.execute(
                Run.__table__.insert(),
                [
                    {"id": number, "training_mode": mode, "status": "completed"}
                    | {"start_time": utc_now()}
                    for number, mode in modes.items()
                ],
            )
            db.session.execute(
                RunSummary.__table__.insert(),
                [
                    {
                        "run_id": number,
                        "metrics_count": 0,
                        "best_accuracy": rng.choice([None, rng.random()]),
                        "has_server_evaluation": False,
                        "num_rounds": 0,
                        "registered_clients": 0,
                        "updated_at": utc_now(),
                    }
                    for number in modes
                ],
            )
            db.session.commit()
            upgrade()
            stored = dict(
                db.session.execute(text("SELECT run_id, training_mode FROM run_summaries")).all()
            )
            assert stored == modes
            for wrong in (None, "both"):
                with pytest.raises(IntegrityError):
                    db.session.execute(
                        text("UPDATE run_summaries SET training_mode = :mode WHERE run_id = 1"),
                        {"mode": wrong},
                    )
                db.session.rollback()
            db.session.remove()
            db.engine.dispose()
    finally:
        drop()


def test_rollups_without_rowid_revision_keeps_every_row(database_url, tmp_path, is_postgres):
    """0010 rebuilds SQLite's roll-ups with the primary key as the table, rows included,
    and its downgrade gives the rowid back; PostgreSQL's table is left as it was."""
    from sqlalchemy.exc import OperationalError

    from runs_service.models import AnalyticsRollup
    from runs_service.services.rollups import SUM_COLUMNS

    url, drop = empty_database(tmp_path, "before_rollups_without_rowid", is_postgres)
    app = make_app(url, tmp_path)
    rng = random.Random(10)
    day = utc_now().date()
    rows = [
        {
            "training_mode": mode,
            "status": status,
            "start_day": day - timedelta(days=offset),
            "shard": shard,
            # Counts are INTEGER, sums BIGINT.
            **{
                column: rng.randrange(1, 10**15 if column.endswith("_sum") else 10**6)
                for column in SUM_COLUMNS
            },
            "max_accuracy": rng.choice([None, rng.random()]),
        }
        for mode in ("centralized", "federated")
        for status, shards in (("completed", [0]), ("in_progress", [0, 3, 7]))
        for offset in range(5)
        for shard in shards
    ]
    columns = ", ".join(rows[0])
    read_all = text(f"SELECT {columns} FROM analytics_rollups ORDER BY {columns}")

    def has_rowid() -> bool:
        try:
            db.session.execute(text("SELECT rowid FROM analytics_rollups")).all()
            return True
        except OperationalError:
            return False
        finally:
            db.session.remove()

    try:
        with app.app_context():
            upgrade(revision="0009")
            db.session.execute(AnalyticsRollup.__table__.insert(), rows)
            db.session.commit()

            def stored() -> list:
                # Outside a request SQLite's transactions take the write lock: end each
                # read before the migration's own connection writes.
                found = db.session.execute(read_all).all()
                db.session.remove()
                return found

            before = stored()
            assert len(before) == len(rows)
            upgrade(revision="0010")
            assert stored() == before
            if not is_postgres:
                assert not has_rowid()
                downgrade(revision="0009")
                assert stored() == before
                assert has_rowid()
            db.session.remove()
            db.engine.dispose()
    finally:
        drop()
