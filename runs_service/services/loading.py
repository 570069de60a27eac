"""Loading prepared runs (demo data) through the same validation and writes as the API."""

from __future__ import annotations

import json
import os

from sqlalchemy import exists, select

from runs_service.demo_data import DemoRun, results_document
from runs_service.errors import InvalidInput
from runs_service.extensions import db
from runs_service.models import Run
from runs_service.schemas.ingest import (
    MAX_METRICS_PER_BATCH,
    ClientBatchSchema,
    MetricBatchSchema,
    ServerEvaluationBatchSchema,
)
from runs_service.schemas.runs import RunCreateSchema
from runs_service.services import ingest
from runs_service.services.backfill import results_file_name
from runs_service.services.runs import create_run


def database_is_empty() -> bool:
    return not db.session.scalar(select(exists().where(Run.id.is_not(None))))


def _validated(schema, body: dict) -> dict:
    errors = schema.validate(body)
    if errors:
        raise InvalidInput("Demo data does not pass the API's validation.", errors)
    return schema.load(body)


def load_demo_run(demo_run: DemoRun) -> int:
    """Create one run with its clients, metrics and server evaluations; returns its id."""
    run = create_run(_validated(RunCreateSchema(), demo_run.run))
    if demo_run.clients:
        body = _validated(ClientBatchSchema(), {"clients": demo_run.clients})
        ingest.register_clients(run.id, body["clients"])
    for start in range(0, len(demo_run.metrics), MAX_METRICS_PER_BATCH):
        chunk = demo_run.metrics[start : start + MAX_METRICS_PER_BATCH]
        body = _validated(MetricBatchSchema(), {"metrics": chunk})
        ingest.log_metrics(run.id, body["metrics"])
    if demo_run.evaluations and not demo_run.evaluations_in_results_file:
        body = _validated(ServerEvaluationBatchSchema(), {"evaluations": demo_run.evaluations})
        ingest.log_server_evaluations(run.id, body["evaluations"])
    return run.id


def write_results_file(results_dir: str, run_id: int, evaluations: list[dict]) -> str:
    """Write the federated server's results file of a demo run; returns its path."""
    os.makedirs(results_dir, exist_ok=True)
    path = os.path.join(results_dir, results_file_name(run_id))
    with open(path, "w", encoding="utf-8") as file:
        json.dump(results_document(evaluations), file, indent=2)
        file.write("\n")
    return path
