"""A tag of a run: one row per (run, tag), so runs can be filtered by tag through an index."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from runs_service.catalogue import MAX_TAG_LENGTH
from runs_service.extensions import Base


class RunTag(Base):
    __tablename__ = "run_tags"
    # The primary key (run_id, tag) reads a run's tags; this index finds a tag's runs.
    __table_args__ = (Index("ix_run_tags_tag_run_id", "tag", "run_id"),)

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(MAX_TAG_LENGTH), primary_key=True)
