"""Per-series summaries (SPEC §7): kept exact by every write, read without scanning points."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlalchemy import select, update

from runs_service.extensions import db
from runs_service.models import MetricSummary, Run, RunSummary
from runs_service.services.metric_blocks import computed_blocks, stored_blocks
from runs_service.services.metric_summaries import (
    computed_summaries,
    refresh_run_metric_summaries,
    run_series_points,
    same_summary,
    stored_summaries,
)
from runs_service.services.summaries import refresh_run_summary
from tests.helpers import log_evaluations, log_metrics


def summaries(http, run_id: int, **query: Any) -> dict[str, Any]:
    response = http.get(f"/api/runs/{run_id}/metric-summaries", query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {(entry["name"]): entry for entry in body["metrics"]}


def series(name: str, values: dict[int, float], **extra: Any) -> list[dict[str, Any]]:
    return [
        {"metric_name": name, "metric_value": value, "step": step, **extra}
        for step, value in values.items()
    ]


def assert_exact(app, run_id: int) -> None:
    """The stored summaries of a run are those of a recomputation from all its points."""
    with app.app_context():
        expected = computed_summaries(run_id)
        stored = {
            (row.metric_name, row.client_key)
            for row in db.session.execute(
                select(MetricSummary.metric_name, MetricSummary.client_key).where(
                    MetricSummary.run_id == run_id
                )
            )
        }
        assert stored == set(expected)
        actual = stored_summaries(run_id, expected)
        for key, summary in expected.items():
            assert same_summary(actual[key], summary), (key, actual[key], summary)
        expected_blocks = computed_blocks(run_series_points(run_id)[0])
        blocks = stored_blocks(run_id)
        assert set(blocks) == set(expected_blocks)
        for key, block in expected_blocks.items():
            assert same_summary(blocks[key], block), (key, blocks[key], block)


def test_every_field_of_a_series_ties_to_the_earliest_step(app, client, auth, create_run):
    run_id = create_run()["id"]
    # Out of order; val_loss ties its minimum at steps 1 and 2, val_acc its maximum at 0 and 3.
    log_metrics(client, auth, run_id, series("val_loss", {2: 0.3, 0: 0.5, 4: 0.4}))
    log_metrics(client, auth, run_id, series("val_loss", {1: 0.3, 3: 0.6}))
    log_metrics(client, auth, run_id, series("val_acc", {3: 0.9, 1: 0.0, 0: 0.9, 2: 0.5}))
    log_metrics(client, auth, run_id, series("learning_rate", {0: 0.001, 1: 0.0005}))
    body = summaries(client, run_id)
    assert body["run_id"] == run_id
    assert [entry["name"] for entry in body["metrics"]] == ["learning_rate", "val_acc", "val_loss"]
    metrics = by_name(body)
    assert metrics["val_loss"] == {
        "name": "val_loss",
        "client": None,
        "direction": "min",
        "count": 5,
        "mean": 0.42,
        "first": {"step": 0, "value": 0.5},
        "last": {"step": 4, "value": 0.4},
        "min": {"step": 1, "value": 0.3},
        "max": {"step": 3, "value": 0.6},
        "best": {"step": 1, "value": 0.3},
    }
    assert metrics["val_acc"] == {
        "name": "val_acc",
        "client": None,
        "direction": "max",
        "count": 4,
        "mean": 0.575,
        "first": {"step": 0, "value": 0.9},
        "last": {"step": 3, "value": 0.9},
        # A genuine 0.0 is a value.
        "min": {"step": 1, "value": 0.0},
        "max": {"step": 0, "value": 0.9},
        "best": {"step": 0, "value": 0.9},
    }
    assert metrics["learning_rate"]["direction"] is None
    assert metrics["learning_rate"]["best"] is None
    assert metrics["learning_rate"]["min"] == {"step": 1, "value": 0.0005}
    assert_exact(app, run_id)


def test_mean_is_rounded_to_four_places(client, auth, create_run):
    run_id = create_run()["id"]
    log_metrics(client, auth, run_id, series("custom", {0: 1.0, 1: 0.0, 2: 0.0}))
    assert by_name(summaries(client, run_id))["custom"]["mean"] == 0.3333


def test_resent_point_lowering_the_maximum_moves_it(app, client, auth, create_run):
    run_id = create_run()["id"]
    log_metrics(client, auth, run_id, series("val_acc", {0: 0.5, 1: 0.9, 2: 0.7, 3: 0.8}))
    log_metrics(client, auth, run_id, series("val_acc", {1: 0.1}))
    entry = by_name(summaries(client, run_id))["val_acc"]
    assert entry["max"] == {"step": 3, "value": 0.8}
    assert entry["best"] == {"step": 3, "value": 0.8}
    assert entry["min"] == {"step": 1, "value": 0.1}
    assert entry["count"] == 4 and entry["mean"] == 0.525
    # Raising a point that held nothing, and lowering the first one.
    log_metrics(client, auth, run_id, series("val_acc", {2: 0.95, 0: 0.05}))
    entry = by_name(summaries(client, run_id))["val_acc"]
    assert entry["max"] == {"step": 2, "value": 0.95}
    assert entry["first"] == {"step": 0, "value": 0.05}
    assert entry["min"] == {"step": 0, "value": 0.05}
    assert entry["count"] == 4
    assert_exact(app, run_id)


def test_server_series_include_round_zero_and_best_counts_training_rounds(
    app, client, auth, create_run
):
    run_id = create_run("federated")["id"]
    counts = {"true_positives": 8, "true_negatives": 7, "false_positives": 3, "false_negatives": 2}
    log_evaluations(
        client,
        auth,
        run_id,
        [
            {"round_number": 0, "accuracy": 0.99, "loss": 0.05, **counts},
            {
                "round_number": 2,
                "accuracy": 0.7,
                "loss": 0.3,
                "additional_metrics": {"lr": 0.01, "server_custom_loss": 0.2, "hist": [1, 2]},
            },
            {"round_number": 1, "accuracy": 0.5, "loss": 0.6, "additional_metrics": {"lr": 0.02}},
        ],
    )
    metrics = by_name(summaries(client, run_id))
    assert set(metrics) == {
        "server_accuracy",
        "server_loss",
        "server_cm_tp",
        "server_cm_tn",
        "server_cm_fp",
        "server_cm_fn",
        "server_num_samples",
        "server_lr",
        "server_custom_loss",
    }
    accuracy = metrics["server_accuracy"]
    assert accuracy["first"] == {"step": 0, "value": 0.99}
    assert accuracy["max"] == {"step": 0, "value": 0.99}
    assert accuracy["best"] == {"step": 2, "value": 0.7}
    assert accuracy["count"] == 3 and accuracy["direction"] == "max"
    loss = metrics["server_loss"]
    assert loss["min"] == {"step": 0, "value": 0.05}
    assert loss["best"] == {"step": 2, "value": 0.3}
    # Only round 0 has counts: no training round, no best; counts have no direction anyway.
    assert metrics["server_cm_tp"]["best"] is None
    assert metrics["server_num_samples"]["last"] == {"step": 0, "value": 20.0}
    assert metrics["server_lr"]["direction"] is None
    assert metrics["server_lr"]["first"] == {"step": 1, "value": 0.02}
    assert metrics["server_custom_loss"]["best"] == {"step": 2, "value": 0.2}
    assert_exact(app, run_id)


def test_a_series_with_only_round_zero_has_no_best(client, auth, create_run):
    run_id = create_run("federated")["id"]
    log_evaluations(client, auth, run_id, [{"round_number": 0, "accuracy": 0.5}])
    (entry,) = summaries(client, run_id)["metrics"]
    assert entry["name"] == "server_accuracy"
    assert entry["best"] is None
    assert entry["first"] == entry["last"] == entry["max"] == {"step": 0, "value": 0.5}


def test_a_replaced_round_takes_its_old_values_out(app, client, auth, create_run):
    run_id = create_run("federated")["id"]
    log_evaluations(
        client,
        auth,
        run_id,
        [
            {"round_number": 1, "accuracy": 0.6, "loss": 0.5},
            {"round_number": 2, "accuracy": 0.9, "loss": 0.4, "additional_metrics": {"x": 1}},
            {"round_number": 3, "accuracy": 0.7, "loss": 0.45},
        ],
    )
    # A round is a whole record: fields left out are gone, and so are their points.
    log_evaluations(client, auth, run_id, [{"round_number": 2, "loss": 0.8}])
    metrics = by_name(summaries(client, run_id))
    assert metrics["server_accuracy"]["count"] == 2
    assert metrics["server_accuracy"]["best"] == {"step": 3, "value": 0.7}
    assert metrics["server_loss"]["max"] == {"step": 2, "value": 0.8}
    assert metrics["server_loss"]["best"] == {"step": 3, "value": 0.45}
    assert "server_x" not in metrics
    # The run's own best (the list) follows.
    (listed,) = client.get("/api/runs/list").get_json()["runs"]
    assert listed["best_val_accuracy"] == 0.7
    assert_exact(app, run_id)


def test_client_series_are_apart_from_run_level_ones(app, client, auth, create_run):
    run_id = create_run("federated")["id"]
    log_metrics(client, auth, run_id, series("train_loss", {1: 0.5, 2: 0.4}))
    for name, values in (("b", {1: 0.7, 2: 0.6}), ("a", {1: 0.9, 2: 0.2})):
        log_metrics(client, auth, run_id, series("train_loss", values, client_identifier=name))
    log_metrics(
        client,
        auth,
        run_id,
        series("val_acc", {1: 0.8}, client_identifier="a", round_number=1),
    )
    run_level = summaries(client, run_id)["metrics"]
    assert [(entry["name"], entry["client"]) for entry in run_level] == [("train_loss", None)]
    client_a = summaries(client, run_id, client="a")["metrics"]
    assert [(entry["name"], entry["client"]) for entry in client_a] == [
        ("train_loss", "a"),
        ("val_acc", "a"),
    ]
    assert client_a[0]["best"] == {"step": 2, "value": 0.2}
    only = summaries(client, run_id, client="b", names="train_loss,val_acc")["metrics"]
    assert [(entry["name"], entry["client"], entry["count"]) for entry in only] == [
        ("train_loss", "b", 2)
    ]
    assert summaries(client, run_id, client="nobody")["metrics"] == []
    assert_exact(app, run_id)


def test_names_filter_keeps_name_order(client, auth, create_run):
    run_id = create_run()["id"]
    for name in ("val_loss", "b", "a", "val_acc"):
        log_metrics(client, auth, run_id, series(name, {0: 0.5}))
    body = summaries(client, run_id, names="val_acc,a,zzz,a")
    assert [entry["name"] for entry in body["metrics"]] == ["a", "val_acc"]


def test_at_best_of_gives_every_metric_at_that_epoch(client, auth, create_run):
    run_id = create_run()["id"]
    log_metrics(
        client,
        auth,
        run_id,
        [
            *series("val_loss", {0: 0.5, 1: 0.2, 2: 0.2, 3: 0.4}),
            *series("val_acc", {0: 0.6, 1: 0.8, 2: 0.85, 3: 0.9}),
            *series("learning_rate", {0: 0.1, 2: 0.05}),
        ],
    )
    body = summaries(client, run_id, at_best_of="val_loss")
    assert body["at_best"] == {
        "name": "val_loss",
        "step": 1,
        "values": {"val_acc": 0.8, "learning_rate": None},
    }
    assert len(body["metrics"]) == 3
    narrowed = summaries(client, run_id, at_best_of="val_acc", names="val_acc,learning_rate")
    assert narrowed["at_best"] == {"name": "val_acc", "step": 3, "values": {"learning_rate": None}}
    # No direction, or no such series: no best to stand at.
    assert summaries(client, run_id, at_best_of="learning_rate")["at_best"] is None
    assert summaries(client, run_id, at_best_of="missing")["at_best"] is None
    assert "at_best" not in summaries(client, run_id)


def test_at_best_of_a_server_series_reads_that_round(client, auth, create_run):
    run_id = create_run("federated")["id"]
    log_evaluations(
        client,
        auth,
        run_id,
        [
            {"round_number": 0, "loss": 0.1, "accuracy": 0.5},
            {"round_number": 1, "loss": 0.3, "accuracy": 0.7},
            {"round_number": 2, "loss": 0.4, "accuracy": 0.8},
        ],
    )
    log_metrics(client, auth, run_id, series("train_loss", {1: 0.35, 2: 0.3}))
    body = summaries(client, run_id, at_best_of="server_loss")
    assert body["at_best"] == {
        "name": "server_loss",
        "step": 1,
        "values": {"server_accuracy": 0.7, "train_loss": 0.35},
    }


def test_run_without_metrics_answers_an_empty_list(client, create_run):
    run_id = create_run()["id"]
    assert summaries(client, run_id) == {"run_id": run_id, "metrics": []}


def test_missing_run_is_404(client):
    for run_id in (999_999, 2**31 - 1, 2**40):
        response = client.get(f"/api/runs/{run_id}/metric-summaries")
        assert response.status_code == 404
        assert response.get_json()["code"] == 404


@pytest.mark.parametrize(
    "query",
    [
        {"names": ""},
        {"names": "a,,b"},
        {"names": ",".join(f"m{i}" for i in range(51))},
        {"names": "x" * 136},
        {"client": ""},
        {"client": "c" * 256},
        {"at_best_of": ""},
        {"at_best_of": "y" * 136},
        {"page": "2"},
    ],
)
def test_invalid_parameter_is_422_naming_it(client, create_run, query):
    run_id = create_run()["id"]
    response = client.get(f"/api/runs/{run_id}/metric-summaries", query_string=query)
    assert response.status_code == 422
    body = response.get_json()
    (name,) = query
    assert name in body["errors"]["query"]
    assert name in body["message"]


def test_fifty_names_are_accepted(client, create_run):
    run_id = create_run()["id"]
    names = ",".join(f"m{i}" for i in range(50))
    assert summaries(client, run_id, names=names)["metrics"] == []


def test_reading_never_touches_the_points(app, client, auth, create_run, count_statements):
    """The statement count and text do not depend on the number of points."""
    counted = []
    for epochs in (3, 300):
        run_id = create_run()["id"]
        log_metrics(
            client,
            auth,
            run_id,
            [
                p
                for step in range(epochs)
                for p in series("val_acc", {step: 0.5}) + series("val_loss", {step: 0.1})
            ],
        )
        with count_statements() as counter:
            summaries(client, run_id)
        assert not any("run_metrics" in statement for statement in counter.statements)
        counted.append(counter.count)
    # The summaries alone: stored series prove the run exists, so its row is not read.
    assert counted == [1, 1]


def test_metric_names_counts_runs_per_run_level_name(client, auth, create_run):
    first = create_run()["id"]
    second = create_run("federated")["id"]
    log_metrics(client, auth, first, series("val_acc", {0: 0.5}) + series("lr_custom", {0: 1}))
    log_metrics(client, auth, second, series("val_acc", {0: 0.5}))
    log_metrics(client, auth, second, series("only_client", {0: 1.0}, client_identifier="a"))
    log_evaluations(client, auth, second, [{"round_number": 1, "loss": 0.3}])
    response = client.get("/api/runs/metric-names")
    assert response.status_code == 200
    assert response.get_json() == {
        "names": [
            {"name": "lr_custom", "direction": None, "runs": 1},
            {"name": "server_loss", "direction": "min", "runs": 1},
            {"name": "val_acc", "direction": "max", "runs": 2},
        ]
    }


def test_random_writes_keep_every_summary_exact(app, client, auth, create_run):
    """Batches in any order, re-sent and changed points, replaced rounds: always exact."""
    rng = random.Random(20261130)
    names = ["val_acc", "val_loss", "learning_rate", "server_accuracy", "custom"]
    for mode in ("centralized", "federated", "federated"):
        run_id = create_run(mode)["id"]
        for _ in range(8):
            batch = {}
            for _ in range(rng.randint(1, 12)):
                name = rng.choice(names)
                step = rng.randint(0, 5)
                extra = {}
                if mode == "federated" and rng.random() < 0.4:
                    extra["client_identifier"] = rng.choice(["a", "b"])
                if mode == "federated" and rng.random() < 0.2:
                    extra["round_number"] = rng.randint(0, 2)
                value = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0])
                key = (name, step, extra.get("client_identifier"), extra.get("round_number"))
                batch[key] = {"metric_name": name, "metric_value": value, "step": step, **extra}
            log_metrics(client, auth, run_id, list(batch.values()))
            if mode == "federated":
                rounds = rng.sample(range(4), rng.randint(1, 3))
                log_evaluations(
                    client,
                    auth,
                    run_id,
                    [
                        {
                            "round_number": number,
                            **{
                                field: rng.choice([0.25, 0.5, 0.75])
                                for field in ("accuracy", "loss", "recall")
                                if rng.random() < 0.6
                            },
                            "additional_metrics": {"k": rng.choice([1, 2, 3])}
                            if rng.random() < 0.5
                            else None,
                        }
                        for number in rounds
                    ],
                )
            assert_exact(app, run_id)


def test_random_writes_over_many_blocks_keep_every_block_exact(app, client, auth, create_run):
    """Points spread over several 32-step blocks, re-sent higher and lower: blocks exact."""
    rng = random.Random(64)
    run_id = create_run("federated")["id"]
    for _ in range(10):
        batch = {}
        for _ in range(rng.randint(1, 60)):
            name = rng.choice(["val_loss", "custom"])
            step = rng.randint(0, 400)
            extra = {"client_identifier": "a"} if rng.random() < 0.3 else {}
            if rng.random() < 0.2:
                extra["round_number"] = rng.randint(0, 2)
            value = rng.choice([-1.0, 0.0, 0.5, 0.5, 1.0, 2.0])
            key = (name, step, extra.get("client_identifier"), extra.get("round_number"))
            batch[key] = {"metric_name": name, "metric_value": value, "step": step, **extra}
        log_metrics(client, auth, run_id, list(batch.values()))
        assert_exact(app, run_id)
    with app.app_context():
        assert refresh_run_metric_summaries(run_id) == (0, 0)


def test_refresh_summaries_changes_nothing_when_right_and_repairs_otherwise(
    app, runner, client, auth, create_run
):
    run_id = create_run("federated")["id"]
    log_metrics(client, auth, run_id, series("val_acc", {0: 0.5, 1: 0.7}))
    log_metrics(client, auth, run_id, series("train_loss", {0: 0.5}, client_identifier="a"))
    log_evaluations(client, auth, run_id, [{"round_number": 1, "accuracy": 0.6}])

    def table() -> list[tuple]:
        with app.app_context():
            rows = db.session.execute(select(MetricSummary.__table__))
            return sorted(tuple(row) for row in rows)

    before = table()
    result = runner.invoke(args=["refresh-summaries"])
    assert result.exit_code == 0, result.output
    assert "0 series summaries rewritten" in result.output
    assert table() == before
    with app.app_context():
        db.session.execute(update(MetricSummary).values(max_value=42.0, best_value=None))
        db.session.execute(
            MetricSummary.__table__.delete().where(MetricSummary.metric_name == "train_loss")
        )
        db.session.commit()
    result = runner.invoke(args=["refresh-summaries"])
    assert "3 series summaries rewritten" in result.output
    assert table() == before
    with app.app_context():
        assert refresh_run_metric_summaries(run_id) == (0, 0)


def assert_run_summary_as_rebuilt(app, run_id: int) -> None:
    """The incrementally kept run summary equals a rebuild from the whole history."""
    columns = [c for c in RunSummary.__table__.columns if c.name != "updated_at"]
    with app.app_context():
        kept = db.session.execute(select(*columns).where(RunSummary.run_id == run_id)).one()
        refresh_run_summary(db.session.get(Run, run_id))
        rebuilt = db.session.execute(select(*columns).where(RunSummary.run_id == run_id)).one()
        db.session.rollback()
    assert kept._asdict() == rebuilt._asdict()


def test_run_summary_kept_per_batch_equals_a_rebuild(app, client, auth, create_run):
    """Epoch by epoch, re-sent epochs, counts past the final epoch, aliases, rounds."""
    rng = random.Random(7)
    names = ["val_acc", "val_accuracy", "val_recall", "val_auroc", "val_auc", "train_loss"]
    counts = ["val_cm_tp", "val_cm_tn", "val_cm_fp", "val_cm_fn"]
    for _ in range(4):
        run_id = create_run()["id"]
        for _ in range(10):
            step = rng.randint(0, 6)
            chosen = rng.sample(names, rng.randint(0, 3)) + rng.sample(counts, rng.randint(0, 4))
            if not chosen:
                continue
            batch = [
                {
                    "metric_name": name,
                    "metric_value": float(rng.randint(0, 9)) if "_cm_" in name else rng.random(),
                    "step": step,
                }
                for name in chosen
            ]
            log_metrics(client, auth, run_id, batch)
            assert_run_summary_as_rebuilt(app, run_id)
    run_id = create_run("federated")["id"]
    for _ in range(8):
        rounds = rng.sample(range(5), rng.randint(1, 3))
        evaluations = []
        for number in rounds:
            evaluation = {"round_number": number}
            for field in ("accuracy", "recall", "precision", "f1_score", "auroc"):
                if rng.random() < 0.6:
                    evaluation[field] = rng.random()
            if rng.random() < 0.5:
                evaluation.update(
                    true_positives=rng.randint(0, 9),
                    true_negatives=rng.randint(0, 9),
                    false_positives=rng.randint(0, 9),
                    false_negatives=rng.randint(0, 9),
                )
            evaluations.append(evaluation)
        log_evaluations(client, auth, run_id, evaluations)
        assert_run_summary_as_rebuilt(app, run_id)
        log_metrics(
            client,
            auth,
            run_id,
            series("val_acc", {1: 0.9}, client_identifier=f"c{rng.randint(0, 3)}"),
        )
        assert_run_summary_as_rebuilt(app, run_id)


def test_server_names_of_a_federated_run_are_its_evaluations(app, client, auth, create_run):
    """A run-level metric logged as server_* joins no series there; elsewhere it is one."""
    federated = create_run("federated")["id"]
    log_evaluations(client, auth, federated, [{"round_number": 1, "accuracy": 0.6}])
    log_metrics(client, auth, federated, series("server_accuracy", {1: 0.99, 2: 0.98}))
    (entry,) = summaries(client, federated)["metrics"]
    assert entry["count"] == 1 and entry["best"] == {"step": 1, "value": 0.6}
    (listed,) = [r for r in client.get("/api/runs/list").get_json()["runs"] if r["id"] == federated]
    assert listed["best_val_accuracy"] == 0.6
    assert_exact(app, federated)
    centralized = create_run()["id"]
    log_metrics(client, auth, centralized, series("server_accuracy", {1: 0.99}))
    (entry,) = summaries(client, centralized)["metrics"]
    assert entry["best"] == {"step": 1, "value": 0.99}
