"""run_summaries.training_mode, filled from runs, and per-mode best indexes

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 22:40:00

The analytics top runs of one training mode walked the best_* index past every run of
the other mode ranked above them (16–49 ms at 100,000 runs against a 15 ms target,
BENCHMARKS.md). A run's mode never changes after it is created, so its summary keeps a
copy, filled here from runs, and each indexed best gets a (training_mode, best) index:
DESC NULLS LAST with run_id DESC on PostgreSQL (the order the top runs read), ascending
on SQLite (walked backwards; run_id is the rowid).
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = ("best_accuracy", "best_recall")


def _training_mode() -> sa.Enum:
    return sa.Enum(
        "centralized",
        "federated",
        name="training_mode",
        native_enum=False,
        create_constraint=True,
        length=16,
    )


def upgrade():
    # Added nullable (its CHECK lets NULL through), filled, then made NOT NULL.
    with op.batch_alter_table("run_summaries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("training_mode", _training_mode(), nullable=True))
    op.execute(
        "UPDATE run_summaries SET training_mode = "
        "(SELECT training_mode FROM runs WHERE runs.id = run_summaries.run_id)"
    )
    with op.batch_alter_table("run_summaries", schema=None) as batch_op:
        batch_op.alter_column("training_mode", existing_type=_training_mode(), nullable=False)
    if op.get_bind().dialect.name == "postgresql":
        for column in COLUMNS:
            op.create_index(
                f"ix_run_summaries_mode_{column}_desc",
                "run_summaries",
                ["training_mode", sa.text(f"{column} DESC NULLS LAST"), sa.text("run_id DESC")],
            )
    else:
        with op.batch_alter_table("run_summaries", schema=None) as batch_op:
            for column in COLUMNS:
                batch_op.create_index(f"ix_run_summaries_mode_{column}", ["training_mode", column])


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for column in COLUMNS:
            op.drop_index(f"ix_run_summaries_mode_{column}_desc", table_name="run_summaries")
    with op.batch_alter_table("run_summaries", schema=None) as batch_op:
        if op.get_bind().dialect.name != "postgresql":
            for column in COLUMNS:
                batch_op.drop_index(f"ix_run_summaries_mode_{column}")
            # SQLite's table copy would keep the column's CHECK otherwise.
            batch_op.drop_constraint("training_mode", type_="check")
        batch_op.drop_column("training_mode")
