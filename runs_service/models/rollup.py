"""Analytics roll-ups: per-mode, per-status, per-day sums of the runs, kept at write time.

/analytics/summary adds these up instead of reading every matching run (SPEC §10).
services.rollups is the only writer: every write that changes a run's mode, status,
start or end time, or its summary's best values, moves the run's contribution from its
old group to its new one in the same transaction.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Date, Float, Integer
from sqlalchemy.orm import Mapped, mapped_column

from runs_service.extensions import Base
from runs_service.models.run import RunStatus, TrainingMode, enum_column

# Scores are summed as integers in units of 1e-12: exact, so a sum does not drift with
# the order of the writes and a rebuild compares equal to what the writes left.
SCORE_SCALE = 10**12
# Runs in progress (the ones metric batches keep changing) spread over this many rows per
# (mode, day), by run id, so concurrent writers on PostgreSQL do not queue on one row lock.
IN_PROGRESS_SHARDS = 8


class AnalyticsRollup(Base):
    """The runs of one (training mode, status, UTC start day, shard): counts and sums."""

    __tablename__ = "analytics_rollups"
    # SQLite: the primary key is the table (no rowid beside it), so reading the rows in
    # key order reads one B-tree (migration 0010).
    __table_args__ = {"sqlite_with_rowid": False}

    training_mode: Mapped[TrainingMode] = mapped_column(
        enum_column(TrainingMode, "training_mode"), primary_key=True
    )
    status: Mapped[RunStatus] = mapped_column(
        enum_column(RunStatus, "run_status"), primary_key=True
    )
    start_day: Mapped[date] = mapped_column(Date, primary_key=True)
    # run_id % IN_PROGRESS_SHARDS for runs in progress, 0 for finished ones.
    shard: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    runs: Mapped[int] = mapped_column(Integer)
    # Per averaged score (catalogue.SCORE_KEYS): how many runs have a best value, and
    # their sum in SCORE_SCALE units.
    accuracy_count: Mapped[int] = mapped_column(Integer)
    accuracy_sum: Mapped[int] = mapped_column(BigInteger)
    precision_count: Mapped[int] = mapped_column(Integer)
    precision_sum: Mapped[int] = mapped_column(BigInteger)
    recall_count: Mapped[int] = mapped_column(Integer)
    recall_sum: Mapped[int] = mapped_column(BigInteger)
    f1_count: Mapped[int] = mapped_column(Integer)
    f1_sum: Mapped[int] = mapped_column(BigInteger)
    auroc_count: Mapped[int] = mapped_column(Integer)
    auroc_sum: Mapped[int] = mapped_column(BigInteger)
    # Runs with both start and end time, and the sum of their durations in microseconds.
    duration_count: Mapped[int] = mapped_column(Integer)
    duration_sum: Mapped[int] = mapped_column(BigInteger)
    # The highest best accuracy of the group's runs (recomputed from the group's runs when
    # the run holding it leaves or drops).
    max_accuracy: Mapped[float | None] = mapped_column(Float)
