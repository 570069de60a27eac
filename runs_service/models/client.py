"""A federated participant of one run."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from runs_service.catalogue import MAX_CLIENT_IDENTIFIER_LENGTH
from runs_service.extensions import Base
from runs_service.models.types import JSONDocument, UTCDateTime, utc_now

if TYPE_CHECKING:
    from runs_service.models.run import Run


class Client(Base):
    __tablename__ = "clients"
    __table_args__ = (UniqueConstraint("run_id", "client_identifier"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    client_identifier: Mapped[str] = mapped_column(String(MAX_CLIENT_IDENTIFIER_LENGTH))
    client_config: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    # Null until an idempotent re-registration changes the client; lets upserts
    # report inserted vs updated without reading first.
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    run: Mapped[Run] = relationship(back_populates="clients")
