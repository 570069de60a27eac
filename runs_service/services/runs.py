"""Create, read, update and delete runs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete

from runs_service.catalogue import MAX_RUN_ID
from runs_service.errors import InvalidInput, RunNotFound
from runs_service.extensions import db
from runs_service.models import Run, RunSummary
from runs_service.models.types import utc_now


def get_run(run_id: int, *, for_update: bool = False) -> Run:
    """The run with this id, or RunNotFound; for_update locks its row until commit."""
    # Ids beyond the column's range cannot exist; asking the database would overflow.
    if not 1 <= run_id <= MAX_RUN_ID:
        raise RunNotFound(run_id)
    run = db.session.get(Run, run_id, with_for_update=for_update or None)
    if run is None:
        raise RunNotFound(run_id)
    return run


def create_run(fields: dict[str, Any]) -> Run:
    """Store a new run; start_time defaults to now."""
    run = Run(**fields, summary=RunSummary())
    if run.start_time is None:
        run.start_time = utc_now()
    db.session.add(run)
    db.session.commit()
    return run


def update_run(run_id: int, changes: dict[str, Any]) -> Run:
    """Apply a partial update to a run."""
    run = get_run(run_id, for_update=True)
    end_time = changes.get("end_time", run.end_time)
    if end_time is not None and end_time < run.start_time:
        raise InvalidInput(
            "end_time must not be before the run's start_time.",
            {"json": {"end_time": ["Must not be before start_time."]}},
        )
    for name, value in changes.items():
        setattr(run, name, value)
    db.session.commit()
    return run


def delete_run(run_id: int) -> None:
    """Delete a run; the database cascades to its metrics, evaluations and clients."""
    get_run(run_id, for_update=True)
    db.session.execute(delete(Run).where(Run.id == run_id))
    db.session.commit()
