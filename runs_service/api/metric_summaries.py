"""Per-series summaries of a run, and the metric names in use (SPEC §7, tag metrics)."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import RAISE

from runs_service.api.blueprint import Blueprint
from runs_service.api.docs import error_responses
from runs_service.schemas.metric_summaries import (
    MetricNamesSchema,
    MetricSummariesQuerySchema,
    MetricSummariesSchema,
)
from runs_service.services import metric_summaries

blp = Blueprint(
    "metric_summaries",
    __name__,
    url_prefix="/api/runs",
    description="Any metric: per-series summaries and the names in use.",
)


@blp.route("/<run_id:run_id>/metric-summaries", tags=["metrics"])
class RunMetricSummaries(MethodView):
    @blp.arguments(MetricSummariesQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, MetricSummariesSchema)
    @error_responses(blp, 404, 422)
    def get(self, query, run_id):
        """Count, mean, first, last, min, max and best (with steps) of each series.

        Kept at write time: answering never scans the run's points. A series is every point
        with one name and client; server evaluations form the server_* series (step =
        round, round 0 included; their best counts training rounds only).
        """
        return metric_summaries.get_metric_summaries(run_id, **query)


@blp.route("/metric-names", tags=["metrics"])
class MetricNames(MethodView):
    @blp.response(200, MetricNamesSchema)
    def get(self):
        """Every run-level series name in use, with its direction and how many runs have it."""
        return metric_summaries.metric_names()
