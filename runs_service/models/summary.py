"""Per-run facts derived from a run's data, kept up to date by every write.

The list and analytics routes sort, page and aggregate over thousands of runs; reading
these stored facts instead of every metric row keeps them fast as runs pile up
(MLflow's latest_metrics lesson). services.summaries is the only writer, and it
derives every value with services.definitions, so there is still one definition.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column

from runs_service.extensions import Base
from runs_service.models.run import TrainingMode, enum_column
from runs_service.models.types import UTCDateTime, only_on, utc_now

# The best scores the list and the analytics top runs can sort by without sorting every run.
BEST_INDEXED = ("accuracy", "recall")


class RunSummary(Base):
    __tablename__ = "run_summaries"
    __table_args__ = (
        Index("ix_run_summaries_best_accuracy", "best_accuracy"),
        Index("ix_run_summaries_best_recall", "best_recall"),
    )

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    # The run's mode, copied from runs (it never changes after create) so the top runs of
    # one mode walk a per-mode best index instead of passing the other mode's runs.
    training_mode: Mapped[TrainingMode] = mapped_column(enum_column(TrainingMode, "training_mode"))
    # Stored metric points, client-local ones included.
    metrics_count: Mapped[int] = mapped_column(Integer, default=0)
    # The run's best validation metrics (SPEC §3): over epochs, or over training rounds.
    best_accuracy: Mapped[float | None] = mapped_column(Float)
    best_precision: Mapped[float | None] = mapped_column(Float)
    best_recall: Mapped[float | None] = mapped_column(Float)
    best_f1: Mapped[float | None] = mapped_column(Float)
    best_auroc: Mapped[float | None] = mapped_column(Float)
    # Confusion-matrix counts of the final epoch or round.
    final_true_positives: Mapped[int | None] = mapped_column(Integer)
    final_true_negatives: Mapped[int | None] = mapped_column(Integer)
    final_false_positives: Mapped[int | None] = mapped_column(Integer)
    final_false_negatives: Mapped[int | None] = mapped_column(Integer)
    # Federated facts.
    has_server_evaluation: Mapped[bool] = mapped_column(Boolean, default=False)
    num_rounds: Mapped[int] = mapped_column(Integer, default=0)
    latest_round: Mapped[int | None] = mapped_column(Integer)
    latest_accuracy: Mapped[float | None] = mapped_column(Float)
    registered_clients: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)


# PostgreSQL reads an ascending index backwards as DESC NULLS FIRST, so the list's
# DESC NULLS LAST sorts need their own indexes; SQLite has no NULLS LAST in index
# definitions, and walks the ascending ones for both directions (run_id, its rowid,
# orders the ties). The per-mode ones serve the analytics top runs of one mode.
for _column in BEST_INDEXED:
    _best = getattr(RunSummary, f"best_{_column}")
    only_on(
        "postgresql",
        Index(
            f"ix_run_summaries_best_{_column}_desc",
            _best.desc().nulls_last(),
            RunSummary.run_id.desc(),
        ),
    )
    only_on(
        "postgresql",
        Index(
            f"ix_run_summaries_mode_best_{_column}_desc",
            RunSummary.training_mode,
            _best.desc().nulls_last(),
            RunSummary.run_id.desc(),
        ),
    )
    only_on(
        "sqlite", Index(f"ix_run_summaries_mode_best_{_column}", RunSummary.training_mode, _best)
    )
