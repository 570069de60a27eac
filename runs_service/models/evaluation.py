"""The server-side evaluation of a federated run's global model after one round."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Float, ForeignKey, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from runs_service.extensions import Base
from runs_service.models.types import JSONDocument, UTCDateTime

if TYPE_CHECKING:
    from runs_service.models.run import Run


class ServerEvaluation(Base):
    __tablename__ = "server_evaluations"
    __table_args__ = (UniqueConstraint("run_id", "round_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    round_number: Mapped[int] = mapped_column(Integer)
    loss: Mapped[float | None] = mapped_column(Float)
    accuracy: Mapped[float | None] = mapped_column(Float)
    precision: Mapped[float | None] = mapped_column(Float)
    recall: Mapped[float | None] = mapped_column(Float)
    f1_score: Mapped[float | None] = mapped_column(Float)
    auroc: Mapped[float | None] = mapped_column(Float)
    true_positives: Mapped[int | None] = mapped_column(Integer)
    true_negatives: Mapped[int | None] = mapped_column(Integer)
    false_positives: Mapped[int | None] = mapped_column(Integer)
    false_negatives: Mapped[int | None] = mapped_column(Integer)
    num_samples: Mapped[int | None] = mapped_column(Integer)
    evaluation_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    additional_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    # Null until the round is overwritten with different values (see Client.updated_at).
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    run: Mapped[Run] = relationship(back_populates="server_evaluations")
