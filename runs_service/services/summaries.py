"""Keeping each run's stored summary (models.RunSummary) in step with its data."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ScalarSelect, func, select

from runs_service.catalogue import SCORE_METRICS, SERVER_COUNT_FIELDS
from runs_service.extensions import db
from runs_service.models import Client, Run, RunMetric, RunSummary
from runs_service.models.types import utc_now
from runs_service.services.definitions import CentralizedView, FederatedView
from runs_service.services.results import load_history_view
from runs_service.services.upsert import dialect_insert

# RunSummary column -> key of a history view's bests.
BEST_COLUMNS = tuple((f"best_{metric.key}", metric.best_key) for metric in SCORE_METRICS)
FINAL_COUNT_COLUMNS = tuple((f"final_{name}", name) for name in SERVER_COUNT_FIELDS)


def summary_values(
    view: CentralizedView | FederatedView, metrics_count: int, clients: int
) -> dict[str, Any]:
    """The stored facts of a run, all taken from its derived history view."""
    matrix = view.final_confusion_matrix or {}
    federated = isinstance(view, FederatedView)
    return {
        "metrics_count": metrics_count,
        **{column: view.bests[key] for column, key in BEST_COLUMNS},
        **{column: matrix.get(key) for column, key in FINAL_COUNT_COLUMNS},
        "has_server_evaluation": federated and (bool(view.history) or view.initial is not None),
        "num_rounds": view.num_rounds if federated else 0,
        "latest_round": view.latest_round if federated else None,
        "latest_accuracy": view.final_metrics["accuracy"] if federated else None,
        "registered_clients": clients,
    }


def _counts(run_id: int) -> tuple[ScalarSelect[int], ScalarSelect[int]]:
    """The run's stored metric points and registered clients, as subqueries."""
    return (
        select(func.count()).where(RunMetric.run_id == run_id).scalar_subquery(),
        select(func.count()).where(Client.run_id == run_id).scalar_subquery(),
    )


def refresh_run_summary(run: Run, *, history_changed: bool = True) -> None:
    """Recompute a run's summary inside the caller's transaction (the caller commits).

    history_changed=False recomputes the counts only, in one statement, for writes that
    cannot touch the run's history (client-local metrics of a federated run, whose
    history is its server evaluations).
    """
    if not history_changed:
        metrics_count, clients = _counts(run.id)
        update = (
            RunSummary.__table__.update()
            .where(RunSummary.run_id == run.id)
            .values(metrics_count=metrics_count, registered_clients=clients, updated_at=utc_now())
        )
        if db.session.execute(update).rowcount == 1:
            return
        # No summary yet (a database restored without them): build it whole.
    metrics_count, clients = db.session.execute(select(*_counts(run.id))).one()
    values = summary_values(load_history_view(run), metrics_count, clients)
    values["updated_at"] = utc_now()
    insert = dialect_insert(db.session, RunSummary.__table__).values(run_id=run.id, **values)
    db.session.execute(insert.on_conflict_do_update(index_elements=["run_id"], set_=values))


def refresh_all_summaries() -> int:
    """Recompute every run's summary (after a restore or a definition change)."""
    runs = db.session.scalars(select(Run).order_by(Run.id)).all()
    for run in runs:
        refresh_run_summary(run)
    db.session.commit()
    return len(runs)
