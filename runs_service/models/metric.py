"""One value of one named metric at one epoch."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Computed, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from runs_service.catalogue import MAX_METRIC_NAME_LENGTH
from runs_service.extensions import Base
from runs_service.models.run import enum_column
from runs_service.models.types import UTCDateTime

if TYPE_CHECKING:
    from runs_service.models.client import Client
    from runs_service.models.run import Run


class DatasetType(enum.StrEnum):
    TRAIN = "train"
    VALIDATION = "validation"
    TEST = "test"
    OTHER = "other"


class RunMetric(Base):
    __tablename__ = "run_metrics"
    __table_args__ = (
        # NULLs are distinct in unique constraints, so the optional client and
        # round take part in the point's identity through non-null generated keys.
        UniqueConstraint(
            "run_id",
            "metric_name",
            "step",
            "client_key",
            "round_key",
            name="uq_run_metrics_point",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    metric_name: Mapped[str] = mapped_column(String(MAX_METRIC_NAME_LENGTH))
    metric_value: Mapped[float] = mapped_column(Float)
    step: Mapped[int] = mapped_column(Integer)
    dataset_type: Mapped[DatasetType] = mapped_column(enum_column(DatasetType, "dataset_type"))
    client_id: Mapped[int | None] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    round_number: Mapped[int | None] = mapped_column(Integer)
    client_key: Mapped[int] = mapped_column(
        Integer, Computed("coalesce(client_id, 0)", persisted=True)
    )
    round_key: Mapped[int] = mapped_column(
        Integer, Computed("coalesce(round_number, -1)", persisted=True)
    )
    # When the trainer measured the point (SPEC §2), if it said; charts may plot against it.
    timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Null until the point is overwritten with a different value (see Client.updated_at).
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    run: Mapped[Run] = relationship(back_populates="metrics")
    client: Mapped[Client | None] = relationship()
