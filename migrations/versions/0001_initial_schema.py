"""initial schema: runs, clients, run metrics, server evaluations, run summaries

Revision ID: 0001
Revises:
Create Date: 2026-11-26 12:37:47.297163

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "training_mode",
            sa.Enum(
                "centralized",
                "federated",
                name="training_mode",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "in_progress",
                "completed",
                "failed",
                name="run_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("run_description", sa.String(length=1024), nullable=True),
        sa.Column("source_path", sa.String(length=1024), nullable=True),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column(
            "config",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index("ix_runs_start_time", ["start_time"], unique=False)
        batch_op.create_index("ix_runs_status_start_time", ["status", "start_time"], unique=False)
        batch_op.create_index(
            "ix_runs_training_mode_start_time", ["training_mode", "start_time"], unique=False
        )

    op.create_table(
        "clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("client_identifier", sa.String(length=255), nullable=False),
        sa.Column(
            "client_config",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_clients_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clients")),
        sa.UniqueConstraint(
            "run_id", "client_identifier", name=op.f("uq_clients_run_id_client_identifier")
        ),
    )
    op.create_table(
        "run_summaries",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("metrics_count", sa.Integer(), nullable=False),
        sa.Column("best_accuracy", sa.Float(), nullable=True),
        sa.Column("best_precision", sa.Float(), nullable=True),
        sa.Column("best_recall", sa.Float(), nullable=True),
        sa.Column("best_f1", sa.Float(), nullable=True),
        sa.Column("best_auroc", sa.Float(), nullable=True),
        sa.Column("final_true_positives", sa.Integer(), nullable=True),
        sa.Column("final_true_negatives", sa.Integer(), nullable=True),
        sa.Column("final_false_positives", sa.Integer(), nullable=True),
        sa.Column("final_false_negatives", sa.Integer(), nullable=True),
        sa.Column("has_server_evaluation", sa.Boolean(), nullable=False),
        sa.Column("num_rounds", sa.Integer(), nullable=False),
        sa.Column("latest_round", sa.Integer(), nullable=True),
        sa.Column("latest_accuracy", sa.Float(), nullable=True),
        sa.Column("registered_clients", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_summaries_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_run_summaries")),
    )
    with op.batch_alter_table("run_summaries", schema=None) as batch_op:
        batch_op.create_index("ix_run_summaries_best_accuracy", ["best_accuracy"], unique=False)
        batch_op.create_index("ix_run_summaries_best_recall", ["best_recall"], unique=False)

    op.create_table(
        "server_evaluations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("round_number", sa.Integer(), nullable=False),
        sa.Column("loss", sa.Float(), nullable=True),
        sa.Column("accuracy", sa.Float(), nullable=True),
        sa.Column("precision", sa.Float(), nullable=True),
        sa.Column("recall", sa.Float(), nullable=True),
        sa.Column("f1_score", sa.Float(), nullable=True),
        sa.Column("auroc", sa.Float(), nullable=True),
        sa.Column("true_positives", sa.Integer(), nullable=True),
        sa.Column("true_negatives", sa.Integer(), nullable=True),
        sa.Column("false_positives", sa.Integer(), nullable=True),
        sa.Column("false_negatives", sa.Integer(), nullable=True),
        sa.Column("num_samples", sa.Integer(), nullable=True),
        sa.Column("evaluation_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "additional_metrics",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_server_evaluations_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_server_evaluations")),
        sa.UniqueConstraint(
            "run_id", "round_number", name=op.f("uq_server_evaluations_run_id_round_number")
        ),
    )
    op.create_table(
        "run_metrics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("metric_name", sa.String(length=128), nullable=False),
        sa.Column("metric_value", sa.Float(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column(
            "dataset_type",
            sa.Enum(
                "train",
                "validation",
                "test",
                "other",
                name="dataset_type",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("round_number", sa.Integer(), nullable=True),
        sa.Column(
            "client_key",
            sa.Integer(),
            sa.Computed("coalesce(client_id, 0)", persisted=True),
            nullable=False,
        ),
        sa.Column(
            "round_key",
            sa.Integer(),
            sa.Computed("coalesce(round_number, -1)", persisted=True),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_run_metrics_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_metrics_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_metrics")),
        sa.UniqueConstraint(
            "run_id", "metric_name", "step", "client_key", "round_key", name="uq_run_metrics_point"
        ),
    )
    with op.batch_alter_table("run_metrics", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_run_metrics_client_id"), ["client_id"], unique=False)


def downgrade():
    with op.batch_alter_table("run_metrics", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_run_metrics_client_id"))

    op.drop_table("run_metrics")
    op.drop_table("server_evaluations")
    with op.batch_alter_table("run_summaries", schema=None) as batch_op:
        batch_op.drop_index("ix_run_summaries_best_recall")
        batch_op.drop_index("ix_run_summaries_best_accuracy")

    op.drop_table("run_summaries")
    op.drop_table("clients")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_training_mode_start_time")
        batch_op.drop_index("ix_runs_status_start_time")
        batch_op.drop_index("ix_runs_start_time")

    op.drop_table("runs")
