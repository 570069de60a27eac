"""Series of any metric: a run's downsampled histories, its clients, and run comparison."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import RAISE

from runs_service.api.blueprint import Blueprint
from runs_service.api.docs import error_responses
from runs_service.schemas.metric_history import (
    CompareQuerySchema,
    CompareSchema,
    MetricHistoryQuerySchema,
    MetricHistorySchema,
    RunClientsSchema,
)
from runs_service.services import metric_history

blp = Blueprint(
    "metric_history",
    __name__,
    url_prefix="/api/runs",
    description="Any stored series: summaries, histories, clients and comparison of runs.",
)


@blp.route("/<run_id:run_id>/metric-history", tags=["metrics"])
class RunMetricHistory(MethodView):
    @blp.arguments(MetricHistoryQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, MetricHistorySchema)
    @error_responses(blp, 404, 422)
    def get(self, query, run_id):
        """Columnar series of one run, downsampled (M4) to at most max_points each.

        Run-level series by default, or one client's series with `client`; in a
        federated run, `server_*` series come from its server evaluations with the round
        as step (round 0 included). Each downsampled series has its own bucket grid.
        """
        return metric_history.metric_history(run_id, **query)


@blp.route("/<run_id:run_id>/clients", tags=["metrics"])
class RunClients(MethodView):
    @blp.response(200, RunClientsSchema)
    @error_responses(blp, 404)
    def get(self, run_id):
        """A run's registered clients, their configuration and the metric names they logged."""
        return metric_history.run_clients(run_id)


@blp.route("/compare", tags=["metrics"])
class CompareRuns(MethodView):
    @blp.arguments(CompareQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, CompareSchema)
    @error_responses(blp, 404, 422)
    def get(self, query):
        """The named series of several runs on one shared bucket grid, with their summaries.

        Series are read as metric-history reads them (run-level; `server_*` from the
        server evaluations of federated runs); a run without a series answers it with
        total_points 0 and empty arrays.
        """
        return metric_history.compare_runs(**query)
