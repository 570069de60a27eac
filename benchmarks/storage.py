"""Bytes on disk per stored row, for SCALING.md's capacity model.

Loads N runs of the benchmark's seeded workload (plus its 1,000-epoch run) through the
write API, in process, into a throw-away PostgreSQL database; runs VACUUM ANALYZE (as
autovacuum would) and prints, per table, the rows, the bytes of table (heap + TOAST)
and of its indexes from pg_total_relation_size, and bytes per row.

    .venv/bin/python -m benchmarks.storage --runs 1000 --partitions 8

With --partitions P it then times a sketch of partitioning run_metrics by ranges of
run_id (SCALING.md): a partitioned copy, the rows copied, its keys built, the two tables
swapped; then writes and reads one run through the app on the partitioned table.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from sqlalchemy import create_engine, make_url, text

from benchmarks.workload import big_run, generate_workload
from runs_service import create_app
from runs_service.extensions import db

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TOKEN = "storage-benchmark"
MAX_METRICS_PER_BATCH = 10_000

SIZES = text(
    """
    SELECT c.relname, c.reltuples::bigint,
           pg_table_size(c.oid), pg_indexes_size(c.oid), pg_total_relation_size(c.oid)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND n.nspname = 'public' AND c.relname <> 'alembic_version'
    ORDER BY pg_total_relation_size(c.oid) DESC
    """
)


def load(url: str, runs: int) -> tuple[int, float]:
    """Write the workload through the API; return metric points and seconds taken."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "RUNS_API_TOKENS": (TOKEN,)})
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
    client = app.test_client()
    points = 0
    started = time.perf_counter()
    for run in [*generate_workload(runs), big_run()]:
        created = client.post("/api/runs", data=json.dumps(run.run), headers=headers)
        run_id = created.get_json()["id"]
        for path, body in (("clients", run.clients), ("server-evaluations", run.evaluations)):
            if body:
                key = "clients" if path == "clients" else "evaluations"
                reply = client.post(
                    f"/api/runs/{run_id}/{path}", data=json.dumps({key: body}), headers=headers
                )
                assert reply.status_code == 200, reply.get_json()
        for start in range(0, len(run.metrics), MAX_METRICS_PER_BATCH):
            batch = run.metrics[start : start + MAX_METRICS_PER_BATCH]
            reply = client.post(
                f"/api/runs/{run_id}/metrics", data=json.dumps({"metrics": batch}), headers=headers
            )
            assert reply.status_code == 200, reply.get_json()
            points += len(batch)
    with app.app_context():
        db.engine.dispose()
    return points, time.perf_counter() - started


def partition_sketch(url: str, partitions: int) -> list[tuple[str, float]]:
    """Move run_metrics into P range partitions of run_id (+ a default one); time each step."""
    engine = create_engine(url)
    steps: list[tuple[str, float]] = []
    try:
        with engine.begin() as connection:

            def step(label: str, *statements: str) -> None:
                started = time.perf_counter()
                for statement in statements:
                    connection.execute(text(statement))
                steps.append((label, time.perf_counter() - started))

            columns = ", ".join(
                connection.execute(
                    text(
                        "SELECT column_name FROM information_schema.columns"
                        " WHERE table_name = 'run_metrics' AND is_generated = 'NEVER'"
                        " ORDER BY ordinal_position"
                    )
                ).scalars()
            )
            last_run = connection.execute(text("SELECT max(id) FROM runs")).scalar_one()
            width = last_run // partitions + 1
            step(
                "create the partitioned table",
                "CREATE TABLE run_metrics_new (LIKE run_metrics INCLUDING DEFAULTS"
                " INCLUDING GENERATED INCLUDING CONSTRAINTS) PARTITION BY RANGE (run_id)",
                *(
                    f"CREATE TABLE run_metrics_p{n} PARTITION OF run_metrics_new"
                    f" FOR VALUES FROM ({n * width}) TO ({(n + 1) * width})"
                    for n in range(partitions)
                ),
                "CREATE TABLE run_metrics_pdefault PARTITION OF run_metrics_new DEFAULT",
            )
            step(
                "copy the rows",
                f"INSERT INTO run_metrics_new ({columns}) SELECT {columns} FROM run_metrics",
            )
            step(
                "build keys and indexes",
                "ALTER TABLE run_metrics_new ADD PRIMARY KEY (run_id, id)",
                "ALTER TABLE run_metrics_new ADD CONSTRAINT uq_run_metrics_point_new"
                " UNIQUE (run_id, metric_name, step, client_key, round_key)",
                "ALTER TABLE run_metrics_new ADD FOREIGN KEY (run_id) REFERENCES runs (id)"
                " ON DELETE CASCADE",
                "ALTER TABLE run_metrics_new ADD FOREIGN KEY (client_id) REFERENCES clients (id)"
                " ON DELETE CASCADE",
                "CREATE INDEX ON run_metrics_new (client_id)",
            )
            step(
                "swap the tables",
                "ALTER TABLE run_metrics RENAME TO run_metrics_old",
                "ALTER TABLE run_metrics_new RENAME TO run_metrics",
                "ALTER SEQUENCE run_metrics_id_seq OWNED BY run_metrics.id",
                "DROP TABLE run_metrics_old",
            )
    finally:
        engine.dispose()
    return steps


def still_works(url: str) -> None:
    """A metric batch and the run's results through the app, on the partitioned table."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "RUNS_API_TOKENS": (TOKEN,)})
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    client = app.test_client()
    run_id = client.post(
        "/api/runs", data=json.dumps({"training_mode": "centralized"}), headers=headers
    ).get_json()["id"]
    batch = {"metrics": [{"metric_name": "train_loss", "metric_value": 0.5, "step": 0}]}
    for expected in ({"inserted": 1}, {"unchanged": 1}):
        reply = client.post(f"/api/runs/{run_id}/metrics", data=json.dumps(batch), headers=headers)
        assert reply.status_code == 200 and expected.items() <= reply.get_json().items()
    assert client.get(f"/api/runs/{run_id}/metrics").get_json()["total_epochs"] == 1
    with app.app_context():
        db.engine.dispose()


def measure(url: str) -> tuple[list, int]:
    """Sizes per table after VACUUM ANALYZE, and the database's size."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("VACUUM ANALYZE"))
            rows = connection.execute(SIZES).all()
            database = connection.execute(text("SELECT pg_database_size(current_database())"))
            return rows, database.scalar_one()
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--partitions", type=int, default=0)
    arguments = parser.parse_args()
    steps: list[tuple[str, float]] = []
    name = f"runs_storage_{os.getpid()}"
    admin = create_engine(arguments.postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(arguments.postgres_url).set(database=name)
        url = url.render_as_string(hide_password=False)
        points, seconds = load(url, arguments.runs)
        rows, database_bytes = measure(url)
        if arguments.partitions:
            steps = partition_sketch(url, arguments.partitions)
            still_works(url)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print(f"{arguments.runs} runs + 1 big run, {points:,} metric points, loaded in {seconds:.0f} s")
    print()
    print("| table | rows | table bytes | index bytes | bytes per row (total) |")
    print("|---|---|---|---|---|")
    for table, count, table_bytes, index_bytes, total in rows:
        per_row = f"{total / count:,.0f}" if count > 0 else "—"
        print(f"| `{table}` | {count:,} | {table_bytes:,} | {index_bytes:,} | {per_row} |")
    print()
    print(f"database: {database_bytes:,} bytes; {database_bytes / points:,.0f} per metric point")
    if steps:
        print()
        print(f"Partitioning run_metrics into {arguments.partitions} ranges of run_id:")
        for label, seconds in steps:
            print(f"- {label}: {seconds:.2f} s")
        print("- then a batch upsert (inserted, then unchanged) and a read through the app: ok")


if __name__ == "__main__":
    main()
