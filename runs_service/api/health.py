"""Liveness and readiness probes."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields

from runs_service.api.blueprint import Blueprint
from runs_service.api.docs import error_responses
from runs_service.services.health import check_database

blp = Blueprint("health", __name__, description="Probes for load balancers and orchestrators.")


class ProbeSchema(Schema):
    status = fields.String(metadata={"description": "'ok' when healthy."})


@blp.route("/healthz")
class Healthz(MethodView):
    @blp.response(200, ProbeSchema)
    def get(self):
        """The process is alive (does not touch the database)."""
        return {"status": "ok"}


@blp.route("/readyz")
class Readyz(MethodView):
    @blp.response(200, ProbeSchema)
    @error_responses(blp, 503)
    def get(self):
        """The database is reachable; 503 with Retry-After when it is not."""
        check_database()
        return {"status": "ok"}
