"""Backfill of a federated run's server evaluations from its results file."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from marshmallow import RAISE

from runs_service.api.blueprint import Blueprint
from runs_service.api.docs import write_operation
from runs_service.schemas.backfill import (
    BackfillQuerySchema,
    BackfillResultSchema,
    ResultsDocumentSchema,
)
from runs_service.services import backfill

blp = Blueprint(
    "backfill",
    __name__,
    url_prefix="/api/runs",
    description="Import the server evaluations a federated server wrote to its results file.",
)


@blp.route("/backfill/<run_id:run_id>/server-evaluations")
class BackfillServerEvaluations(MethodView):
    @blp.arguments(BackfillQuerySchema, location="query", unknown=RAISE)
    @blp.arguments(
        ResultsDocumentSchema,
        required=False,
        description="Optional: the results document itself. Without a body, the file "
        "results_{run_id}.json is read from the results directory.",
    )
    @blp.response(200, BackfillResultSchema)
    @write_operation(blp, 404, 409, 422)
    def post(self, query, document, run_id):
        """Import the per-round server evaluations of a federated run's results file.

        Without a request body the service reads `results_{run_id}.json` from its results
        directory (`RUNS_RESULTS_DIR`, never the working directory); with a JSON body it
        takes that body as the document. The document is
        `{"evaluate_metrics_serverapp": {"<round>": <metrics>}, ...}`, where each round's
        metrics are a JSON object or the legacy Python-literal string the server writes
        (`"{'server_loss': 0.69, 'server_cm_tp': 475.0, 'x': np.float64(0.9)}"`), read
        by a bounded parser that accepts only a flat mapping of names to numbers, numpy
        scalars or lists of numbers (no code is ever evaluated). Other sections are ignored.

        Every round passes the same validation as `POST /api/runs/{run_id}/server-evaluations`:
        scores in [0, 1], counts whole numbers ≥ 0 (`475.0` is stored as 475, `475.5` is
        invalid), finite numbers, the loss and additional metrics within ±2^53; missing keys
        are stored as null.
        Any invalid round fails the whole request with 422 naming the round and the reason,
        and nothing is written. Rounds are upserted: importing the same file again reports
        them all as unchanged. `dry_run=true` validates and reports the same counts, then
        rolls back.

        Errors: 404 when the run does not exist or `results_{run_id}.json` is not in the
        results directory; 409 for a centralized run; 413 when the file is over
        `RUNS_MAX_RESULTS_FILE_BYTES` (or the body over `RUNS_MAX_CONTENT_LENGTH`); 403 when
        the file resolves outside the results directory (e.g. a symbolic link pointing
        elsewhere) or is not a regular file; 422 when the file is not valid JSON (NaN and
        Infinity included), has no `evaluate_metrics_serverapp` section or an invalid
        round, or when a query parameter is unknown; a malformed JSON body is 400.
        """
        # security.py has already required any body to be JSON; no body means "read the file".
        if document is not None:
            return backfill.backfill_document(run_id, document, dry_run=query["dry_run"])
        return backfill.backfill_results_file(
            run_id,
            current_app.config["RUNS_RESULTS_DIR"],
            current_app.config["RUNS_MAX_RESULTS_FILE_BYTES"],
            dry_run=query["dry_run"],
        )
