"""Per-run reads: experiment results, downloads, federated rounds and server evaluations."""

from __future__ import annotations

from flask import Response, stream_with_context
from flask.views import MethodView

from runs_service.api.blueprint import Blueprint
from runs_service.api.docs import error_responses
from runs_service.schemas.results import (
    ExperimentResultsSchema,
    FederatedRoundsSchema,
    ServerEvaluationReportSchema,
)
from runs_service.services import exports
from runs_service.services import results as results_service

blp = Blueprint(
    "results",
    __name__,
    url_prefix="/api/runs",
    description="A run's results: metrics, downloads, federated rounds, server evaluations.",
)

TEXT_FILE = {"type": "string"}
ATTACHMENT_HEADERS = {
    "Content-Disposition": {
        "description": 'attachment; filename="run_{id}_…" (quoted).',
        "schema": {"type": "string"},
    }
}


def attachment(download: exports.Download) -> Response:
    """Stream a download as an attachment with a quoted filename."""
    return Response(
        stream_with_context(download.chunks),
        mimetype=download.mimetype,
        headers={"Content-Disposition": f'attachment; filename="{download.filename}"'},
    )


@blp.route("/<run_id:run_id>/metrics")
class RunExperimentResults(MethodView):
    @blp.response(200, ExperimentResultsSchema)
    @error_responses(blp, 404)
    def get(self, run_id):
        """ExperimentResults: final metrics, per-epoch history, bests and confusion matrix.

        A run with no metrics answers 200 with an empty history. Federated runs take
        their history from server evaluations of training rounds (round ≥ 1) and show
        round 0 as metadata.initial_evaluation.
        """
        return results_service.get_experiment_results(run_id)


@blp.route("/<run_id:run_id>/download/csv")
class RunCsvDownload(MethodView):
    @blp.response(
        200,
        TEXT_FILE,
        content_type="text/csv",
        description="run_{id}_metrics.csv: header "
        "epoch,train_loss,train_acc,train_f1,val_loss,val_acc,val_precision,val_recall,"
        "val_f1,val_auroc, one row per epoch ascending, an empty cell for a missing value.",
        headers=ATTACHMENT_HEADERS,
    )
    @error_responses(blp, 404)
    def get(self, run_id):
        """The training history as a streamed CSV file; 404 when the run has no history."""
        return attachment(exports.csv_download(run_id))


@blp.route("/<run_id:run_id>/download/json")
class RunJsonDownload(MethodView):
    @blp.response(
        200,
        ExperimentResultsSchema,
        description="run_{id}_results.json: the document GET /metrics answers.",
        headers=ATTACHMENT_HEADERS,
    )
    @error_responses(blp, 404)
    def get(self, run_id):
        """ExperimentResults as a streamed JSON file (an empty history is kept)."""
        return attachment(exports.json_download(run_id, ExperimentResultsSchema().dump))


@blp.route("/<run_id:run_id>/download/summary")
class RunSummaryDownload(MethodView):
    @blp.response(
        200,
        TEXT_FILE,
        content_type="text/plain",
        description="run_{id}_summary.txt: run facts, configuration, final and best metrics "
        "(4 places), the final confusion matrix with its statistics, and every epoch. "
        "Text fields are kept on one line and cannot start a spreadsheet formula.",
        headers=ATTACHMENT_HEADERS,
    )
    @error_responses(blp, 404)
    def get(self, run_id):
        """A plain-text summary report of the run, streamed."""
        return attachment(exports.summary_download(run_id))


@blp.route("/<run_id:run_id>/federated-rounds")
class RunFederatedRounds(MethodView):
    @blp.response(200, FederatedRoundsSchema)
    @error_responses(blp, 404)
    def get(self, run_id):
        """Per-round server metrics for charts, round 0 included; empty for centralized runs."""
        return results_service.get_federated_rounds(run_id)


@blp.route("/<run_id:run_id>/server-evaluation")
class RunServerEvaluation(MethodView):
    @blp.response(200, ServerEvaluationReportSchema)
    @error_responses(blp, 404)
    def get(self, run_id):
        """Every server-side evaluation (round 0 included) with a summary over training rounds."""
        return results_service.get_server_evaluation(run_id)
