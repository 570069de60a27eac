"""Run records: create, read, update, delete."""

from __future__ import annotations

from flask import url_for
from flask.views import MethodView

from runs_service.api.blueprint import Blueprint
from runs_service.api.docs import error_responses, write_operation
from runs_service.schemas.runs import RunCreateSchema, RunSchema, RunUpdateSchema
from runs_service.services import runs as run_service

blp = Blueprint("runs", __name__, url_prefix="/api/runs", description="Training runs.")


@blp.route("")
class Runs(MethodView):
    @blp.arguments(RunCreateSchema)
    @blp.response(201, RunSchema, headers={"Location": {"schema": {"type": "string"}}})
    @write_operation(blp)
    def post(self, fields):
        """Create a run; answers 201 with its record and Location."""
        run = run_service.create_run(fields)
        return run, 201, {"Location": url_for("runs.RunById", run_id=run.id, _external=True)}


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
    @write_operation(blp, 404, 422)
    def patch(self, changes, run_id):
        """Update status, end_time, description, source_path, external_id or config.

        end_time must not be before the run's start_time (422). training_mode cannot change.
        """
        return run_service.update_run(run_id, changes)

    @blp.response(204)
    @write_operation(blp, 404, scope="admin")
    def delete(self, run_id):
        """Delete a run with its metrics, server evaluations and clients.

        Needs an admin token (`RUNS_ADMIN_TOKENS`); a write token gets 403.
        """
        run_service.delete_run(run_id)
