"""Per-block summaries of long metric series, so a downsampled read need not scan them."""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from runs_service.catalogue import MAX_SERIES_NAME_LENGTH
from runs_service.extensions import Base

# Steps per block: block b of a series holds its points at steps b*32 .. b*32+31. A
# downsampled read of a long series reads about span/32 blocks plus up to 32 points per
# bucket edge; 32 balances the two for the reads of BENCHMARKS.md ("Series reads": a
# 100,000- and a 1,000,000-point series at 250 buckets; 64 was 60 % slower on the first).
BLOCK_STEPS = 32


def block_of(step: int) -> int:
    return step // BLOCK_STEPS


class MetricBlock(Base):
    """count/sum and the (step, value) of first, last, min and max of one block of a series.

    Only metric points form blocks (server-evaluation series are one point per round,
    short by nature). Ties go to the earliest (step, round), as in MetricSummary;
    services.metric_summaries is the only writer, in the transaction of the points.
    """

    __tablename__ = "metric_blocks"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    metric_name: Mapped[str] = mapped_column(String(MAX_SERIES_NAME_LENGTH), primary_key=True)
    client_key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    block: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer)
    value_sum: Mapped[float] = mapped_column(Float)
    first_step: Mapped[int] = mapped_column(Integer)
    first_value: Mapped[float] = mapped_column(Float)
    last_step: Mapped[int] = mapped_column(Integer)
    last_value: Mapped[float] = mapped_column(Float)
    min_step: Mapped[int] = mapped_column(Integer)
    min_value: Mapped[float] = mapped_column(Float)
    max_step: Mapped[int] = mapped_column(Integer)
    max_value: Mapped[float] = mapped_column(Float)
