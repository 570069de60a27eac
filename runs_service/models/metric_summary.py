"""The summary of one metric series of a run, kept up to date by every write (SPEC §7)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Float, ForeignKey, Index, Integer, String, literal_column
from sqlalchemy.orm import Mapped, mapped_column

from runs_service.catalogue import MAX_SERIES_NAME_LENGTH
from runs_service.extensions import Base

RUN_LEVEL = 0  # client_key of run-level series (server_* series included)


def is_run_level(client_key: ColumnElement[int]) -> ColumnElement[bool]:
    """client_key = RUN_LEVEL, as a constant in the statement's text, never a parameter.

    psycopg prepares a statement after 5 runs, and PostgreSQL's generic plan of it cannot
    tell a parameter's 0 (most summaries) from one client's key (a few): it then chose
    ix_metric_summaries_best/_last over the primary key and walked every run's summaries
    of a name (the statement of a list page's metric columns: 27.5 ms instead of 0.2 at
    10,000 runs; the metric sort: 6.5 of 7 ms at 2,000; BENCHMARKS.md).
    """
    return client_key == literal_column(str(RUN_LEVEL), Integer)


class MetricSummary(Base):
    """count/sum and the (step, value) of first, last, min, max and best of one series.

    A series is every point of one run with the same name and client; server evaluations
    form the server_* series (step = round). services.metric_summaries is the only writer,
    so reading a summary never scans the run's points.
    """

    __tablename__ = "metric_summaries"
    __table_args__ = (
        # /list sorts runs by one metric's best or last value: walks these in order
        # (min and max sorts, rarer, sort the matching summaries instead).
        Index("ix_metric_summaries_best", "metric_name", "client_key", "best_value", "run_id"),
        Index("ix_metric_summaries_last", "metric_name", "client_key", "last_value", "run_id"),
    )

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    metric_name: Mapped[str] = mapped_column(String(MAX_SERIES_NAME_LENGTH), primary_key=True)
    # clients.id of a client-local series, 0 for run-level ones (as run_metrics.client_key).
    client_key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
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
    # Null when the name has no direction, or (server_*) no training round has a value.
    best_step: Mapped[int | None] = mapped_column(Integer)
    best_value: Mapped[float | None] = mapped_column(Float)
