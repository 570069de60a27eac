"""indexes for reads: descending best metrics (PostgreSQL), analytics covering index

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 15:20:00

The run list and the analytics top runs sort best_* DESC NULLS LAST. PostgreSQL reads
the ascending indexes of 0001 backwards as DESC NULLS FIRST, so it sorted every summary
instead; its new indexes give the order directly. SQLite cannot declare NULLS LAST in
an index and walks the ascending ones, so it gets none. Both get ix_runs_analytics,
which covers the per-status, per-mode averages of /analytics/summary.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = ("best_accuracy", "best_recall")


def upgrade():
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_runs_analytics", ["status", "training_mode", "start_time", "end_time"]
        )
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in COLUMNS:
        op.create_index(
            f"ix_run_summaries_{column}_desc",
            "run_summaries",
            [sa.text(f"{column} DESC NULLS LAST"), sa.text("run_id DESC")],
        )


def downgrade():
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_analytics")
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in COLUMNS:
        op.drop_index(f"ix_run_summaries_{column}_desc", table_name="run_summaries")
