"""Placeholder, filled by the results API."""

from runs_service.api.blueprint import Blueprint

blp = Blueprint("listing", __name__, url_prefix="/api/runs")
