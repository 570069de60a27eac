"""metric_summaries: one stored summary per series, filled from the existing points

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 16:40:00

A series is every point of one run with the same metric name and client (SPEC §7);
server evaluations form the server_* series, step = round. The fill is one
INSERT … SELECT over window functions (SQLite ≥ 3.25 and PostgreSQL alike): count and
sum, then the first/last point by (step, round) and the min/max by value, earliest
(step, round) on ties. Server evaluations order before a run-level metric point of the
same name and step (round key -2). The best follows the name's direction from the
catalogue, over training rounds (step ≥ 1) for server_* series.
"""

import sqlalchemy as sa
from alembic import op

from runs_service.catalogue import SERVER_FIELD_SERIES, SERVER_PREFIX, direction

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SERVER_ROUND_KEY = -2


def _points(dialect: str) -> str:
    """Every point of every series: metric points, then each server-evaluation column."""
    # In a federated run a run-level server_* name is its server evaluations' series.
    of_evaluations = (
        f"client_key = 0 AND substr(metric_name, 1, {len(SERVER_PREFIX)}) = '{SERVER_PREFIX}'"
        " AND run_id IN (SELECT id FROM runs WHERE training_mode = 'federated')"
    )
    selects = [
        "SELECT run_id, metric_name AS name, client_key, step, round_key, metric_value AS value"
        f" FROM run_metrics WHERE NOT ({of_evaluations})"
    ]
    for field, series in SERVER_FIELD_SERIES.items():
        selects.append(
            f"SELECT run_id, '{series}', 0, round_number, {SERVER_ROUND_KEY},"
            f" CAST({field} AS DOUBLE PRECISION)"
            f" FROM server_evaluations WHERE {field} IS NOT NULL"
        )
    name = (
        f"CASE WHEN substr(extra.key, 1, {len(SERVER_PREFIX)}) = '{SERVER_PREFIX}'"
        f" THEN extra.key ELSE '{SERVER_PREFIX}' || extra.key END"
    )
    columns = ", ".join(f"'{series}'" for series in SERVER_FIELD_SERIES.values())
    if dialect == "postgresql":
        source = "jsonb_each(e.additional_metrics) AS extra(key, value)"
        number = "jsonb_typeof(extra.value) = 'number'"
        value = "CAST(extra.value AS DOUBLE PRECISION)"
    else:
        source = "json_each(e.additional_metrics) AS extra"
        number = "extra.type IN ('integer', 'real')"
        value = "CAST(extra.value AS REAL)"
    # Additional metrics: finite numbers only (lists are no series), never a column's name.
    selects.append(
        f"SELECT e.run_id, {name}, 0, e.round_number, {SERVER_ROUND_KEY}, {value}"
        f" FROM server_evaluations AS e, {source}"
        f" WHERE {number} AND ({name}) NOT IN ({columns})"
    )
    return " UNION ALL ".join(selects)


def _fill_statement(dialect: str) -> str:
    series = "PARTITION BY run_id, name, client_key"
    is_server = f"substr(name, 1, {len(SERVER_PREFIX)}) = '{SERVER_PREFIX}'"
    training = f"CASE WHEN {is_server} THEN 1 ELSE 0 END"
    ranked = (
        f"SELECT p.*, {training} AS min_best_step,"
        f" ROW_NUMBER() OVER ({series} ORDER BY step, round_key) AS rn_first,"
        f" ROW_NUMBER() OVER ({series} ORDER BY step DESC, round_key DESC) AS rn_last,"
        f" ROW_NUMBER() OVER ({series} ORDER BY value, step, round_key) AS rn_min,"
        f" ROW_NUMBER() OVER ({series} ORDER BY value DESC, step, round_key) AS rn_max,"
        f" ROW_NUMBER() OVER ({series} ORDER BY CASE WHEN step >= {training} THEN 0 ELSE 1 END,"
        f" value, step, round_key) AS rn_best_min,"
        f" ROW_NUMBER() OVER ({series} ORDER BY CASE WHEN step >= {training} THEN 0 ELSE 1 END,"
        f" value DESC, step, round_key) AS rn_best_max"
        f" FROM ({_points(dialect)}) AS p"
    )

    def holder(rank: str, column: str) -> str:
        return f"MAX(CASE WHEN {rank} = 1 THEN {column} END)"

    def best(column: str) -> str:
        eligible = "step >= min_best_step"
        return (
            "CASE"
            f" WHEN name IN :max_names THEN MAX(CASE WHEN rn_best_max = 1 AND {eligible}"
            f" THEN {column} END)"
            f" WHEN name IN :min_names THEN MAX(CASE WHEN rn_best_min = 1 AND {eligible}"
            f" THEN {column} END)"
            " END"
        )

    return (
        "INSERT INTO metric_summaries (run_id, metric_name, client_key, count, value_sum,"
        " first_step, first_value, last_step, last_value, min_step, min_value,"
        " max_step, max_value, best_step, best_value)"
        " SELECT run_id, name, client_key, COUNT(*), SUM(value),"
        f" {holder('rn_first', 'step')}, {holder('rn_first', 'value')},"
        f" {holder('rn_last', 'step')}, {holder('rn_last', 'value')},"
        f" {holder('rn_min', 'step')}, {holder('rn_min', 'value')},"
        f" {holder('rn_max', 'step')}, {holder('rn_max', 'value')},"
        f" {best('step')}, {best('value')}"
        f" FROM ({ranked}) AS ranked GROUP BY run_id, name, client_key"
    )


def fill(connection) -> None:
    """Summarise every existing series (the rows written before this revision)."""
    dialect = connection.dialect.name
    names = connection.execute(
        sa.text(f"SELECT DISTINCT name FROM ({_points(dialect)}) AS p")
    ).scalars()
    directions = {name: direction(name) for name in names}
    statement = sa.text(_fill_statement(dialect)).bindparams(
        sa.bindparam("max_names", expanding=True, type_=sa.String()),
        sa.bindparam("min_names", expanding=True, type_=sa.String()),
    )
    connection.execute(
        statement,
        {
            "max_names": sorted(name for name, way in directions.items() if way == "max"),
            "min_names": sorted(name for name, way in directions.items() if way == "min"),
        },
    )


def upgrade():
    op.create_table(
        "metric_summaries",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("metric_name", sa.String(length=135), nullable=False),
        sa.Column("client_key", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("value_sum", sa.Float(), nullable=False),
        sa.Column("first_step", sa.Integer(), nullable=False),
        sa.Column("first_value", sa.Float(), nullable=False),
        sa.Column("last_step", sa.Integer(), nullable=False),
        sa.Column("last_value", sa.Float(), nullable=False),
        sa.Column("min_step", sa.Integer(), nullable=False),
        sa.Column("min_value", sa.Float(), nullable=False),
        sa.Column("max_step", sa.Integer(), nullable=False),
        sa.Column("max_value", sa.Float(), nullable=False),
        sa.Column("best_step", sa.Integer(), nullable=True),
        sa.Column("best_value", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_metric_summaries_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "run_id", "metric_name", "client_key", name=op.f("pk_metric_summaries")
        ),
    )
    for stat in ("best", "last"):
        op.create_index(
            f"ix_metric_summaries_{stat}",
            "metric_summaries",
            ["metric_name", "client_key", f"{stat}_value", "run_id"],
        )
    fill(op.get_bind())


def downgrade():
    for stat in ("best", "last"):
        op.drop_index(f"ix_metric_summaries_{stat}", table_name="metric_summaries")
    op.drop_table("metric_summaries")
