"""GET /api/runs/{id}/metric-history, /clients and /api/runs/compare (SPEC §7)."""

from __future__ import annotations

import pytest

from tests.helpers import log_evaluations, log_metrics, points


def _history(http, run_id: int, **query) -> dict:
    response = http.get(f"/api/runs/{run_id}/metric-history", query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _by_name(answer: dict) -> dict[str, dict]:
    return {series["name"]: series for series in answer["series"]}


@pytest.fixture
def centralized(client, auth, create_run) -> int:
    run_id = create_run()["id"]
    batch = []
    for step in range(10):
        batch += points(step, train_loss=1.0 / (step + 1), val_acc=step / 10)
    batch += points(3, my_custom_metric=42.5)
    log_metrics(client, auth, run_id, batch)
    return run_id


@pytest.fixture
def federated(client, auth, create_run) -> int:
    run_id = create_run("federated")["id"]
    response = client.post(
        f"/api/runs/{run_id}/clients",
        json={
            "clients": [
                {"client_identifier": "hospital-b", "client_config": {"lr": 0.1}},
                {"client_identifier": "hospital-a"},
            ]
        },
        headers=auth,
    )
    assert response.status_code == 200
    log_evaluations(
        client,
        auth,
        run_id,
        [
            {
                "round_number": round_number,
                "loss": 1.0 - round_number / 10,
                "accuracy": 0.5 + round_number / 20,
                "true_positives": 10 + round_number,
                "additional_metrics": {
                    "dice": round_number / 4,
                    "server_lr": 0.01,
                    "curve": [1, 2],
                },
            }
            for round_number in range(4)
        ],
    )
    log_metrics(
        client,
        auth,
        run_id,
        [
            {
                "metric_name": "train_loss",
                "metric_value": 0.9 - r / 10,
                "step": r,
                "client_identifier": "hospital-a",
                "round_number": r,
            }
            for r in range(1, 4)
        ]
        + [{"metric_name": "aggregated_acc", "metric_value": 0.7, "step": 2}],
    )
    return run_id


def test_every_run_level_series_comes_back_columnar_by_default(client, centralized):
    answer = _history(client, centralized)

    assert answer["run_id"] == centralized
    assert answer["max_points"] == 1000
    assert [series["name"] for series in answer["series"]] == [
        "my_custom_metric",
        "train_loss",
        "val_acc",
    ]
    val_acc = _by_name(answer)["val_acc"]
    assert val_acc == {
        "name": "val_acc",
        "display_name": "Validation accuracy",
        "client": None,
        "total_points": 10,
        "downsampled": False,
        "steps": list(range(10)),
        "values": [step / 10 for step in range(10)],
    }
    assert _by_name(answer)["my_custom_metric"]["values"] == [42.5]
    # A name the catalogue does not know is shown as it is.
    assert _by_name(answer)["my_custom_metric"]["display_name"] == "my_custom_metric"


def test_names_come_back_in_the_order_asked_and_unknown_names_are_empty(client, centralized):
    answer = _history(client, centralized, names="val_acc,never_logged,train_loss")

    assert [series["name"] for series in answer["series"]] == [
        "val_acc",
        "never_logged",
        "train_loss",
    ]
    never = answer["series"][1]
    assert (never["total_points"], never["steps"], never["values"]) == (0, [], [])
    assert never["downsampled"] is False


def test_the_step_range_is_inclusive(client, centralized):
    answer = _history(client, centralized, names="val_acc", start_step=2, end_step=4)

    (series,) = answer["series"]
    assert series["steps"] == [2, 3, 4]
    assert series["total_points"] == 3


def test_a_series_over_max_points_is_downsampled_to_stored_points(client, centralized):
    answer = _history(client, centralized, names="train_loss", max_points=4)

    (series,) = answer["series"]
    assert series["downsampled"] is True
    assert series["total_points"] == 10
    # One bucket: its first (the maximum) and last (the minimum) point.
    assert series["steps"] == [0, 9]
    assert series["values"] == [1.0, 0.1]


def test_federated_default_holds_run_level_and_server_series_with_round_zero(client, federated):
    answer = _by_name(_history(client, federated))

    assert sorted(answer) == [
        "aggregated_acc",
        "server_accuracy",
        "server_cm_tp",
        "server_dice",
        "server_loss",
        "server_lr",
    ]
    assert answer["server_loss"]["steps"] == [0, 1, 2, 3]
    assert answer["server_loss"]["values"] == [1.0, 0.9, 0.8, 0.7]
    assert answer["server_cm_tp"]["values"] == [10, 11, 12, 13]
    assert answer["server_dice"]["values"] == [0.0, 0.25, 0.5, 0.75]
    # A key that already starts with server_ keeps its name; a list is no series.
    assert answer["server_lr"]["values"] == [0.01] * 4
    assert answer["aggregated_acc"]["client"] is None


def test_a_clients_series_are_read_with_client(client, federated):
    answer = _history(client, federated, client="hospital-a")

    (series,) = answer["series"]
    assert series["name"] == "train_loss"
    assert series["client"] == "hospital-a"
    assert series["steps"] == [1, 2, 3]
    assert series["values"] == pytest.approx([0.8, 0.7, 0.6])


def test_an_unknown_client_is_404_naming_it(client, federated):
    response = client.get(f"/api/runs/{federated}/metric-history?client=nobody")

    assert response.status_code == 404
    assert response.get_json()["message"] == f"Run {federated} has no client 'nobody'"


@pytest.mark.parametrize(
    "query, field",
    [
        ("names=", "names"),
        ("names=" + ",".join(f"m{i}" for i in range(21)), "names"),
        ("names=a,b,a", "names"),
        ("names=" + "x" * 200, "names"),
        ("max_points=3", "max_points"),
        ("max_points=100001", "max_points"),
        ("max_points=ten", "max_points"),
        ("start_step=-1", "start_step"),
        ("end_step=1000001", "end_step"),
        ("start_step=5&end_step=4", "end_step"),
        ("client=", "client"),
        ("names=a%00b", "names"),
        ("colour=red", "colour"),
    ],
)
def test_every_bad_parameter_is_422_naming_it(client, centralized, query, field):
    response = client.get(f"/api/runs/{centralized}/metric-history?{query}")

    assert response.status_code == 422
    body = response.get_json()
    assert field in body["errors"]["query"]
    assert field in body["message"]


@pytest.mark.parametrize("path", ["metric-history", "clients"])
def test_a_missing_run_is_404(client, path):
    response = client.get(f"/api/runs/4242/{path}")

    assert response.status_code == 404
    assert response.get_json()["message"] == "Run 4242 not found"


def test_clients_list_configs_and_metric_names(client, federated):
    response = client.get(f"/api/runs/{federated}/clients")

    assert response.status_code == 200
    assert response.get_json() == {
        "run_id": federated,
        "clients": [
            {
                "client_identifier": "hospital-a",
                "client_config": None,
                "metric_names": ["train_loss"],
            },
            {"client_identifier": "hospital-b", "client_config": {"lr": 0.1}, "metric_names": []},
        ],
    }


def test_clients_of_a_centralized_run_are_empty(client, centralized):
    assert client.get(f"/api/runs/{centralized}/clients").get_json() == {
        "run_id": centralized,
        "clients": [],
    }


def test_clients_take_a_fixed_number_of_statements(client, auth, create_run, count_statements):
    counts = []
    for clients in (1, 30):
        run_id = create_run("federated")["id"]
        client.post(
            f"/api/runs/{run_id}/clients",
            json={"clients": [{"client_identifier": f"c{i}"} for i in range(clients)]},
            headers=auth,
        )
        log_metrics(
            client,
            auth,
            run_id,
            [
                {
                    "metric_name": f"m{i}",
                    "metric_value": 1.0,
                    "step": 0,
                    "client_identifier": f"c{i}",
                    "round_number": 0,
                }
                for i in range(clients)
            ],
        )
        with count_statements() as counter:
            assert client.get(f"/api/runs/{run_id}/clients").status_code == 200
        counts.append(counter.count)
    assert counts[0] == counts[1]


def _compare(client, **query) -> dict:
    response = client.get("/api/runs/compare", query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_compare_answers_runs_in_order_with_every_series(client, centralized, federated):
    answer = _compare(client, run_ids=f"{federated},{centralized}", names="val_acc,server_loss")

    assert [run["id"] for run in answer["runs"]] == [federated, centralized]
    assert answer["runs"][0]["training_mode"] == "federated"
    assert set(answer["runs"][1]) == {
        "id",
        "training_mode",
        "status",
        "run_description",
        "start_time",
    }
    assert [(s["run_id"], s["name"], s["total_points"]) for s in answer["series"]] == [
        (federated, "val_acc", 0),
        (federated, "server_loss", 4),
        (centralized, "val_acc", 10),
        (centralized, "server_loss", 0),
    ]


def test_compare_shares_one_bucket_grid_across_runs(client, auth, create_run):
    short, long = create_run()["id"], create_run()["id"]
    log_metrics(client, auth, short, [p for s in range(100) for p in points(s, val_loss=s % 5)])
    log_metrics(client, auth, long, [p for s in range(400) for p in points(s, val_loss=s % 5)])

    answer = _compare(client, run_ids=f"{short},{long}", names="val_loss", max_points=40)

    short_series, long_series = answer["series"]
    assert short_series["downsampled"] and long_series["downsampled"]

    # Ten buckets of 40 steps over 0..399 for both: the short run fills the first three.
    def buckets(steps):
        return sorted({step * 10 // 400 for step in steps})

    assert buckets(short_series["steps"]) == [0, 1, 2]
    assert buckets(long_series["steps"]) == list(range(10))
    assert short_series["steps"][:4] == long_series["steps"][:4]


def test_compare_names_every_missing_run(client, centralized):
    response = client.get(f"/api/runs/compare?run_ids=4242,{centralized},4343&names=val_acc")

    assert response.status_code == 404
    assert response.get_json()["message"] == "Runs 4242, 4343 not found"


@pytest.mark.parametrize(
    "query, field",
    [
        ("names=val_acc", "run_ids"),
        ("run_ids=1", "names"),
        ("run_ids=1,1&names=a", "run_ids"),
        ("run_ids=0&names=a", "run_ids"),
        ("run_ids=2147483648&names=a", "run_ids"),
        ("run_ids=x&names=a", "run_ids"),
        ("run_ids=" + ",".join(str(i) for i in range(1, 22)) + "&names=a", "run_ids"),
        ("run_ids=1&names=" + ",".join(f"m{i}" for i in range(11)), "names"),
        ("run_ids=1&names=a&max_points=2", "max_points"),
        ("run_ids=1&names=a&start_step=9&end_step=2", "end_step"),
    ],
)
def test_every_bad_compare_parameter_is_422_naming_it(client, query, field):
    response = client.get(f"/api/runs/compare?{query}")

    assert response.status_code == 422
    assert field in response.get_json()["errors"]["query"]


def test_timestamps_come_back_when_points_have_them(client, auth, create_run):
    run_id = create_run()["id"]
    log_metrics(
        client,
        auth,
        run_id,
        [
            {
                "metric_name": "val_loss",
                "metric_value": 0.5,
                "step": 0,
                "timestamp": "2026-01-01T10:00:00+02:00",
            },
            {"metric_name": "val_loss", "metric_value": 0.4, "step": 1},
            {"metric_name": "train_loss", "metric_value": 0.6, "step": 0},
        ],
    )

    answer = _by_name(_history(client, run_id))

    assert answer["val_loss"]["timestamps"] == ["2026-01-01T08:00:00+00:00", None]
    assert "timestamps" not in answer["train_loss"]


def test_server_series_carry_the_evaluation_time(client, auth, create_run):
    run_id = create_run("federated")["id"]
    log_evaluations(
        client,
        auth,
        run_id,
        [
            {"round_number": 0, "loss": 0.9, "evaluation_time": "2026-01-01T00:00:00Z"},
            {"round_number": 1, "loss": 0.8, "evaluation_time": "2026-01-01T00:05:00Z"},
        ],
    )

    (series,) = _history(client, run_id, names="server_loss", max_points=4)["series"]

    assert series["timestamps"] == ["2026-01-01T00:00:00+00:00", "2026-01-01T00:05:00+00:00"]


def test_compare_carries_the_summary_of_every_series_with_points(client, centralized, federated):
    answer = _compare(client, run_ids=f"{centralized},{federated}", names="val_acc,server_loss")

    assert answer["summaries"] == [
        {
            "run_id": centralized,
            "name": "val_acc",
            "client": None,
            "direction": "max",
            "count": 10,
            "mean": 0.45,
            "first": {"step": 0, "value": 0.0},
            "last": {"step": 9, "value": 0.9},
            "min": {"step": 0, "value": 0.0},
            "max": {"step": 9, "value": 0.9},
            "best": {"step": 9, "value": 0.9},
        },
        {
            "run_id": federated,
            "name": "server_loss",
            "client": None,
            "direction": "min",
            "count": 4,
            "mean": 0.85,
            "first": {"step": 0, "value": 1.0},
            "last": {"step": 3, "value": 0.7},
            "min": {"step": 3, "value": 0.7},
            "max": {"step": 0, "value": 1.0},
            "best": {"step": 3, "value": 0.7},
        },
    ]


def test_history_without_a_range_reads_no_point_to_count(client, centralized, count_statements):
    with count_statements() as counter:
        _history(client, centralized, names="val_acc", max_points=4)

    assert not any("count(*)" in statement for statement in counter.statements)


def test_compare_of_short_series_takes_a_fixed_number_of_statements(
    client, auth, create_run, count_statements
):
    # Few points per bucket: every series is read by one statement and reduced in Python.
    counts = []
    for runs in (2, 6):
        run_ids = [create_run()["id"] for _ in range(runs)]
        for run_id in run_ids:
            log_metrics(
                client,
                auth,
                run_id,
                [p for s in range(100) for p in points(s, a=s % 7, b=s % 5, c=s % 3)],
            )
        with count_statements() as counter:
            answer = _compare(
                client, run_ids=",".join(map(str, run_ids)), names="a,b,c", max_points=40
            )
        assert all(series["downsampled"] for series in answer["series"])
        assert not any("WITH RECURSIVE" in statement for statement in counter.statements)
        counts.append(counter.count)
    assert counts[0] == counts[1]


def test_a_series_with_many_points_per_bucket_keeps_the_per_bucket_statement(
    client, auth, create_run, count_statements
):
    run_id = create_run()["id"]
    log_metrics(client, auth, run_id, [p for s in range(600) for p in points(s, a=s % 7)])

    with count_statements() as counter:
        answer = _compare(client, run_ids=str(run_id), names="a", max_points=40)  # 60 a bucket

    assert answer["series"][0]["downsampled"]
    assert any("WITH RECURSIVE" in statement for statement in counter.statements)


@pytest.mark.parametrize(
    "query",
    [{}, {"names": "val_acc"}, {"names": "val_acc,train_loss", "max_points": 4}],
    ids=["every series", "one series", "downsampled"],
)
def test_a_run_level_history_finds_the_run_and_its_series_in_one_statement(
    client, centralized, count_statements, query
):
    # The run (404 or its training mode) and the stored extents of its series come from
    # one statement; the points of every series from one more.
    with count_statements() as counter:
        answer = _history(client, centralized, **query)

    assert answer["series"] and all(series["total_points"] for series in answer["series"])
    assert counter.count == 2, counter.statements
