"""run_metrics.timestamp: when a metric point was measured (optional, SPEC §2)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 17:00:00

A nullable column: existing points were written without one and keep null.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


# Plain ALTER TABLE on both databases (SQLite 3.35+ drops columns in place): a batch
# rebuild of run_metrics would copy every point and its generated key columns.
def upgrade():
    op.add_column("run_metrics", sa.Column("timestamp", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    op.drop_column("run_metrics", "timestamp")
