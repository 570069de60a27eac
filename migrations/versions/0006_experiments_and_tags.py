"""experiments and tags: runs.experiment, the run_tags table, and their indexes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 17:10:00

A run may belong to an experiment and carry a set of tags (SPEC §2). Existing runs get
no experiment and no tags. /list and /analytics/summary filter by both: the index on
(experiment, start_time) serves the experiment filter in the list's default order, and
the one on (tag, run_id) finds a tag's runs without reading every tag.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("runs", sa.Column("experiment", sa.String(length=128), nullable=True))
    op.create_index("ix_runs_experiment_start_time", "runs", ["experiment", "start_time"])
    op.create_table(
        "run_tags",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_tags_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "tag", name="pk_run_tags"),
    )
    op.create_index("ix_run_tags_tag_run_id", "run_tags", ["tag", "run_id"])


def downgrade():
    op.drop_index("ix_run_tags_tag_run_id", table_name="run_tags")
    op.drop_table("run_tags")
    op.drop_index("ix_runs_experiment_start_time", table_name="runs")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("experiment")
