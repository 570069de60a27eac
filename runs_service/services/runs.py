"""Create, read, update and delete runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from runs_service.catalogue import MAX_RUN_ID
from runs_service.errors import Conflict, InvalidInput, RunNotFound
from runs_service.extensions import db
from runs_service.models import Run, RunStatus, RunSummary
from runs_service.models.types import utc_now
from runs_service.services import rollups


def check_run_id(run_id: int) -> None:
    """RunNotFound for an id beyond the column's range: asking the database would overflow."""
    if not 1 <= run_id <= MAX_RUN_ID:
        raise RunNotFound(run_id)


def get_run(run_id: int, *, for_update: bool = False) -> Run:
    """The run with this id, or RunNotFound; for_update locks its row until commit."""
    check_run_id(run_id)
    run = db.session.get(Run, run_id, with_for_update=for_update or None)
    if run is None:
        raise RunNotFound(run_id)
    return run


FINISHED = frozenset({RunStatus.COMPLETED, RunStatus.FAILED})


def run_by_external_id(external_id: str) -> Run | None:
    return db.session.execute(
        select(Run).where(Run.external_id == external_id)
    ).scalar_one_or_none()


def _existing_run_for_create(fields: dict[str, Any]) -> Run | None:
    """The run a create with this external_id means, or Conflict if its mode differs."""
    external_id = fields.get("external_id")
    if external_id is None:
        return None
    run = run_by_external_id(external_id)
    if run is not None and run.training_mode != fields["training_mode"]:
        raise Conflict(
            f"external_id {external_id!r} already belongs to run {run.id}, a "
            f"{run.training_mode} run; a {fields['training_mode']} run cannot reuse it.",
            {"json": {"external_id": [f"Already used by {run.training_mode} run {run.id}."]}},
        )
    return run


def _check_end_time(start_time: datetime, end_time: datetime | None) -> None:
    if end_time is not None and end_time < start_time:
        raise InvalidInput(
            "end_time must not be before the run's start_time.",
            {"json": {"end_time": ["Must not be before start_time."]}},
        )


def create_run(fields: dict[str, Any]) -> Run:
    """Store a new run (or find the run its external_id names, see create_or_find_run)."""
    return create_or_find_run(fields)[0]


def create_or_find_run(fields: dict[str, Any]) -> tuple[Run, bool]:
    """Store a new run, or find the run its external_id names; True when created.

    start_time defaults to now; a finished status without end_time ends the run now.
    """
    existing = _existing_run_for_create(fields)
    if existing is not None:
        return existing, False
    columns = {name: value for name, value in fields.items() if name != "tags"}
    run = Run(**columns, summary=RunSummary(training_mode=columns["training_mode"]))
    run.set_tags(fields.get("tags") or [])
    if run.start_time is None:
        run.start_time = utc_now()
    if run.status in FINISHED and run.end_time is None:
        run.end_time = max(utc_now(), run.start_time)
    db.session.add(run)
    try:
        db.session.flush()
        rollups.move_contribution(None, rollups.run_contribution(run, None))
        db.session.commit()
    except IntegrityError:
        # Another request created the same external_id between our read and our insert.
        db.session.rollback()
        existing = _existing_run_for_create(fields)
        if existing is None:
            raise
        return existing, False
    return run, True


def update_run(run_id: int, changes: dict[str, Any]) -> Run:
    """Apply a partial update to a run; status and end_time are kept in agreement.

    completed/failed without an end_time (none given, none stored) ends the run now;
    back to in_progress clears end_time.
    """
    run = get_run(run_id, for_update=True)
    changes = dict(changes)
    status = changes.get("status")
    if status is RunStatus.IN_PROGRESS:
        if changes.get("end_time") is not None:
            raise InvalidInput(
                "An in_progress run has no end_time: leave end_time out (it is cleared).",
                {"json": {"end_time": ["Must be null when status is in_progress."]}},
            )
        changes["end_time"] = None
    elif status in FINISHED and changes.get("end_time", run.end_time) is None:
        changes["end_time"] = max(utc_now(), run.start_time)
    _check_end_time(run.start_time, changes.get("end_time", run.end_time))
    external_id = changes.get("external_id")
    if external_id is not None and external_id != run.external_id:
        _refuse_taken_external_id(external_id)
    if "tags" in changes:
        run.set_tags(changes.pop("tags"))
    try:
        if {"status", "end_time"} & changes.keys():
            rollups.track_run_change(
                run, rollups.stored_bests(run.id), lambda: _set_fields(run, changes)
            )
        else:
            _set_fields(run, changes)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if external_id is not None:
            _refuse_taken_external_id(external_id)
        raise
    return run


def _set_fields(run: Run, changes: dict[str, Any]) -> None:
    for name, value in changes.items():
        setattr(run, name, value)


def _refuse_taken_external_id(external_id: str) -> None:
    other = run_by_external_id(external_id)
    if other is not None:
        raise Conflict(
            f"external_id {external_id!r} already belongs to run {other.id}.",
            {"json": {"external_id": [f"Already used by run {other.id}."]}},
        )


def delete_run(run_id: int) -> None:
    """Delete a run; the database cascades to its metrics, evaluations and clients."""
    get_run(run_id, for_update=True)
    leaving = rollups.stored_contribution(run_id)
    db.session.execute(delete(Run).where(Run.id == run_id))
    rollups.move_contribution(leaving, None)
    db.session.commit()
