"""The dashboard: HTML pages for people, rendered from the same services as the JSON API.

Every page is a Jinja shell. Its data parts are fragments (Jinja templates, autoescaped)
that are rendered inline when reads are open; when reads need a token
(RUNS_REQUIRE_AUTH_FOR_READS) the shell holds placeholders that the page's script
fills by fetching the same fragments with the token from the tab's session storage.
So each piece of data has one template, and nothing a user wrote reaches the page
without Jinja's escaping. Charts fetch the JSON API.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, render_template, request, url_for
from marshmallow import RAISE, Schema, ValidationError
from webargs.multidictproxy import MultiDictProxy
from werkzeug.datastructures import MultiDict

from runs_service.catalogue import LIST_SORT_KEYS
from runs_service.errors import RunNotFound, validation_message
from runs_service.models import TrainingMode
from runs_service.schemas.analytics import AnalyticsQuerySchema
from runs_service.schemas.listing import RunListQuerySchema
from runs_service.services import analytics as analytics_service
from runs_service.services import listing
from runs_service.services import overview as overview_service
from runs_service.services import results as results_service
from runs_service.web.formatting import FILTERS, best_index, label

bp = Blueprint(
    "web",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/assets",
)

# Everything the pages load comes from this origin; no inline script or style at all.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'; object-src 'none'"
)
LIST_PAGE_SIZE = 50
# The run page's per-round table: round 0 and this many latest rounds (the API has all).
SERVER_ROUNDS_SHOWN = 50
MAX_COMPARED_RUNS = 20
PAGE_QUERY_ONLY = ("run_ids",)
METRIC_SORT_FIELDS = ("sort_metric", "sort_stat")
# Overview values compared side by side: (part, key, label, higher is better).
COMPARED_METRICS = (
    ("bests", "best_val_accuracy", "Best accuracy", True),
    ("bests", "best_val_precision", "Best precision", True),
    ("bests", "best_val_recall", "Best recall", True),
    ("bests", "best_val_f1", "Best F1", True),
    ("bests", "best_val_auroc", "Best AUROC", True),
    ("bests", "best_val_loss", "Lowest loss", False),
    ("final_metrics", "accuracy", "Final accuracy", True),
    ("final_metrics", "recall", "Final recall", True),
    ("final_metrics", "loss", "Final loss", False),
)
# Sort keys whose words alone would not say what they sort by.
SORT_LABELS = {"id": "run id", "training_mode": "mode"}


def open_page(view: Callable) -> Callable:
    """Mark a page shell as reachable without a token (security.check_request reads it)."""
    view.open_without_token = True
    return view


def reads_are_open() -> bool:
    return not current_app.config["RUNS_REQUIRE_AUTH_FOR_READS"]


def fragment_url(endpoint: str, **values: Any) -> str:
    """The fragment of the current page, with the page's own query string."""
    query = request.query_string.decode()
    return url_for(endpoint, **values) + (f"?{query}" if query else "")


def query_with(**changes: Any) -> str:
    """The current query string with some parameters changed (None removes one)."""
    args = MultiDict(request.args)
    for name, value in changes.items():
        args.pop(name, None)
        if value is not None:
            args[name] = value
    pairs = [(name, value) for name, value in args.items(multi=True) if value != ""]
    return "?" + urlencode(pairs) if pairs else "?"


def load_query(
    schema: Schema, defaults: Mapping[str, str] | None = None, ignored: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Parse the page's query with the API's own schema; empty form fields count as absent."""
    args: MultiDict[str, str] = MultiDict()
    for name, value in request.args.items(multi=True):
        if value.strip() and name not in PAGE_QUERY_ONLY and name not in ignored:
            args.add(name, value)
    for name, value in (defaults or {}).items():
        if name not in args:
            args[name] = value
    return schema.load(MultiDictProxy(args, schema), unknown=RAISE)


def query_error(error: ValidationError) -> str:
    return validation_message({"query": error.messages})


@bp.app_template_global()
def current_query(**changes: Any) -> str:
    return query_with(**changes)


@bp.after_request
def security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@bp.errorhandler(RunNotFound)
def run_not_found(error: RunNotFound):
    """Browsers get an HTML page for a missing run; the API keeps its JSON errors."""
    return render_template("not_found.html", message=error.message), 404


# The run list


def run_list_context() -> tuple[dict[str, Any], int]:
    # The form always sends its metric-sort fields; they count only with sort_by=metric.
    ignored = () if request.args.get("sort_by") == "metric" else METRIC_SORT_FIELDS
    try:
        query = load_query(RunListQuerySchema(), {"limit": str(LIST_PAGE_SIZE)}, ignored)
    except ValidationError as error:
        return {"error": query_error(error)}, 422
    return {"query": query, "page": listing.list_runs(**query)}, 200


def list_form_context() -> dict[str, Any]:
    """What the filter form offers: the list query's own parameters and sort keys."""
    return {
        "list_fields": set(RunListQuerySchema().fields),
        "sort_choices": [(key, SORT_LABELS.get(key) or label(key)) for key in LIST_SORT_KEYS],
    }


@bp.get("/")
@open_page
def run_list():
    context, status = run_list_context() if reads_are_open() else ({}, 200)
    url = fragment_url("web.run_list_fragment")
    page = render_template("run_list.html", fragment=url, **list_form_context(), **context)
    return page, status


@bp.get("/fragments/runs")
def run_list_fragment():
    context, status = run_list_context()
    return render_template("_run_table.html", **context), status


# One run


def run_context(run_id: int) -> dict[str, Any]:
    overview = overview_service.run_overview(run_id)
    run = overview["run"]
    context: dict[str, Any] = {
        "run": run,
        "overview": overview,
        "server_rounds": None,
        "server_rounds_shown": SERVER_ROUNDS_SHOWN,
    }
    if run.training_mode is TrainingMode.FEDERATED:
        context["server_rounds"] = results_service.latest_server_evaluations(
            run_id, SERVER_ROUNDS_SHOWN
        )
    return context


@bp.get("/runs/<run_id:run_id>")
@open_page
def run_page(run_id: int):
    context = run_context(run_id) if reads_are_open() else {}
    url = fragment_url("web.run_fragment", run_id=run_id)
    return render_template("run.html", run_id=run_id, fragment=url, **context)


@bp.get("/runs/<path:anything>")
@open_page
def run_page_unknown(anything: str):
    message = f"There is no run at /runs/{anything}: a run id is a whole number from 1."
    return render_template("not_found.html", message=message), 404


@bp.get("/fragments/runs/<run_id:run_id>")
def run_fragment(run_id: int):
    return render_template("_run_body.html", run_id=run_id, **run_context(run_id))


# Comparison


def compared_run_ids() -> list[int]:
    """run_ids as a comma list or repeated parameters (the list page's checkboxes)."""
    ids: list[int] = []
    for raw in request.args.getlist("run_ids"):
        for part in raw.split(","):
            if part.strip().isdigit() and int(part) not in ids:
                ids.append(int(part))
    return ids


def compare_context() -> tuple[dict[str, Any], int]:
    run_ids = compared_run_ids()
    if not run_ids:
        return {"error": "Choose runs to compare: tick them in the run list."}, 200
    if len(run_ids) > MAX_COMPARED_RUNS:
        return {"error": f"Compare at most {MAX_COMPARED_RUNS} runs at once."}, 422
    overviews = overview_service.run_overviews(run_ids)
    missing = [run_id for run_id in run_ids if run_id not in overviews]
    if missing:
        names = ", ".join(str(run_id) for run_id in missing)
        return {"error": f"Run(s) {names} not found."}, 404
    compared = [overviews[run_id] for run_id in run_ids]
    rows = [
        {
            "label": text,
            "cells": (values := [overview[part][key] for overview in compared]),
            "best": best_index(values, higher_is_better),
        }
        for part, key, text, higher_is_better in COMPARED_METRICS
    ]
    return {"compared_ids": run_ids, "compared": compared, "summary_rows": rows}, 200


@bp.get("/compare")
@open_page
def compare_page():
    context, status = compare_context() if reads_are_open() else ({}, 200)
    ids = ",".join(str(run_id) for run_id in compared_run_ids())
    url = fragment_url("web.compare_fragment")
    return render_template("compare.html", fragment=url, run_ids=ids, **context), status


@bp.get("/fragments/compare")
def compare_fragment():
    context, status = compare_context()
    return render_template("_compare_body.html", **context), status


# Analytics


def analytics_context() -> tuple[dict[str, Any], int]:
    try:
        query = load_query(AnalyticsQuerySchema())
    except ValidationError as error:
        return {"error": query_error(error)}, 422
    return {"query": query, "summary": analytics_service.analytics_summary(**query)}, 200


@bp.get("/analytics")
@open_page
def analytics_page():
    context, status = analytics_context() if reads_are_open() else ({}, 200)
    url = fragment_url("web.analytics_fragment")
    fields = set(AnalyticsQuerySchema().fields)
    page = render_template("analytics.html", fragment=url, analytics_fields=fields, **context)
    return page, status


@bp.get("/fragments/analytics")
def analytics_fragment():
    context, status = analytics_context()
    return render_template("_analytics_body.html", **context), status


def register_dashboard(app) -> None:
    """Register the dashboard blueprint and its template filters."""
    app.register_blueprint(bp)
    app.jinja_env.filters.update(FILTERS)
