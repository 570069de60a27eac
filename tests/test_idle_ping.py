"""The primary's pooled PostgreSQL connections are pinged only after sitting idle.

A connection the server dropped is replaced before use when it was idle (a restart
takes longer than the idle time); used sooner, its request answers 503, changes
nothing, and the next one gets a new connection.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import create_engine, text

from runs_service.extensions import IdlePing, db
from tests.helpers import AUTH

pytestmark = pytest.mark.postgres

POINT = {"metrics": [{"metric_name": "val_acc", "metric_value": 0.5, "step": 0}]}


@pytest.fixture
def idle_ping(app: Flask, is_postgres: bool) -> Iterator[IdlePing]:
    if not is_postgres:
        pytest.skip("PostgreSQL's connection pool")
    pinger = app.extensions["runs_idle_ping"]
    pings = []
    ping = pinger.dialect.do_ping

    def counted(dbapi_connection) -> bool:
        pings.append(dbapi_connection)
        return ping(dbapi_connection)

    pinger.pings = pings
    pinger.dialect.do_ping = counted
    try:
        yield pinger
    finally:
        del pinger.dialect.do_ping  # the class's method again
        with app.app_context():
            db.engine.dispose()


def terminate_the_pooled_connection(app: Flask, database_url: str) -> None:
    """Drop the one pooled connection from the server side, as a restart would."""
    with app.app_context():
        pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        db.session.remove()
        assert db.engine.pool.checkedin() == 1
    admin = create_engine(database_url)
    try:
        with admin.connect() as connection:
            assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()


def test_connections_in_steady_use_are_not_pinged(app, client, create_run, idle_ping):
    run_id = create_run()["id"]
    for step in range(3):
        body = {"metrics": [{"metric_name": "val_acc", "metric_value": 0.5, "step": step}]}
        logged = client.post(f"/api/runs/{run_id}/metrics", json=body, headers=AUTH)
        assert logged.status_code == 200
        assert client.get(f"/api/runs/{run_id}").status_code == 200
    assert idle_ping.pings == []


def test_a_dropped_idle_connection_is_replaced_before_use(
    app, client, create_run, idle_ping, database_url
):
    run_id = create_run()["id"]
    terminate_the_pooled_connection(app, database_url)
    idle_ping.idle_seconds = 0.0
    logged = client.post(f"/api/runs/{run_id}/metrics", json=POINT, headers=AUTH)
    assert logged.status_code == 200, logged.get_json()
    assert len(idle_ping.pings) == 1


def test_a_dropped_busy_connection_fails_one_request_with_503_that_changes_nothing(
    app, client, create_run, idle_ping, database_url, row_counts
):
    run_id = create_run()["id"]
    before = row_counts()
    terminate_the_pooled_connection(app, database_url)
    failed = client.post(f"/api/runs/{run_id}/metrics", json=POINT, headers=AUTH)
    assert failed.status_code == 503
    assert failed.headers["Retry-After"].isdigit()
    assert failed.get_json()["code"] == 503
    assert row_counts() == before
    logged = client.post(f"/api/runs/{run_id}/metrics", json=POINT, headers=AUTH)
    assert logged.status_code == 200, logged.get_json()
    assert idle_ping.pings == []
