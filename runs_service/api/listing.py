"""GET /api/runs/list: a filtered, sorted page of run summaries."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import RAISE

from runs_service.api.blueprint import Blueprint
from runs_service.schemas.listing import RunListQuerySchema, RunListSchema
from runs_service.services import listing

blp = Blueprint(
    "listing",
    __name__,
    url_prefix="/api/runs",
    description="The run list; its operation is tagged runs.",
)


@blp.route("/list", tags=["runs"])
class RunList(MethodView):
    @blp.arguments(RunListQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, RunListSchema)
    def get(self, query):
        """A page of run summaries with the total number of runs matching the filters.

        Unknown parameters and values are 422, never silently replaced.
        """
        return listing.list_runs(**query)
