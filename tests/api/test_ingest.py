"""Batch writes through the HTTP API: metrics, server evaluations, clients."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from runs_service.extensions import db
from runs_service.models import Client, RunMetric, ServerEvaluation

POINTS = [
    {"metric_name": "train_loss", "metric_value": 0.7, "step": 0},
    {"metric_name": "val_acc", "metric_value": 0.55, "step": 0},
    {"metric_name": "val_cm_tp", "metric_value": 300, "step": 0},
    {"metric_name": "learning_rate", "metric_value": 0.001, "step": 0, "dataset_type": "other"},
    {"metric_name": "custom_thing", "metric_value": -3.5, "step": 1},
]
EVALUATIONS = [
    {"round_number": 0, "loss": 0.69, "accuracy": 0.5},
    {
        "round_number": 1,
        "loss": 0.5,
        "accuracy": 0.8,
        "precision": 0.75,
        "recall": 0.9,
        "f1_score": 0.82,
        "auroc": 0.85,
        "true_positives": 351,
        "true_negatives": 150,
        "false_positives": 84,
        "false_negatives": 39,
        "evaluation_time": "2025-01-01T00:10:00Z",
        "additional_metrics": {"server_specificity": 0.64, "per_class": [0.6, 0.9]},
    },
]


def post(client, auth, run_id, kind, items):
    path = "server-evaluations" if kind == "evaluations" else kind
    return client.post(f"/api/runs/{run_id}/{path}", json={kind: items}, headers=auth)


def raw_metric_body(number_literal: str) -> str:
    """A metric batch whose value is written verbatim (json= cannot send NaN or 1e400)."""
    point = '{"metric_name": "val_loss", "metric_value": ' + number_literal + ', "step": 0}'
    return '{"metrics": [' + point + "]}"


def stored_metrics(app, run_id):
    with app.app_context():
        rows = db.session.execute(
            select(
                RunMetric.metric_name,
                RunMetric.step,
                RunMetric.metric_value,
                RunMetric.dataset_type,
            ).where(RunMetric.run_id == run_id)
        )
        return sorted((name, step, value, kind.value) for name, step, value, kind in rows)


def test_metric_batch_is_stored_with_derived_dataset_types(app, client, auth, create_run):
    run = create_run()
    response = post(client, auth, run["id"], "metrics", POINTS)
    assert response.status_code == 200
    assert response.get_json() == {"inserted": 5, "updated": 0, "unchanged": 0}
    assert stored_metrics(app, run["id"]) == [
        ("custom_thing", 1, -3.5, "other"),
        ("learning_rate", 0, 0.001, "other"),
        ("train_loss", 0, 0.7, "train"),
        ("val_acc", 0, 0.55, "validation"),
        ("val_cm_tp", 0, 300.0, "validation"),
    ]


def test_resending_a_metric_batch_creates_nothing_new(app, client, auth, create_run, row_counts):
    run = create_run()
    post(client, auth, run["id"], "metrics", POINTS)
    before = row_counts()
    response = post(client, auth, run["id"], "metrics", POINTS)
    assert response.get_json() == {"inserted": 0, "updated": 0, "unchanged": 5}
    assert row_counts() == before


def test_writing_a_point_again_replaces_its_value(app, client, auth, create_run):
    run = create_run()
    post(client, auth, run["id"], "metrics", POINTS)
    changed = [dict(POINTS[1], metric_value=0.6), {**POINTS[0], "step": 1}]
    response = post(client, auth, run["id"], "metrics", changed)
    assert response.get_json() == {"inserted": 1, "updated": 1, "unchanged": 0}
    values = {(name, step): value for name, step, value, _ in stored_metrics(app, run["id"])}
    assert values[("val_acc", 0)] == 0.6
    assert len(values) == 6


# Values whose last bit a careless text round trip (JSON, SQL literals) would change.
EXACT_FLOATS = [
    0.1,
    1 / 3,
    2 / 3,
    0.30000000000000004,
    5e-324,
    2.2250738585072014e-308,
    1e-7,
    123456789.12345679,
    9007199254740991.0,
    -9007199254740992.0,
    -2.5,
]


def test_metric_values_come_back_bit_for_bit_and_resending_changes_nothing(
    client, auth, create_run
):
    run_id = create_run("centralized")["id"]
    batch = [
        {"metric_name": "val_loss", "metric_value": value, "step": step}
        for step, value in enumerate(EXACT_FLOATS)
    ]
    assert post(client, auth, run_id, "metrics", batch).status_code == 200
    history = client.get(f"/api/runs/{run_id}/metrics").get_json()["training_history"]
    assert [entry["val_loss"] for entry in history] == EXACT_FLOATS
    again = post(client, auth, run_id, "metrics", batch)
    assert again.get_json() == {"inserted": 0, "updated": 0, "unchanged": len(EXACT_FLOATS)}


def test_client_local_points_are_distinct_from_run_level_points(app, client, auth, create_run):
    run = create_run("federated")
    points = [
        {"metric_name": "train_loss", "metric_value": 0.5, "step": 0},
        {
            "metric_name": "train_loss",
            "metric_value": 0.6,
            "step": 0,
            "client_identifier": "client_0",
            "round_number": 1,
        },
        {
            "metric_name": "train_loss",
            "metric_value": 0.4,
            "step": 0,
            "client_identifier": "client_0",
            "round_number": 2,
        },
    ]
    assert post(client, auth, run["id"], "metrics", points).get_json()["inserted"] == 3
    assert post(client, auth, run["id"], "metrics", points).get_json()["unchanged"] == 3
    with app.app_context():
        clients = db.session.scalars(select(Client.client_identifier)).all()
    # The client was registered on first use.
    assert clients == ["client_0"]


def test_server_evaluations_are_stored_and_num_samples_derived(app, client, auth, create_run):
    run = create_run("federated")
    response = post(client, auth, run["id"], "evaluations", EVALUATIONS)
    assert response.status_code == 200
    assert response.get_json() == {"inserted": 2, "updated": 0, "unchanged": 0}
    with app.app_context():
        rows = db.session.scalars(
            select(ServerEvaluation).order_by(ServerEvaluation.round_number)
        ).all()
        assert [row.num_samples for row in rows] == [None, 624]
        assert rows[0].precision is None  # missing is null, never 0.0
        assert rows[1].additional_metrics == {"server_specificity": 0.64, "per_class": [0.6, 0.9]}
        assert rows[1].evaluation_time.isoformat() == "2025-01-01T00:10:00+00:00"


def test_resending_evaluations_is_unchanged_and_changes_are_updates(
    client, auth, create_run, row_counts
):
    run = create_run("federated")
    post(client, auth, run["id"], "evaluations", EVALUATIONS)
    before = row_counts()
    again = post(client, auth, run["id"], "evaluations", EVALUATIONS)
    assert again.get_json() == {"inserted": 0, "updated": 0, "unchanged": 2}
    changed = [dict(EVALUATIONS[0], loss=0.68), {"round_number": 2, "loss": 0.4}]
    response = post(client, auth, run["id"], "evaluations", changed)
    assert response.get_json() == {"inserted": 1, "updated": 1, "unchanged": 0}
    assert row_counts()["server_evaluations"] == before["server_evaluations"] + 1


def test_client_registration_is_idempotent(client, auth, create_run, row_counts):
    run = create_run("federated")
    clients = [
        {"client_identifier": "client_0", "client_config": {"num_examples": 1200}},
        {"client_identifier": "client_1"},
    ]
    assert post(client, auth, run["id"], "clients", clients).get_json() == {
        "inserted": 2,
        "updated": 0,
        "unchanged": 0,
    }
    assert post(client, auth, run["id"], "clients", clients).get_json()["unchanged"] == 2
    changed = [{"client_identifier": "client_1", "client_config": {"num_examples": 800}}]
    assert post(client, auth, run["id"], "clients", changed).get_json()["updated"] == 1
    assert row_counts()["clients"] == 2


BAD_METRIC_POINTS = [
    pytest.param(
        {"metric_name": "val_acc", "metric_value": 1.5, "step": 0},
        "must lie in [0, 1]",
        id="score-above-one",
    ),
    pytest.param(
        {"metric_name": "val_auc", "metric_value": -0.1, "step": 0},
        "must lie in [0, 1]",
        id="score-below-zero",
    ),
    pytest.param(
        {"metric_name": "val_cm_fn", "metric_value": -1, "step": 0},
        "count",
        id="negative-count",
    ),
    pytest.param(
        {"metric_name": "val_cm_tp", "metric_value": 3.5, "step": 0},
        "count",
        id="fractional-count",
    ),
    pytest.param(
        {"metric_name": "val_loss", "metric_value": 0.5, "step": -1},
        "step",
        id="negative-step",
    ),
    pytest.param(
        {"metric_name": "val_loss", "metric_value": 0.5, "step": 10**6 + 1},
        "step",
        id="step-too-large",
    ),
    pytest.param(
        {"metric_name": "val_loss", "metric_value": 0.5, "step": 1.5},
        "step",
        id="fractional-step",
    ),
    pytest.param(
        {"metric_name": "val_loss", "metric_value": "0.5", "step": 0},
        "metric_value",
        id="number-as-string",
    ),
    pytest.param(
        {"metric_name": "val_loss", "metric_value": 0.5, "step": 0, "colour": "red"},
        "colour",
        id="unknown-field",
    ),
    pytest.param({"metric_name": "", "metric_value": 0.5, "step": 0}, "metric_name", id="no-name"),
    pytest.param({"metric_value": 0.5, "step": 0}, "metric_name", id="missing-name"),
]


@pytest.mark.parametrize(("bad_point", "named"), BAD_METRIC_POINTS)
def test_a_bad_metric_point_rejects_the_whole_batch_naming_it(
    client, auth, create_run, row_counts, bad_point, named
):
    run = create_run()
    before = row_counts()
    batch = [POINTS[0], POINTS[1], bad_point]
    response = post(client, auth, run["id"], "metrics", batch)
    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == 422
    assert "metrics[2]" in body["message"]
    assert named in body["message"]
    assert "2" in body["errors"]["json"]["metrics"]
    assert row_counts() == before


@pytest.mark.parametrize(
    "literal", ["NaN", "Infinity", "-Infinity"], ids=["nan", "inf", "minus-inf"]
)
def test_non_finite_numbers_are_malformed_json(client, auth, create_run, row_counts, literal):
    run = create_run()
    before = row_counts()
    body = raw_metric_body(literal)
    response = client.post(
        f"/api/runs/{run['id']}/metrics",
        data=body,
        content_type="application/json",
        headers=auth,
    )
    assert response.status_code == 400
    assert literal in response.get_json()["message"]
    assert row_counts() == before


@pytest.mark.parametrize("literal", ["1e400", "1" + "0" * 400], ids=["float", "integer"])
def test_numbers_beyond_float_range_are_422(client, auth, create_run, row_counts, literal):
    run = create_run()
    before = row_counts()
    body = raw_metric_body(literal)
    response = client.post(
        f"/api/runs/{run['id']}/metrics", data=body, content_type="application/json", headers=auth
    )
    assert response.status_code == 422
    assert "metrics[0].metric_value" in response.get_json()["message"]
    assert row_counts() == before


def test_deeply_nested_json_is_400_not_500(client, auth, create_run, row_counts):
    run = create_run()
    before = row_counts()
    response = client.post(
        f"/api/runs/{run['id']}/metrics",
        data="[" * 200_000,
        content_type="application/json",
        headers=auth,
    )
    assert response.status_code == 400
    assert "nested" in response.get_json()["message"]
    assert row_counts() == before


def test_malformed_json_is_400(client, auth, create_run):
    run = create_run()
    response = client.post(
        f"/api/runs/{run['id']}/metrics",
        data='{"metrics": [',
        content_type="application/json",
        headers=auth,
    )
    assert response.status_code == 400
    assert response.get_json()["message"].startswith("Malformed JSON body")


def test_duplicate_points_in_one_batch_are_rejected(client, auth, create_run, row_counts):
    run = create_run()
    before = row_counts()
    batch = [POINTS[0], POINTS[1], dict(POINTS[0], metric_value=0.1)]
    response = post(client, auth, run["id"], "metrics", batch)
    assert response.status_code == 422
    assert "metrics[2] repeats" in response.get_json()["message"]
    assert row_counts() == before


def test_batch_over_the_item_limit_is_422(client, auth, create_run, row_counts):
    run = create_run()
    before = row_counts()
    batch = [{"metric_name": "val_loss", "metric_value": 0.5, "step": i} for i in range(10_001)]
    response = post(client, auth, run["id"], "metrics", batch)
    assert response.status_code == 422
    assert "metrics" in response.get_json()["message"]
    assert row_counts() == before


def test_batch_at_the_item_limit_is_accepted(client, auth, create_run):
    run = create_run()
    batch = [{"metric_name": "val_loss", "metric_value": 0.5, "step": i} for i in range(10_000)]
    response = post(client, auth, run["id"], "metrics", batch)
    assert response.get_json() == {"inserted": 10_000, "updated": 0, "unchanged": 0}


def test_empty_batch_is_422(client, auth, create_run):
    run = create_run()
    assert post(client, auth, run["id"], "metrics", []).status_code == 422


@pytest.mark.parametrize("kind", ["metrics", "evaluations", "clients"])
def test_writes_to_an_unknown_run_are_404(client, auth, row_counts, kind):
    items = {
        "metrics": POINTS[:1],
        "evaluations": EVALUATIONS[:1],
        "clients": [{"client_identifier": "c"}],
    }[kind]
    path_kind = "server-evaluations" if kind == "evaluations" else kind
    before = row_counts()
    response = client.post(f"/api/runs/987654/{path_kind}", json={kind: items}, headers=auth)
    assert response.status_code == 404
    assert response.get_json()["message"] == "Run 987654 not found"
    assert row_counts() == before


def test_server_evaluations_for_a_centralized_run_are_409(client, auth, create_run, row_counts):
    run = create_run("centralized")
    before = row_counts()
    response = client.post(
        f"/api/runs/{run['id']}/server-evaluations",
        json={"evaluations": EVALUATIONS},
        headers=auth,
    )
    assert response.status_code == 409
    assert "federated" in response.get_json()["message"]
    assert row_counts() == before


@pytest.mark.parametrize(
    "kind, items",
    [
        ("clients", [{"client_identifier": "client_0"}]),
        (
            "metrics",
            [
                {
                    "metric_name": "train_loss",
                    "metric_value": 0.5,
                    "step": 0,
                    "client_identifier": "client_0",
                }
            ],
        ),
    ],
)
def test_client_data_for_a_centralized_run_is_409(
    client, auth, create_run, row_counts, kind, items
):
    run = create_run("centralized")
    before = row_counts()
    response = client.post(f"/api/runs/{run['id']}/{kind}", json={kind: items}, headers=auth)
    assert response.status_code == 409
    assert row_counts() == before


BAD_EVALUATIONS = [
    pytest.param({"round_number": 1, "accuracy": 1.5}, "accuracy", id="score-above-one"),
    pytest.param({"round_number": 1, "true_positives": -1}, "true_positives", id="negative-count"),
    pytest.param({"round_number": 1, "true_positives": 3.5}, "true_positives", id="fractional"),
    pytest.param({"round_number": -1}, "round_number", id="negative-round"),
    pytest.param({"round_number": 1, "num_samples": 2**31}, "num_samples", id="huge-count"),
    pytest.param({"round_number": 1, "lr": 0.1}, "lr", id="unknown-field"),
    pytest.param(
        {"round_number": 1, "additional_metrics": {"x": "high"}},
        "additional_metrics",
        id="non-numeric-extra",
    ),
    pytest.param(
        {"round_number": 1, "additional_metrics": {"x": {"nested": 1}}},
        "additional_metrics",
        id="nested-extra",
    ),
]


@pytest.mark.parametrize(("bad", "named"), BAD_EVALUATIONS)
def test_a_bad_evaluation_rejects_the_whole_batch_naming_it(
    client, auth, create_run, row_counts, bad, named
):
    run = create_run("federated")
    before = row_counts()
    response = post(client, auth, run["id"], "evaluations", [EVALUATIONS[0], bad])
    assert response.status_code == 422
    message = response.get_json()["message"]
    assert "evaluations[1]" in message
    assert named in message
    assert row_counts() == before


def test_duplicate_rounds_in_one_batch_are_rejected(client, auth, create_run, row_counts):
    run = create_run("federated")
    before = row_counts()
    response = post(client, auth, run["id"], "evaluations", [EVALUATIONS[0], EVALUATIONS[0]])
    assert response.status_code == 422
    assert "evaluations[1] repeats" in response.get_json()["message"]
    assert row_counts() == before


def test_the_batch_read_has_one_text_whatever_the_names_on_postgresql(
    client, auth, create_run, count_statements, is_postgres
):
    """Names go as one array parameter: one prepared statement for every batch, and a
    text short enough for psycopg to cache its placeholder parsing."""
    if not is_postgres:
        pytest.skip("SQLite expands the names into the statement")
    run_id = create_run()["id"]
    texts = []
    for names in (["val_acc"], ["train_loss", "val_loss", "val_acc", "val_f1"]):
        points = [{"metric_name": name, "metric_value": 0.5, "step": 0} for name in names]
        with count_statements() as counter:
            assert post(client, auth, run_id, "metrics", points).status_code == 200
        texts += [statement for statement in counter.statements if " AS kind" in statement]
    assert len(texts) == 2 and texts[0] == texts[1]
    assert len(texts[0]) <= 4096


def test_an_epoch_that_raises_a_best_is_three_statements_on_postgresql(
    client, auth, create_run, count_statements, is_postgres
):
    """Lock the run, read what the batch changes, write it all: the points, their series'
    summaries and blocks, the run's summary and its analytics roll-up in one statement."""
    if not is_postgres:
        pytest.skip("SQLite runs each write as a statement of its own: no round trips")
    run_id = create_run(status="completed")["id"]
    epochs = [
        [
            {"metric_name": "train_loss", "metric_value": 0.7 - 0.1 * step, "step": step},
            {"metric_name": "val_acc", "metric_value": 0.6 + 0.1 * step, "step": step},
            {"metric_name": "val_auroc", "metric_value": 0.7 + 0.1 * step, "step": step},
        ]
        for step in range(3)
    ]
    assert post(client, auth, run_id, "metrics", epochs[0]).status_code == 200
    for points in epochs[1:]:
        with count_statements() as counter:
            assert post(client, auth, run_id, "metrics", points).get_json()["inserted"] == 3
        assert counter.count == 3, counter.statements
    (listed,) = client.get("/api/runs/list").get_json()["runs"]
    assert listed["metrics_count"] == 9
    assert listed["best_val_accuracy"] == pytest.approx(0.8)
    analytics = client.get("/api/runs/analytics/summary").get_json()["centralized"]
    assert analytics["max_accuracy"] == pytest.approx(0.8)
    assert analytics["avg_accuracy"] == pytest.approx(0.8)
