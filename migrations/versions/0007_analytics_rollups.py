"""analytics_rollups: per-mode, per-status, per-day counts and sums of runs, filled

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 19:30:00

/analytics/summary adds these rows up instead of reading every matching run (SPEC §10,
issue 15). A run contributes to the group (training_mode, status, UTC day of start_time,
shard): one run, each best score of its summary (count and sum in units of 1e-12), its
duration in microseconds when it has an end; max_accuracy is the group's highest best
accuracy. shard is run_id % 8 for runs in progress, 0 otherwise. The fill reads every
run once, in Python, with the arithmetic of services.rollups (kept here as it was at
this revision); `flask refresh-rollups` does the same later and changes nothing when
the rows are right.
"""

from datetime import UTC, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SCORES = ("accuracy", "precision", "recall", "f1", "auroc")
SCORE_SCALE = 10**12
IN_PROGRESS_SHARDS = 8


def _enum(name: str, values: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def upgrade():
    columns = [
        sa.Column(
            "training_mode", _enum("training_mode", ("centralized", "federated")), nullable=False
        ),
        sa.Column(
            "status", _enum("run_status", ("in_progress", "completed", "failed")), nullable=False
        ),
        sa.Column("start_day", sa.Date(), nullable=False),
        sa.Column("shard", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
    ]
    for score in SCORES:
        columns.append(sa.Column(f"{score}_count", sa.Integer(), nullable=False))
        columns.append(sa.Column(f"{score}_sum", sa.BigInteger(), nullable=False))
    columns += [
        sa.Column("duration_count", sa.Integer(), nullable=False),
        sa.Column("duration_sum", sa.BigInteger(), nullable=False),
        sa.Column("max_accuracy", sa.Float(), nullable=True),
    ]
    table = op.create_table(
        "analytics_rollups",
        *columns,
        sa.PrimaryKeyConstraint(
            "training_mode", "status", "start_day", "shard", name="pk_analytics_rollups"
        ),
    )
    op.bulk_insert(table, _groups(op.get_bind()))


def _groups(connection) -> list[dict]:
    runs = sa.table(
        "runs",
        sa.column("id"),
        sa.column("training_mode"),
        sa.column("status"),
        sa.column("start_time", sa.DateTime(timezone=True)),
        sa.column("end_time", sa.DateTime(timezone=True)),
    )
    summaries = sa.table(
        "run_summaries", sa.column("run_id"), *(sa.column(f"best_{score}") for score in SCORES)
    )
    query = sa.select(
        runs.c.id,
        runs.c.training_mode,
        runs.c.status,
        runs.c.start_time,
        runs.c.end_time,
        *(summaries.c[f"best_{score}"] for score in SCORES),
    ).select_from(runs.outerjoin(summaries, summaries.c.run_id == runs.c.id))
    groups: dict[tuple, dict] = {}
    for run_id, mode, status, start, end, *bests in connection.execute(query):
        start = _utc(start)
        shard = run_id % IN_PROGRESS_SHARDS if status == "in_progress" else 0
        key = (mode, status, start.date(), shard)
        group = groups.get(key)
        if group is None:
            group = groups[key] = {
                "training_mode": mode,
                "status": status,
                "start_day": start.date(),
                "shard": shard,
                "runs": 0,
                **{f"{score}_{part}": 0 for score in SCORES for part in ("count", "sum")},
                "duration_count": 0,
                "duration_sum": 0,
                "max_accuracy": None,
            }
        group["runs"] += 1
        for score, best in zip(SCORES, bests, strict=True):
            if best is not None:
                group[f"{score}_count"] += 1
                group[f"{score}_sum"] += round(best * SCORE_SCALE)
        if end is not None:
            group["duration_count"] += 1
            group["duration_sum"] += (_utc(end) - start) // timedelta(microseconds=1)
        accuracy, highest = bests[0], group["max_accuracy"]
        if accuracy is not None and (highest is None or accuracy > highest):
            group["max_accuracy"] = accuracy
    return list(groups.values())


def _utc(moment):
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def downgrade():
    op.drop_table("analytics_rollups")
