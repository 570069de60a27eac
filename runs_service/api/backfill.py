"""Placeholder, filled by the backfill issue."""

from runs_service.api.blueprint import Blueprint

blp = Blueprint("backfill", __name__, url_prefix="/api/runs")
