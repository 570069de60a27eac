"""Per-run reads: ExperimentResults, federated rounds and server evaluations.

Each read loads the run and its history in a fixed number of statements; every
number is derived by services.definitions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from runs_service.catalogue import (
    CENTRALIZED_METRIC_NAMES,
    SERVER_NUMBER_FIELDS,
    VALIDATION_METRICS,
)
from runs_service.extensions import db
from runs_service.models import Client, Run, RunMetric, ServerEvaluation, TrainingMode
from runs_service.services.definitions import (
    CentralizedView,
    FederatedView,
    client_count,
    duration_minutes,
    server_evaluation_entry,
    server_evaluation_summary,
    summarize_centralized,
    summarize_federated,
)
from runs_service.services.runs import get_run

EVALUATION_COLUMNS = tuple(
    getattr(ServerEvaluation, name)
    for name in ("round_number", *SERVER_NUMBER_FIELDS, "evaluation_time", "additional_metrics")
)
# metadata key -> final_metrics key it repeats.
FINAL_METADATA_SOURCES = (
    ("final_accuracy", "accuracy"),
    ("final_precision", "precision"),
    ("final_recall", "recall"),
    ("final_f1", "f1_score"),
    ("final_auc", "auc"),
    ("final_loss", "loss"),
)
# federated-rounds metrics key -> server-evaluation field.
ROUND_METRIC_SOURCES = tuple((metric.key, metric.server_field) for metric in VALIDATION_METRICS)


@dataclass(frozen=True)
class RunResults:
    """A run and everything derived from its history."""

    run: Run
    view: CentralizedView | FederatedView

    @property
    def is_federated(self) -> bool:
        """Return whether the history comes from server evaluations."""
        return isinstance(self.view, FederatedView)


def _centralized_points(run_id: int) -> Sequence[tuple[str, int, float]]:
    # Client-local metrics of federated runs are not the run's own history.
    statement = (
        select(RunMetric.metric_name, RunMetric.step, RunMetric.metric_value).where(
            RunMetric.run_id == run_id,
            # client_key is 0 exactly for run-level points, and it is part of the point
            # index, unlike client_id (whose own index SQLite would otherwise pick).
            RunMetric.client_key == 0,
            RunMetric.metric_name.in_(CENTRALIZED_METRIC_NAMES),
        )
        # No ORDER BY: summarize_centralized gives the same answer in any row order.
    )
    # Through the Core connection: the ORM's row loading would cost more than the query
    # for a 14,000-point history, and these are plain columns.
    return db.session.connection().execute(statement).all()


def _server_evaluations(run_id: int) -> Sequence[Mapping[str, Any]]:
    statement = (
        select(*EVALUATION_COLUMNS)
        .where(ServerEvaluation.run_id == run_id)
        .order_by(ServerEvaluation.round_number)
    )
    return db.session.execute(statement).mappings().all()


def registered_clients(run_id: int) -> int:
    """How many clients are registered for a run."""
    statement = select(func.count()).select_from(Client).where(Client.run_id == run_id)
    return db.session.execute(statement).scalar_one()


def load_history_view(run: Run) -> CentralizedView | FederatedView:
    """Load a run's history in one statement and derive everything from it."""
    if run.training_mode is TrainingMode.FEDERATED:
        return summarize_federated(_server_evaluations(run.id))
    return summarize_centralized(_centralized_points(run.id))


def load_run_results(run_id: int) -> RunResults:
    """Load a run and its history in two statements; RunNotFound when it does not exist."""
    run = get_run(run_id)
    return RunResults(run, load_history_view(run))


def experiment_results(results: RunResults) -> dict[str, Any]:
    """Shape ExperimentResults (SPEC §4.1) from a run and its derived view."""
    run, view = results.run, results.view
    experiment_id = f"run_{run.id}"
    initial = view.initial if isinstance(view, FederatedView) else None
    return {
        "experiment_id": experiment_id,
        "training_mode": run.training_mode,
        "status": run.status,
        "final_metrics": view.final_metrics,
        "training_history": view.history,
        "total_epochs": view.total_epochs,
        "metadata": {
            "experiment_name": run.run_description or experiment_id,
            "start_time": run.start_time,
            "end_time": run.end_time,
            "duration_minutes": duration_minutes(run.start_time, run.end_time),
            "total_epochs": view.total_epochs,
            **view.bests,
            **{key: view.final_metrics[source] for key, source in FINAL_METADATA_SOURCES},
            "initial_evaluation": None if initial is None else server_evaluation_entry(initial),
        },
        "confusion_matrix": view.final_confusion_matrix,
    }


def get_experiment_results(run_id: int) -> dict[str, Any]:
    """Return the ExperimentResults of a run."""
    return experiment_results(load_run_results(run_id))


def federated_round_entry(evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """Shape one round for charts, leaving out the metrics that were not logged."""
    metrics = {key: evaluation.get(field) for key, field in ROUND_METRIC_SOURCES}
    return {
        "round": evaluation["round_number"],
        "metrics": {key: value for key, value in metrics.items() if value is not None},
    }


def get_federated_rounds(run_id: int) -> dict[str, Any]:
    """Return every evaluated round of a federated run (round 0 included) for charts."""
    run = get_run(run_id)
    if run.training_mode is not TrainingMode.FEDERATED:
        return {"is_federated": False, "num_rounds": 0, "num_clients": 0, "rounds": []}
    evaluations = _server_evaluations(run.id)
    return {
        "is_federated": True,
        "num_rounds": summarize_federated(evaluations).num_rounds,
        "num_clients": client_count(registered_clients(run.id), run.config),
        "rounds": [federated_round_entry(evaluation) for evaluation in evaluations],
    }


def get_server_evaluation(run_id: int) -> dict[str, Any]:
    """Return every server evaluation of a run (round 0 included) with their summary."""
    run = get_run(run_id)
    is_federated = run.training_mode is TrainingMode.FEDERATED
    evaluations = _server_evaluations(run.id) if is_federated else []
    return {
        "run_id": run.id,
        "is_federated": is_federated,
        "has_server_evaluation": bool(evaluations),
        "evaluations": [server_evaluation_entry(evaluation) for evaluation in evaluations],
        "summary": server_evaluation_summary(evaluations),
    }


def latest_server_evaluations(run_id: int, latest: int) -> list[dict[str, Any]]:
    """The initial evaluation (round 0) and the latest `latest` training rounds of a run,
    shaped as get_server_evaluation's entries, in round order: two index lookups however
    many rounds the run has."""
    columns = select(*EVALUATION_COLUMNS).where(ServerEvaluation.run_id == run_id)
    initial = columns.where(ServerEvaluation.round_number == 0)
    training = (
        columns.where(ServerEvaluation.round_number >= 1)
        .order_by(ServerEvaluation.round_number.desc())
        .limit(latest)
    )
    evaluations = [
        *db.session.execute(initial).mappings(),
        *reversed(db.session.execute(training).mappings().all()),
    ]
    return [server_evaluation_entry(evaluation) for evaluation in evaluations]
