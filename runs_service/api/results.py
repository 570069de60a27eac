"""Placeholder, filled by the results API."""

from runs_service.api.blueprint import Blueprint

blp = Blueprint("results", __name__, url_prefix="/api/runs")
