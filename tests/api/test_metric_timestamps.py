"""The optional per-point timestamp of a metric batch (SPEC §2): stored in UTC, replaced."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from runs_service.extensions import db
from runs_service.models import RunMetric


def post_metrics(client, auth, run_id, points):
    return client.post(f"/api/runs/{run_id}/metrics", json={"metrics": points}, headers=auth)


def stored_timestamps(app, run_id):
    with app.app_context():
        rows = db.session.execute(
            select(RunMetric.metric_name, RunMetric.step, RunMetric.timestamp)
            .where(RunMetric.run_id == run_id)
            .order_by(RunMetric.metric_name, RunMetric.step)
        )
        return [tuple(row) for row in rows]


def point(name, step, **extra):
    return {"metric_name": name, "metric_value": 0.5, "step": step, **extra}


def test_timestamps_are_stored_in_utc_and_naive_ones_taken_as_utc(app, client, auth, create_run):
    run = create_run()
    response = post_metrics(
        client,
        auth,
        run["id"],
        [
            point("a_offset", 0, timestamp="2025-11-04T14:00:01.123456+02:00"),
            point("b_zulu", 0, timestamp="2025-11-04T12:00:02Z"),
            point("c_naive", 0, timestamp="2025-11-04T12:00:03.5"),
            point("d_null", 0, timestamp=None),
            point("e_absent", 0),
        ],
    )
    assert response.status_code == 200, response.get_json()
    assert stored_timestamps(app, run["id"]) == [
        ("a_offset", 0, datetime(2025, 11, 4, 12, 0, 1, 123456, tzinfo=UTC)),
        ("b_zulu", 0, datetime(2025, 11, 4, 12, 0, 2, tzinfo=UTC)),
        ("c_naive", 0, datetime(2025, 11, 4, 12, 0, 3, 500000, tzinfo=UTC)),
        ("d_null", 0, None),
        ("e_absent", 0, None),
    ]


def test_a_large_batch_with_timestamps_keeps_every_one(app, client, auth, create_run):
    run = create_run()
    points = [
        point("val_loss", step, timestamp=f"2025-11-04T12:{step // 60:02d}:{step % 60:02d}Z")
        for step in range(600)
    ]
    assert post_metrics(client, auth, run["id"], points).status_code == 200
    stored = stored_timestamps(app, run["id"])
    assert len(stored) == 600
    assert stored[-1] == ("val_loss", 599, datetime(2025, 11, 4, 12, 9, 59, tzinfo=UTC))
    assert all(timestamp.tzinfo is not None for _, _, timestamp in stored)


def test_writing_a_point_again_replaces_its_timestamp(app, client, auth, create_run):
    run = create_run()
    first = [point("val_acc", 0, timestamp="2025-11-04T12:00:00Z")]
    assert post_metrics(client, auth, run["id"], first).get_json()["inserted"] == 1
    assert post_metrics(client, auth, run["id"], first).get_json() == {
        "inserted": 0,
        "updated": 0,
        "unchanged": 1,
    }
    later = [point("val_acc", 0, timestamp="2025-11-04T12:05:00+00:00")]
    assert post_metrics(client, auth, run["id"], later).get_json()["updated"] == 1
    assert stored_timestamps(app, run["id"]) == [
        ("val_acc", 0, datetime(2025, 11, 4, 12, 5, tzinfo=UTC))
    ]
    # The same point without a timestamp replaces it whole: its timestamp goes too.
    assert post_metrics(client, auth, run["id"], [point("val_acc", 0)]).get_json()["updated"] == 1
    assert stored_timestamps(app, run["id"]) == [("val_acc", 0, None)]


@pytest.mark.parametrize(
    "timestamp",
    ["yesterday", "2025-13-01T00:00:00", "", 1730721600, True, "0001-01-01T00:00:00+05:00"],
)
def test_a_bad_timestamp_is_422_naming_it_and_writes_nothing(
    client, auth, create_run, row_counts, timestamp
):
    run = create_run()
    before = row_counts()
    points = [point("val_acc", 0), point("val_acc", 1, timestamp=timestamp)]
    response = post_metrics(client, auth, run["id"], points)
    body = response.get_json()
    assert response.status_code == 422, body
    assert "timestamp" in body["errors"]["json"]["metrics"]["1"]
    assert row_counts() == before


def test_the_timestamp_is_documented_on_the_metric_point(client):
    schemas = client.get("/api/openapi.json").get_json()["components"]["schemas"]
    timestamp = schemas["MetricPoint"]["properties"]["timestamp"]
    assert timestamp["format"] == "date-time"
    assert "null" in timestamp["type"]
    assert "measured" in timestamp["description"]
