"""analytics_rollups WITHOUT ROWID on SQLite

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 01:35:00

On SQLite the roll-ups were a rowid table beside the index of their primary key, so
reading them in key order (analytics' run counts per mode and status) looked every index
entry up in the table: 1.9 ms for the 4,827 rows of 100,000 runs, against 0.42 ms when
the key orders the table itself (BENCHMARKS.md, "Analytics on SQLite at 100,000 runs").
WITHOUT ROWID makes the primary key the table: one B-tree to read and to write. The
table is copied into its new form with its rows. PostgreSQL has no such option and is
left alone.
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _recreate(with_rowid: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "analytics_rollups", recreate="always", table_kwargs={"sqlite_with_rowid": with_rowid}
    ):
        pass


def upgrade():
    _recreate(with_rowid=False)


def downgrade():
    _recreate(with_rowid=True)
