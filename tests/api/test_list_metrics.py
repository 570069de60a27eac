"""GET /api/runs/list by any metric: sort_by=metric (sort_metric, sort_stat) and metrics=."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.api.test_list import add_runs
from tests.helpers import log_evaluations, log_metrics


def listed(client, **query: Any) -> dict[str, Any]:
    response = client.get("/api/runs/list", query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def ids(body: dict[str, Any]) -> list[int]:
    return [run["id"] for run in body["runs"]]


def epochs(name: str, values: list[float]) -> list[dict[str, Any]]:
    return [
        {"metric_name": name, "metric_value": value, "step": step}
        for step, value in enumerate(values)
    ]


@pytest.fixture
def runs(client, auth, create_run) -> list[int]:
    """Six runs: val_loss best/last/min/max with ties, a run without it, a federated one."""
    created = [create_run()["id"] for _ in range(5)] + [create_run("federated")["id"]]
    a, b, c, d, e, f = created
    log_metrics(client, auth, a, epochs("val_loss", [0.5, 0.3, 0.4]))  # best 0.3, last 0.4
    log_metrics(client, auth, b, epochs("val_loss", [0.3, 0.6]))  # best 0.3 (tie), last 0.6
    log_metrics(client, auth, c, epochs("val_loss", [0.9, 0.0]))  # a genuine 0.0
    log_metrics(client, auth, d, epochs("train_loss", [0.2]))  # no val_loss
    log_metrics(client, auth, e, epochs("val_loss", [0.8]) + epochs("learning_rate", [0.1]))
    log_evaluations(client, auth, f, [{"round_number": 0, "loss": 0.01}])
    # Client-local val_loss is not the run's.
    log_metrics(
        client,
        auth,
        f,
        [{"metric_name": "val_loss", "metric_value": 0.05, "step": 0, "client_identifier": "x"}],
    )
    return created


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # best of a loss is its minimum; ties by id in the sort direction; no value last.
        ({"sort_stat": "best", "sort_order": "asc"}, "c a b e | d f"),
        ({"sort_stat": "best", "sort_order": "desc"}, "e b a c | f d"),
        ({"sort_order": "asc"}, "c a b e | d f"),
        ({"sort_stat": "last", "sort_order": "asc"}, "c a b e | d f"),
        ({"sort_stat": "last", "sort_order": "desc"}, "e b a c | f d"),
        ({"sort_stat": "max", "sort_order": "desc"}, "c e b a | f d"),
        ({"sort_stat": "min", "sort_order": "asc"}, "c a b e | d f"),
    ],
)
def test_sort_by_a_metric_stat_puts_runs_without_it_last(client, runs, query, expected):
    names = dict(zip("abcdef", runs, strict=True))
    order = [names[letter] for letter in expected.replace("|", "").split()]
    body = listed(client, sort_by="metric", sort_metric="val_loss", **query)
    assert ids(body) == order
    assert body["total"] == 6


def test_sort_by_a_server_series_and_a_metric_without_direction(client, runs):
    by_last = {"sort_by": "metric", "sort_stat": "last", "sort_order": "asc"}
    assert ids(listed(client, sort_metric="server_loss", **by_last)) == [runs[5], *runs[:5]]
    assert ids(listed(client, sort_metric="learning_rate", **by_last))[0] == runs[4]
    # Round 0 only has no best, and neither has a name without direction: all runs by id.
    for name in ("server_loss", "learning_rate"):
        body = listed(client, sort_by="metric", sort_metric=name, sort_stat="best")
        assert ids(body) == [*reversed(runs)]


def test_pages_and_filters_of_a_metric_sort(client, runs):
    query = {"sort_by": "metric", "sort_metric": "val_loss", "sort_order": "asc"}
    everything = ids(listed(client, **query))
    pages = [ids(listed(client, **query, limit=4, offset=offset)) for offset in (0, 4, 8)]
    assert [run_id for page in pages for run_id in page] == everything
    assert [len(page) for page in pages] == [4, 2, 0]
    assert ids(listed(client, **query, offset=3, limit=2)) == everything[3:5]
    federated = listed(client, **query, training_mode="federated")
    assert ids(federated) == [runs[5]] and federated["total"] == 1


def test_metrics_columns_show_best_and_last_with_nulls(client, runs):
    body = listed(client, metrics="val_loss,learning_rate", sort_by="id", sort_order="asc")
    columns = {run["id"]: run["metrics"] for run in body["runs"]}
    a, b, c, d, e, f = runs
    assert columns[a] == {
        "val_loss": {"best": 0.3, "last": 0.4},
        "learning_rate": {"best": None, "last": None},
    }
    assert columns[c]["val_loss"] == {"best": 0.0, "last": 0.0}
    assert columns[e]["learning_rate"] == {"best": None, "last": 0.1}
    assert columns[f]["val_loss"] == {"best": None, "last": None}
    assert "metrics" not in listed(client)["runs"][0]


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ({"sort_by": "metric"}, "sort_metric"),
        ({"sort_metric": "val_loss"}, "sort_metric"),
        ({"sort_by": "start_time", "sort_metric": "val_loss"}, "sort_metric"),
        ({"sort_by": "metric", "sort_metric": "val_loss", "sort_stat": "mean"}, "sort_stat"),
        ({"sort_stat": "best"}, "sort_stat"),
        ({"sort_by": "metric", "sort_metric": ""}, "sort_metric"),
        ({"sort_by": "metric", "sort_metric": "v" * 136}, "sort_metric"),
        ({"metrics": ",".join(f"m{i}" for i in range(11))}, "metrics"),
        ({"metrics": "a,,b"}, "metrics"),
        ({"metrics": ""}, "metrics"),
    ],
)
def test_invalid_metric_parameters_are_422_naming_them(client, query, name):
    response = client.get("/api/runs/list", query_string=query)
    assert response.status_code == 422
    body = response.get_json()
    assert name in body["errors"]["query"]
    assert name in body["message"]


def test_ten_metrics_are_accepted(client, runs):
    names = ",".join(f"m{i}" for i in range(10))
    assert len(listed(client, metrics=names)["runs"][0]["metrics"]) == 10


def test_metric_sort_and_columns_take_a_fixed_number_of_statements(app, client, count_statements):
    query = {"sort_by": "metric", "sort_metric": "val_acc", "metrics": "val_acc,server_accuracy"}
    add_runs(app, 5, 0)
    with count_statements() as few:
        assert len(listed(client, **query)["runs"]) == 5
    add_runs(app, 195, 5)
    with count_statements() as many:
        body = listed(client, **query, limit=1000)
    assert len(body["runs"]) == 200
    # The runs with the metric and the total, the runs without it, the page's series values.
    assert few.count == many.count == 3, many.statements
    with_value = [run for run in body["runs"] if run["metrics"]["val_acc"]["best"] is not None]
    assert len(with_value) == 100
    assert body["runs"][:100] == with_value


@pytest.mark.parametrize(
    "query",
    [
        # The page fills from the 100 runs with the metric.
        {"limit": 50},
        {"limit": 50, "offset": 50},
        # Every matching run has the metric: the total says no run without it is left.
        {"limit": 1000, "training_mode": "centralized"},
    ],
)
def test_runs_without_the_metric_are_not_looked_for_when_the_page_needs_none(
    app, client, count_statements, query
):
    add_runs(app, 200, 0)
    everything = listed(client, sort_by="metric", sort_metric="val_acc", limit=1000)["runs"]
    with count_statements() as counter:
        body = listed(client, sort_by="metric", sort_metric="val_acc", **query)
    # The runs with the metric, with the total: the runs without it are never walked.
    assert counter.count == 1, counter.statements
    assert not any("EXISTS" in statement for statement in counter.statements)
    expected = [run for run in everything if run["training_mode"] == "centralized"]
    offset = query.get("offset", 0)
    assert body["runs"] == expected[offset : offset + query["limit"]]


def test_a_page_past_the_runs_with_the_metric_continues_with_the_others(app, client):
    add_runs(app, 20, 0)  # 10 centralized runs with val_acc, 10 federated without
    whole = listed(client, sort_by="metric", sort_metric="val_acc", limit=20)["runs"]
    pages = [
        listed(client, sort_by="metric", sort_metric="val_acc", limit=3, offset=offset)
        for offset in range(0, 21, 3)
    ]
    assert [run for page in pages for run in page["runs"]] == whole
    assert all(page["total"] == 20 for page in pages)
    assert [run["training_mode"] for run in whole] == ["centralized"] * 10 + ["federated"] * 10


def test_openapi_documents_the_metric_parameters(client):
    spec = client.get("/api/openapi.json").get_json()
    parameters = {
        parameter["name"]: parameter
        for parameter in spec["paths"]["/api/runs/list"]["get"]["parameters"]
    }
    assert parameters["sort_stat"]["schema"]["enum"] == ["best", "last", "min", "max"]
    assert "pattern" in parameters["metrics"]["schema"]
    assert "10" in parameters["metrics"]["description"]


def generic_plan(app, path: str, marker: str = "FROM metric_summaries JOIN runs") -> str:
    """PostgreSQL's generic plan of the statement GET `path` sends that contains `marker`
    (by default the one for the runs with the sort metric), run as psycopg runs it once
    prepared (after 5 executions): EXPLAIN ANALYZE EXECUTE of the prepared statement with
    plan_cache_mode = force_generic_plan."""
    import psycopg
    from sqlalchemy import event

    from runs_service.extensions import db

    sent: list[tuple[str, dict[str, Any]]] = []
    with app.app_context():
        engine = db.engine

    def record(connection, cursor, statement, parameters, context, executemany) -> None:
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        assert app.test_client().get(path).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    statement, parameters = next((s, p) for s, p in sent if marker in s)
    with app.app_context():
        pooled = db.engine.raw_connection()
    driver = pooled.driver_connection
    try:
        driver.execute("ANALYZE")  # as autovacuum soon would
        driver.execute("SET plan_cache_mode = force_generic_plan")
        driver.execute(statement, parameters, prepare=True)
        name, types = driver.execute(
            "SELECT name, parameter_types::text[] FROM pg_prepared_statements"
            " WHERE statement LIKE %s",
            (f"%{marker}%",),
        ).fetchone()
        # psycopg numbers the placeholders in order of first appearance.
        order = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", statement)))
        values = ", ".join(f"%s::{type_}" for type_ in types)
        rows = psycopg.ClientCursor(driver).execute(
            f"EXPLAIN ANALYZE EXECUTE {name}({values})", [parameters[n] for n in order]
        )
        return "\n".join(row[0] for row in rows)
    finally:
        pooled.invalidate()  # its plan cache setting must not reach other tests


def many_clients(app, clients: int) -> None:
    """Client-level copies of a centralized run's series for a federated run's `clients`
    clients, as a big federation leaves them: client_key then has thousands of values."""
    from sqlalchemy import text

    from runs_service.extensions import db
    from runs_service.models import MetricSummary

    columns = [column.name for column in MetricSummary.__table__.columns]
    copied = {"run_id": "c.run_id", "client_key": "c.id"}
    with app.app_context():
        source, federated = db.session.execute(text("SELECT min(id), max(id) FROM runs")).one()
        db.session.execute(
            text(
                "INSERT INTO clients (run_id, client_identifier, created_at)"
                " SELECT :run_id, 'client-' || n, now() FROM generate_series(1, :clients) AS n"
            ),
            {"run_id": federated, "clients": clients},
        )
        db.session.execute(
            text(
                f"INSERT INTO metric_summaries ({', '.join(columns)})"
                f" SELECT {', '.join(copied.get(name, 's.' + name) for name in columns)}"
                " FROM metric_summaries AS s JOIN clients AS c ON c.run_id = :run_id"
                " WHERE s.run_id = :source AND s.client_key = 0"
            ),
            {"run_id": federated, "source": source},
        )
        db.session.commit()


def test_the_prepared_metric_sort_estimates_the_metric_from_statistics(app, is_postgres):
    # With the run level a parameter too, the generic plan estimated one summary of the
    # metric whatever the statistics said, and at 2,000 runs rescanned them all for every
    # run without it (6.5 of 7 ms; BENCHMARKS.md). A federation's thousands of client
    # keys are what made the guess collapse.
    if not is_postgres:
        pytest.skip("PostgreSQL's plan cache")
    add_runs(app, 400, 0)  # 200 centralized runs with val_acc
    many_clients(app, clients=2_000)
    plan = generic_plan(app, "/api/runs/list?limit=50&sort_by=metric&sort_metric=val_acc")
    sorted_branch = next(line for line in plan.splitlines() if "ix_metric_summaries_best" in line)
    estimated = int(re.search(r"rows=(\d+)", sorted_branch).group(1))
    assert estimated >= 200 / 10, plan


def test_metric_columns_are_looked_up_by_key_even_without_statistics(app, is_postgres):
    # Asked as run_id IN … AND metric_name IN …, a server that had never analyzed
    # metric_summaries (autovacuum off, or just after a bulk load) walked the sort index
    # over every run's summaries of those names: 230 ms a page at 100,000 runs.
    if not is_postgres:
        pytest.skip("PostgreSQL's planner")
    from sqlalchemy import event, text

    from runs_service.extensions import db

    add_runs(app, 400, 0)
    with app.app_context():
        many_clients(app, clients=1_000)  # client-level summaries beside the run-level ones
        # As a server that never analyzed the table: no statistics at all.
        db.session.execute(
            text("DELETE FROM pg_statistic WHERE starelid = 'metric_summaries'::regclass")
        )
        db.session.commit()
        engine = db.engine
    sent: list[tuple[str, Any]] = []

    def record(connection, cursor, statement, parameters, context, executemany) -> None:
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        body = listed(app.test_client(), limit=50, metrics="val_acc,val_cm_tp")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    centralized = [run for run in body["runs"] if run["training_mode"] == "centralized"]
    assert centralized and all(run["metrics"]["val_acc"]["last"] for run in centralized)
    statement, parameters = next((s, p) for s, p in sent if "last_value" in s)
    with app.app_context():
        connection = db.session.connection()
        # A table this small is cheaper to scan whole; at 100,000 runs it is not. Without
        # scans, the plan shows which index the statement leads the planner to.
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = connection.exec_driver_sql("EXPLAIN " + statement, parameters)
        plan = "\n".join(row[0] for row in plan)
        db.session.rollback()
    assert "pk_metric_summaries" in plan and "ix_metric_summaries" not in plan, plan


def test_the_prepared_metric_columns_are_looked_up_by_key(app, is_postgres):
    # With the run level a parameter, the generic plan could not tell it from one
    # client's key and walked the sort index over every run's summaries of the names:
    # the statement took 27.5 ms at 10,000 runs instead of 0.2 (BENCHMARKS.md).
    if not is_postgres:
        pytest.skip("PostgreSQL's plan cache")
    add_runs(app, 400, 0)
    many_clients(app, clients=2_000)
    path = "/api/runs/list?limit=50&metrics=val_acc,val_cm_tp"
    plan = generic_plan(app, path, marker="metric_summaries.last_value")
    assert "pk_metric_summaries" in plan and "ix_metric_summaries" not in plan, plan
