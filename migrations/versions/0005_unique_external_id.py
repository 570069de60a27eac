"""one run per external_id: a unique index (refuses to run over duplicated ids)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 17:00:00

POST /api/runs is idempotent by external_id, so two runs must never share one. If
existing data has duplicates, the upgrade stops before changing anything and names
every duplicated id with its runs: decide which run keeps the id (set the others'
external_id to NULL or a new value), then upgrade again. NULLs never collide.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# How many duplicated ids the error message lists before summarising the rest.
SHOWN = 20


class DuplicateExternalIds(RuntimeError):
    """Existing runs share external ids; the unique index cannot be built."""


def duplicated_external_ids(connection) -> dict[str, list[int]]:
    """external_id -> ids of the runs that share it, for every id used more than once."""
    runs = sa.table("runs", sa.column("id"), sa.column("external_id"))
    shared = (
        sa.select(runs.c.external_id)
        .where(runs.c.external_id.is_not(None))
        .group_by(runs.c.external_id)
        .having(sa.func.count() > 1)
    )
    rows = connection.execute(
        sa.select(runs.c.external_id, runs.c.id)
        .where(runs.c.external_id.in_(shared))
        .order_by(runs.c.external_id, runs.c.id)
    )
    duplicates: dict[str, list[int]] = {}
    for external_id, run_id in rows:
        duplicates.setdefault(external_id, []).append(run_id)
    return duplicates


def upgrade():
    duplicates = duplicated_external_ids(op.get_bind())
    if duplicates:
        listed = "; ".join(
            f"{external_id!r} (runs {', '.join(map(str, run_ids))})"
            for external_id, run_ids in list(duplicates.items())[:SHOWN]
        )
        more = len(duplicates) - SHOWN
        suffix = f"; and {more} more" if more > 0 else ""
        raise DuplicateExternalIds(
            f"Cannot make external_id unique: {len(duplicates)} external id(s) are used by "
            f"several runs: {listed}{suffix}. Keep each id on one run (set the others' "
            "external_id to NULL or a new value), then run `flask db upgrade` again."
        )
    op.create_index("ix_runs_external_id", "runs", ["external_id"], unique=True)


def downgrade():
    op.drop_index("ix_runs_external_id", table_name="runs")
