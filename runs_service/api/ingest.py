"""Batch writes of metric points, server evaluations and clients."""

from __future__ import annotations

from flask.views import MethodView

from runs_service.api.blueprint import Blueprint
from runs_service.api.docs import write_operation
from runs_service.schemas.common import BatchResultSchema
from runs_service.schemas.ingest import (
    ClientBatchSchema,
    MetricBatchSchema,
    ServerEvaluationBatchSchema,
)
from runs_service.services import ingest

blp = Blueprint(
    "ingest",
    __name__,
    url_prefix="/api/runs",
    description="Batch writes: all or nothing, idempotent, answered with counts.",
)


@blp.route("/<run_id:run_id>/metrics")
class RunMetrics(MethodView):
    @blp.arguments(MetricBatchSchema)
    @blp.response(200, BatchResultSchema)
    @write_operation(blp, 404, 409)
    def post(self, body, run_id):
        """Log up to 10,000 metric points; a point written again replaces its value."""
        return ingest.log_metrics(run_id, body["metrics"])


@blp.route("/<run_id:run_id>/server-evaluations")
class RunServerEvaluations(MethodView):
    @blp.arguments(ServerEvaluationBatchSchema)
    @blp.response(200, BatchResultSchema)
    @write_operation(blp, 404, 409)
    def post(self, body, run_id):
        """Log up to 1,000 per-round server evaluations of a federated run (409 otherwise)."""
        return ingest.log_server_evaluations(run_id, body["evaluations"])


@blp.route("/<run_id:run_id>/clients")
class RunClients(MethodView):
    @blp.arguments(ClientBatchSchema)
    @blp.response(200, BatchResultSchema)
    @write_operation(blp, 404, 409)
    def post(self, body, run_id):
        """Register clients of a federated run; registering again changes nothing."""
        return ingest.register_clients(run_id, body["clients"])
