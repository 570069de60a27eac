"""GET /api/runs/analytics/summary: centralized vs federated analytics."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import RAISE

from runs_service.api.blueprint import Blueprint
from runs_service.schemas.analytics import AnalyticsQuerySchema, AnalyticsSummarySchema
from runs_service.services import analytics

blp = Blueprint(
    "analytics",
    __name__,
    url_prefix="/api/runs",
    description="Analytics across runs; its operation is tagged results.",
)


@blp.route("/analytics/summary", tags=["results"])
class AnalyticsSummary(MethodView):
    @blp.arguments(AnalyticsQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, AnalyticsSummarySchema)
    def get(self, query):
        """Status counts, success rate, per-mode averages, their comparison and the top runs.

        An empty database answers zeros and nulls. Unknown parameters and values are 422.
        Under the status, training_mode and days filters (best values) the counts and
        averages come from roll-ups kept at write time, so their cost does not grow with
        the number of runs; experiment, tag or value=final read the matching runs.
        """
        return analytics.analytics_summary(**query)
