"""A training run, centralized or federated."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Enum, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from runs_service.catalogue import MAX_EXPERIMENT_LENGTH
from runs_service.extensions import Base
from runs_service.models.tag import RunTag
from runs_service.models.types import JSONDocument, UTCDateTime, duration_minutes, utc_now

if TYPE_CHECKING:
    from runs_service.models.client import Client
    from runs_service.models.evaluation import ServerEvaluation
    from runs_service.models.metric import RunMetric
    from runs_service.models.summary import RunSummary

MAX_DESCRIPTION_LENGTH = 1024


class TrainingMode(enum.StrEnum):
    CENTRALIZED = "centralized"
    FEDERATED = "federated"


class RunStatus(enum.StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"


def enum_column(enum_class: type[enum.Enum], name: str) -> Enum:
    """A VARCHAR with a CHECK constraint, storing the enum's value (not its name)."""
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        validate_strings=True,
        values_callable=lambda members: [member.value for member in members],
    )


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_status_start_time", "status", "start_time"),
        Index("ix_runs_training_mode_start_time", "training_mode", "start_time"),
        Index("ix_runs_start_time", "start_time"),
        # Covers the analytics averages (per status and mode, over start and end times):
        # read from the index alone, in group order, instead of from every run's row.
        Index("ix_runs_analytics", "status", "training_mode", "start_time", "end_time"),
        # One run per external id (NULLs do not collide): creates are idempotent by it.
        Index("ix_runs_external_id", "external_id", unique=True),
        Index("ix_runs_experiment_start_time", "experiment", "start_time"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    training_mode: Mapped[TrainingMode] = mapped_column(enum_column(TrainingMode, "training_mode"))
    status: Mapped[RunStatus] = mapped_column(
        enum_column(RunStatus, "run_status"), default=RunStatus.IN_PROGRESS
    )
    start_time: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    run_description: Mapped[str | None] = mapped_column(String(MAX_DESCRIPTION_LENGTH))
    source_path: Mapped[str | None] = mapped_column(String(1024))
    external_id: Mapped[str | None] = mapped_column(String(255))
    config: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    experiment: Mapped[str | None] = mapped_column(String(MAX_EXPERIMENT_LENGTH))

    metrics: Mapped[list[RunMetric]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )
    server_evaluations: Mapped[list[ServerEvaluation]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )
    clients: Mapped[list[Client]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )
    summary: Mapped[RunSummary] = relationship(cascade="all, delete-orphan", passive_deletes=True)
    tag_rows: Mapped[list[RunTag]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="RunTag.tag"
    )

    @property
    def tags(self) -> list[str]:
        """The run's tags, sorted."""
        return sorted(row.tag for row in self.tag_rows)

    def set_tags(self, tags: list[str]) -> None:
        """Make the run's tags exactly this set, touching only the rows that change."""
        wanted = set(tags)
        for row in [row for row in self.tag_rows if row.tag not in wanted]:
            self.tag_rows.remove(row)
        present = {row.tag for row in self.tag_rows}
        self.tag_rows.extend(RunTag(tag=tag) for tag in sorted(wanted - present))

    @property
    def duration_minutes(self) -> float | None:
        """end_time - start_time in minutes (2 places); None while the run has no end."""
        return duration_minutes(self.start_time, self.end_time)
