"""Loading prepared runs (demo data) through the same writes as the API.

The caller hands over bodies already loaded by the API's own schemas (the CLI does),
so a prepared run passes exactly the validation a client's requests would.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from sqlalchemy import exists, select

from runs_service.catalogue import MAX_METRICS_PER_BATCH
from runs_service.demo_data import results_document
from runs_service.extensions import db
from runs_service.models import Run
from runs_service.services import ingest
from runs_service.services.backfill import results_file_name
from runs_service.services.runs import create_run


def database_is_empty() -> bool:
    return not db.session.scalar(select(exists().where(Run.id.is_not(None))))


def load_run(
    fields: dict[str, Any],
    clients: Sequence[dict[str, Any]],
    metrics: Sequence[dict[str, Any]],
    evaluations: Sequence[dict[str, Any]],
) -> int:
    """Create one run with its clients, metrics and server evaluations; returns its id."""
    run = create_run(fields)
    if clients:
        ingest.register_clients(run.id, clients)
    for start in range(0, len(metrics), MAX_METRICS_PER_BATCH):
        ingest.log_metrics(run.id, metrics[start : start + MAX_METRICS_PER_BATCH])
    if evaluations:
        ingest.log_server_evaluations(run.id, evaluations)
    return run.id


def write_results_file(results_dir: str, run_id: int, evaluations: list[dict]) -> str:
    """Write the federated server's results file of a demo run; returns its path."""
    os.makedirs(results_dir, exist_ok=True)
    path = os.path.join(results_dir, results_file_name(run_id))
    with open(path, "w", encoding="utf-8") as file:
        json.dump(results_document(evaluations), file, indent=2)
        file.write("\n")
    return path
