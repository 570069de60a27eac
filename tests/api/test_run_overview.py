"""A run's overview from stored summaries equals the one derived from its whole history.

services.overview reads the per-series summaries and the run's summary; services.results
derives ExperimentResults from every point. The pages show the former, so both must give
the same numbers for every shape of run: gaps, aliases, counts past the final epoch,
federated runs with round 0 only, re-sent points, and random histories.
"""

from __future__ import annotations

import random

import pytest

from runs_service.extensions import db
from runs_service.models import Run
from runs_service.services.overview import overview_of_view, run_overview, run_overviews
from runs_service.services.results import load_run_results
from tests.helpers import log_evaluations, log_metrics, points

HISTORY_NAMES = ("train_loss", "val_loss", "train_acc", "val_acc", "val_recall", "val_auroc")
COUNTS = ("val_cm_tp", "val_cm_tn", "val_cm_fp", "val_cm_fn")


def from_history(app, run_id: int) -> dict:
    with app.app_context():
        loaded = load_run_results(run_id)
        return overview_of_view(loaded.run, loaded.view)


def from_summaries(app, run_id: int) -> dict:
    with app.app_context():
        return run_overview(run_id)


def assert_same(app, run_id: int) -> dict:
    expected, found = from_history(app, run_id), from_summaries(app, run_id)
    for key in ("total_epochs", "final_metrics", "bests", "confusion_matrix", "duration_minutes"):
        assert found[key] == expected[key], (run_id, key)
    return found


def cm(step: int, tp: int = 30, tn: int = 20, fp: int = 3, fn: int = 4) -> list[dict]:
    return points(step, val_cm_tp=tp, val_cm_tn=tn, val_cm_fp=fp, val_cm_fn=fn)


CENTRALIZED_CASES = {
    "empty": [],
    "contiguous": [p for s in range(5) for p in points(s, val_acc=0.5 + s / 20, val_loss=1 - s / 9)]
    + cm(4),
    "starts at step 3": [p for s in range(3, 7) for p in points(s, val_acc=0.6, train_loss=0.5)],
    "ties go to the earliest epoch": [p for s in range(4) for p in points(s, val_acc=0.7)],
    "series of different lengths": [
        *[p for s in range(6) for p in points(s, train_loss=1 / (s + 1))],
        *[p for s in range(4) for p in points(s, val_acc=0.5 + s / 10, val_loss=0.9 - s / 10)],
        *cm(3),
    ],
    "holes in every series": [
        *points(0, val_acc=0.5),
        *points(2, train_loss=0.4),
        *points(100, val_acc=0.8, val_loss=0.3),
        *points(250, train_loss=0.2),
    ],
    "alias only": [p for s in range(3) for p in points(s, val_accuracy=0.5 + s / 10, val_auc=0.7)],
    "name and alias": [
        *[p for s in range(3) for p in points(s, val_acc=0.5 + s / 10)],
        *points(1, val_accuracy=0.99),
        *points(3, val_accuracy=0.4),
    ],
    "counts past the final epoch": [
        *[p for s in range(3) for p in points(s, val_acc=0.5) + cm(s, fn=s)],
        *cm(5, fn=9),
    ],
    "counts alone": cm(0) + cm(1),
    "incomplete counts at the final epoch": [
        *cm(0),
        *points(1, val_acc=0.6, val_cm_tp=10, val_cm_tn=10),
    ],
}


@pytest.mark.parametrize("case", sorted(CENTRALIZED_CASES))
def test_centralized_overview_matches_the_history(app, client, auth, create_run, case):
    run = create_run("centralized")
    batch = CENTRALIZED_CASES[case]
    if batch:
        log_metrics(client, auth, run["id"], batch)
    assert_same(app, run["id"])


def test_resent_points_that_lower_a_best_keep_the_overview_exact(app, client, auth, create_run):
    run = create_run("centralized")
    log_metrics(client, auth, run["id"], [p for s in range(4) for p in points(s, val_acc=0.9)])
    log_metrics(client, auth, run["id"], points(0, val_acc=0.1) + points(3, val_acc=0.2))
    found = assert_same(app, run["id"])
    assert found["bests"]["best_val_accuracy"] == 0.9 and found["bests"]["best_epoch"] == 2


FEDERATED_CASES = {
    "no evaluation": [],
    "round 0 only": [{"round_number": 0, "loss": 0.7, "accuracy": 0.5}],
    "rounds with counts": [
        {
            "round_number": r,
            "loss": 0.7 - r / 20,
            "accuracy": 0.5 + r / 20,
            "recall": 0.9 if r == 2 else 0.6,
            "true_positives": 30 + r,
            "true_negatives": 20,
            "false_positives": 3,
            "false_negatives": 4,
        }
        for r in range(5)
    ],
    "latest round without some metrics": [
        {"round_number": 0, "accuracy": 0.95},
        {"round_number": 1, "accuracy": 0.6, "loss": 0.5, "auroc": 0.7},
        {"round_number": 2, "accuracy": 0.7},
    ],
}


@pytest.mark.parametrize("case", sorted(FEDERATED_CASES))
def test_federated_overview_matches_the_history(app, client, auth, create_run, case):
    run = create_run("federated")
    if FEDERATED_CASES[case]:
        log_evaluations(client, auth, run["id"], FEDERATED_CASES[case])
    assert_same(app, run["id"])


def test_random_histories_give_the_same_overview(app, client, auth, create_run):
    rng = random.Random(14)
    for _ in range(25):
        run = create_run("centralized")
        names = rng.sample((*HISTORY_NAMES, "val_accuracy", "val_auc"), rng.randint(1, 5))
        steps = sorted(rng.sample(range(40), rng.randint(1, 15)))
        batch = [
            {"metric_name": name, "metric_value": round(rng.random(), 2), "step": step}
            for step in steps
            for name in names
            if rng.random() < 0.8
        ]
        if rng.random() < 0.7:
            batch += cm(rng.choice(steps), fn=rng.randint(0, 9))
        if batch:
            log_metrics(client, auth, run["id"], batch)
        assert_same(app, run["id"])


def test_demo_runs_give_the_same_overview_also_after_a_backfill(app, client, runner, auth):
    assert runner.invoke(args=["demo-data"]).exit_code == 0
    with app.app_context():
        run_ids = db.session.scalars(db.select(Run.id).order_by(Run.id)).all()
    for run_id in run_ids:
        assert_same(app, run_id)
    # The first demo run's evaluations are in its results file only, until a backfill.
    answer = client.post(f"/api/runs/backfill/{run_ids[0]}/server-evaluations", headers=auth)
    assert answer.status_code == 200, answer.get_json()
    assert assert_same(app, run_ids[0])["total_epochs"] > 0


def test_overviews_of_many_runs_take_a_fixed_number_of_statements(
    app, client, auth, create_run, count_statements
):
    run_ids = []
    for mode in ("centralized", "federated") * 3:
        run = create_run(mode)
        run_ids.append(run["id"])
        if mode == "centralized":
            batch = [p for s in range(50) for p in cm(s) + points(s, val_acc=0.5, val_loss=0.4)]
            log_metrics(client, auth, run["id"], batch)
        else:
            log_evaluations(client, auth, run["id"], FEDERATED_CASES["rounds with counts"])
    with app.app_context(), count_statements() as counter:
        overviews = run_overviews([*run_ids, 999_999, 2**40])
    assert sorted(overviews) == sorted(run_ids)
    assert counter.count == 3
