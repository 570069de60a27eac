"""descending best-metric indexes for the run list on PostgreSQL

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 15:20:00

The run list sorts best_val_accuracy/best_val_recall DESC NULLS LAST by default.
PostgreSQL reads the ascending indexes of 0001 backwards as DESC NULLS FIRST, so it
sorted every summary instead; these indexes give the order directly. SQLite cannot
declare NULLS LAST in an index and walks the ascending ones, so it gets nothing here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = ("best_accuracy", "best_recall")


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in COLUMNS:
        op.create_index(
            f"ix_run_summaries_{column}_desc",
            "run_summaries",
            [sa.text(f"{column} DESC NULLS LAST"), sa.text("run_id DESC")],
        )


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in COLUMNS:
        op.drop_index(f"ix_run_summaries_{column}_desc", table_name="run_summaries")
