"""Run records: create, read, update, delete."""

from __future__ import annotations

from flask import url_for
from flask.views import MethodView

from runs_service.api.blueprint import Blueprint
from runs_service.api.docs import error_responses, write_operation
from runs_service.schemas.runs import RunCreateSchema, RunSchema, RunUpdateSchema
from runs_service.services import runs as run_service

blp = Blueprint("runs", __name__, url_prefix="/api/runs", description="Training runs.")


LOCATION_HEADER = {"Location": {"description": "URL of the run.", "schema": {"type": "string"}}}


@blp.route("")
class Runs(MethodView):
    @blp.arguments(RunCreateSchema)
    @blp.response(201, RunSchema, description="Created: the new run.", headers=LOCATION_HEADER)
    @blp.alt_response(
        200,
        schema=RunSchema,
        description="A run with this external_id exists already: nothing is created, the "
        "existing run is returned (a create whose answer was lost can be retried).",
        headers=LOCATION_HEADER,
        success=True,
    )
    @write_operation(blp, 409)
    def post(self, fields):
        """Create a run; 201 with its record and Location, or 200 if external_id exists.

        `external_id` is unique: a create naming an existing one creates nothing and
        answers 200 with the existing run and its Location, whatever the other fields say;
        409 if that run has a different training_mode. Concurrent creates with the same
        external_id make one run. A run created as completed or failed without end_time
        ends now.
        """
        run, created = run_service.create_or_find_run(fields)
        location = url_for("runs.RunById", run_id=run.id, _external=True)
        return run, 201 if created else 200, {"Location": location}


@blp.route("/<run_id:run_id>")
class RunById(MethodView):
    @blp.response(200, RunSchema)
    @error_responses(blp, 404)
    def get(self, run_id):
        """One run record."""
        return run_service.get_run(run_id)

    @blp.arguments(
        RunUpdateSchema,
        required=False,
        description="The fields to change; without a body (or with {}) nothing changes.",
    )
    @blp.response(200, RunSchema)
    @write_operation(blp, 404, 409, 422)
    def patch(self, changes, run_id):
        """Update status, end_time, description, source_path, external_id or config.

        end_time must not be before the run's start_time (422). training_mode cannot change.
        Status and end_time agree: `completed` or `failed` without an end_time (none sent,
        none stored) sets end_time to now; back to `in_progress` clears end_time (sending
        one with it is 422). `config` replaces the whole stored object. An external_id
        that another run has is 409.
        """
        return run_service.update_run(run_id, changes)

    @blp.response(204)
    @write_operation(blp, 404, scope="admin")
    def delete(self, run_id):
        """Delete a run with its metrics, server evaluations and clients.

        Needs an admin token (`RUNS_ADMIN_TOKENS`); a write token gets 403.
        """
        run_service.delete_run(run_id)
