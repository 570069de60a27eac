"""metric_blocks: block summaries of metric series, filled from the existing points

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 20:10:00

A block is every point of one metric series (run, metric name, client) at steps
b*32 .. b*32+31: its count and sum and the (step, value) of its first, last, minimum and
maximum point, ties to the earliest (step, round), as metric_summaries keeps for the
whole series. Downsampled reads of long series read the blocks a bucket holds whole
instead of their points. Server evaluations form no blocks, and neither do the
run-level server_* metric points of a federated run (its server evaluations are those
series). The fill is one INSERT … SELECT over window functions, as in 0004.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BLOCK_STEPS = 32
SERVER_PREFIX = "server_"


def _fill_statement() -> str:
    of_evaluations = (
        f"client_key = 0 AND substr(metric_name, 1, {len(SERVER_PREFIX)}) = '{SERVER_PREFIX}'"
        " AND run_id IN (SELECT id FROM runs WHERE training_mode = 'federated')"
    )
    points = (
        "SELECT run_id, metric_name AS name, client_key, step / "
        f"{BLOCK_STEPS} AS block, step, round_key, metric_value AS value"
        f" FROM run_metrics WHERE NOT ({of_evaluations})"
    )
    block = "PARTITION BY run_id, name, client_key, block"
    ranked = (
        "SELECT p.*,"
        f" ROW_NUMBER() OVER ({block} ORDER BY step, round_key) AS rn_first,"
        f" ROW_NUMBER() OVER ({block} ORDER BY step DESC, round_key DESC) AS rn_last,"
        f" ROW_NUMBER() OVER ({block} ORDER BY value, step, round_key) AS rn_min,"
        f" ROW_NUMBER() OVER ({block} ORDER BY value DESC, step, round_key) AS rn_max"
        f" FROM ({points}) AS p"
    )

    def holder(rank: str, column: str) -> str:
        return f"MAX(CASE WHEN {rank} = 1 THEN {column} END)"

    return (
        "INSERT INTO metric_blocks (run_id, metric_name, client_key, block, count, value_sum,"
        " first_step, first_value, last_step, last_value, min_step, min_value,"
        " max_step, max_value)"
        " SELECT run_id, name, client_key, block, COUNT(*), SUM(value),"
        f" {holder('rn_first', 'step')}, {holder('rn_first', 'value')},"
        f" {holder('rn_last', 'step')}, {holder('rn_last', 'value')},"
        f" {holder('rn_min', 'step')}, {holder('rn_min', 'value')},"
        f" {holder('rn_max', 'step')}, {holder('rn_max', 'value')}"
        f" FROM ({ranked}) AS ranked GROUP BY run_id, name, client_key, block"
    )


def upgrade():
    op.create_table(
        "metric_blocks",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("metric_name", sa.String(length=135), nullable=False),
        sa.Column("client_key", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("block", sa.Integer(), autoincrement=False, nullable=False),
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
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_metric_blocks_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "run_id", "metric_name", "client_key", "block", name=op.f("pk_metric_blocks")
        ),
    )
    op.get_bind().execute(sa.text(_fill_statement()))


def downgrade():
    op.drop_table("metric_blocks")
