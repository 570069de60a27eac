"""Batch writes: metric points, server evaluations and client registrations.

Every batch is one transaction (all or nothing) made of INSERT … ON CONFLICT
statements, so re-sending a batch or racing another writer never duplicates a row.
The run's row is locked first (PostgreSQL; SQLite serialises writers anyway), so the
summary recomputed at the end of a batch sees every batch committed before it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Any

from sqlalchemy import select

from runs_service.catalogue import SERVER_COUNT_FIELDS, SERVER_NUMBER_FIELDS, dataset_type_for
from runs_service.errors import Conflict, InvalidInput
from runs_service.extensions import db
from runs_service.models import Client, Run, RunMetric, ServerEvaluation, TrainingMode
from runs_service.services.metric_summaries import (
    delete_gone,
    evaluation_changes,
    existing_evaluations,
    metric_point_changes,
    new_point_count,
    read_batch_state,
    series_update,
    series_writes,
    store_series_update,
    stored_summaries,
)
from runs_service.services.runs import get_run
from runs_service.services.summaries import (
    metric_batch_writes,
    record_evaluation_batch,
    record_metric_batch,
    record_new_clients,
    series_to_read,
)
from runs_service.services.upsert import BatchResult, dialect_insert, upsert

EVALUATION_VALUE_FIELDS = (*SERVER_NUMBER_FIELDS, "evaluation_time", "additional_metrics")


def reject_duplicates(items: Sequence[Hashable], collection: str, what: str) -> None:
    """Refuse a batch that names the same item twice: which one should win is unclear."""
    first_index: dict[Hashable, int] = {}
    errors: dict[str, list[str]] = {}
    for index, key in enumerate(items):
        if key in first_index:
            errors[str(index)] = [f"Repeats the {what} of item {first_index[key]}."]
        else:
            first_index[key] = index
    if errors:
        index = next(iter(errors))
        raise InvalidInput(
            f"{collection}[{index}] repeats the {what} of item {first_index[items[int(index)]]}; "
            "send each item once per batch.",
            {"json": {collection: errors}},
        )


def _require_federated(run: Run, what: str) -> None:
    if run.training_mode is not TrainingMode.FEDERATED:
        raise Conflict(
            f"Run {run.id} is {run.training_mode.value}; {what} belong to federated runs."
        )


def _client_ids(run_id: int, identifiers: Iterable[str]) -> tuple[dict[str, int], int]:
    """Ids of the run's clients, registering the identifiers not seen before; and how many.

    Read first: a run's clients are nearly always registered already, and then one
    statement does. The caller holds the run's lock, so nobody registers in between.
    """
    wanted = sorted(set(identifiers))
    if not wanted:
        return {}, 0
    known = _known_client_ids(run_id, wanted)
    missing = [name for name in wanted if name not in known]
    if not missing:
        return known, 0
    insert = dialect_insert(db.session, Client.__table__).on_conflict_do_nothing(
        index_elements=["run_id", "client_identifier"]
    )
    db.session.execute(insert, [{"run_id": run_id, "client_identifier": name} for name in missing])
    return _known_client_ids(run_id, wanted), len(missing)


def _known_client_ids(run_id: int, identifiers: Sequence[str]) -> dict[str, int]:
    rows = db.session.execute(
        select(Client.client_identifier, Client.id).where(
            Client.run_id == run_id, Client.client_identifier.in_(identifiers)
        )
    )
    return dict(rows.all())


def _point_order(point: dict[str, Any]) -> tuple[str, int, str, int]:
    """Points of a batch by metric, step, client and round."""
    round_number = point.get("round_number")
    return (
        point["metric_name"],
        point["step"],
        point.get("client_identifier") or "",
        -1 if round_number is None else round_number,
    )


def log_metrics(run_id: int, points: Sequence[dict[str, Any]]) -> BatchResult:
    """Write a batch of metric points; the same point written again replaces its value."""
    reject_duplicates(
        [
            (p["metric_name"], p["step"], p.get("client_identifier"), p.get("round_number"))
            for p in points
        ],
        "metrics",
        "metric, step, client and round",
    )
    # The rows are built before the run's lock: on SQLite everything from the lock to the
    # commit holds the database's one write lock. A stable order makes concurrent
    # overlapping batches lock rows in the same order.
    points = sorted(points, key=_point_order)
    rows = [
        {
            "run_id": run_id,
            "metric_name": p["metric_name"],
            # A float even when a caller passes an int: PostgreSQL's unnest takes one type.
            "metric_value": float(p["metric_value"]),
            "step": p["step"],
            "dataset_type": (p.get("dataset_type") or dataset_type_for(p["metric_name"])),
            "client_id": None,
            "round_number": p.get("round_number"),
            "timestamp": p.get("timestamp"),
        }
        for p in points
    ]
    run = get_run(run_id, for_update=True)
    if any("client_identifier" in p or "round_number" in p for p in points):
        _require_federated(run, "client-local metrics (client_identifier, round_number)")
    client_ids, new_clients = _client_ids(
        run_id, (p["client_identifier"] for p in points if "client_identifier" in p)
    )
    if client_ids:
        for row, point in zip(rows, points, strict=True):
            row["client_id"] = client_ids.get(point.get("client_identifier"))
    federated = run.training_mode is TrainingMode.FEDERATED
    also = series_to_read(run)
    state = read_batch_state(run_id, rows, also=also)
    changes = metric_point_changes(rows, state.points, federated=federated)
    # Summaries follow the points this batch changed, never the run's whole history.
    update = series_update(
        run_id,
        changes,
        state.summaries,
        state.blocks,
        also,
        federated=federated,
        points_written=False,
    )
    key_columns = ("run_id", "metric_name", "step", "client_key", "round_key")
    value_columns = ("metric_value", "dataset_type", "timestamp")
    summary_writes = None
    if update is not None:
        # Points, summaries, blocks, and mostly the run's summary and roll-up, stored
        # together (PostgreSQL: one statement).
        inserted = new_point_count(rows, state.points)
        summary_writes = metric_batch_writes(
            run, inserted, new_clients, update.series, changes, state.run_bests
        )
        writes = [*series_writes(run_id, update), *(summary_writes or [])]
        result = upsert(db.session, RunMetric.__table__, rows, key_columns, value_columns, writes)
        delete_gone(run_id, update)
    else:
        # A change the stored facts cannot absorb: the points first, then the series and
        # blocks it touched recomputed from them.
        result = upsert(db.session, RunMetric.__table__, rows, key_columns, value_columns)
        update = series_update(
            run_id, changes, state.summaries, state.blocks, also, federated=federated
        )
        store_series_update(run_id, update)
    if summary_writes is None:
        record_metric_batch(
            run, result.inserted, new_clients, update.series, changes, state.run_bests
        )
    db.session.commit()
    return result


def _with_num_samples(evaluation: dict[str, Any]) -> dict[str, Any]:
    counts = [evaluation.get(name) for name in SERVER_COUNT_FIELDS]
    if evaluation.get("num_samples") is None and None not in counts:
        return {**evaluation, "num_samples": sum(counts)}
    return evaluation


def log_server_evaluations(
    run_id: int, evaluations: Sequence[dict[str, Any]], *, dry_run: bool = False
) -> BatchResult:
    """Write a batch of per-round server evaluations of a federated run, or dry-run it."""
    reject_duplicates([e["round_number"] for e in evaluations], "evaluations", "round_number")
    run = get_run(run_id, for_update=True)
    _require_federated(run, "server evaluations")
    rows = [
        {
            "run_id": run_id,
            "round_number": evaluation["round_number"],
            **{name: evaluation.get(name) for name in EVALUATION_VALUE_FIELDS},
        }
        for evaluation in map(_with_num_samples, evaluations)
    ]
    rows.sort(key=lambda r: r["round_number"])
    previous = existing_evaluations(run_id, (row["round_number"] for row in rows))
    result = upsert(
        db.session,
        ServerEvaluation.__table__,
        rows,
        key_columns=("run_id", "round_number"),
        value_columns=EVALUATION_VALUE_FIELDS,
    )
    if dry_run:
        # The same statements, rolled back, give exactly the counts a real write reports.
        db.session.rollback()
        return result
    changes = evaluation_changes(previous, rows)
    also = series_to_read(run)
    stored = stored_summaries(run_id, [*changes, *also])
    # Server-evaluation series have no blocks.
    update = series_update(run_id, changes, stored, {}, also, federated=True)
    store_series_update(run_id, update)
    series = update.series
    record_evaluation_batch(run, rows, previous, series, changes)
    db.session.commit()
    return result


def register_clients(run_id: int, clients: Sequence[dict[str, Any]]) -> BatchResult:
    """Register a federated run's clients; registering again changes nothing."""
    reject_duplicates([c["client_identifier"] for c in clients], "clients", "client_identifier")
    run = get_run(run_id, for_update=True)
    _require_federated(run, "clients")
    rows = sorted(
        (
            {
                "run_id": run_id,
                "client_identifier": c["client_identifier"],
                "client_config": c.get("client_config"),
            }
            for c in clients
        ),
        key=lambda r: r["client_identifier"],
    )
    result = upsert(
        db.session,
        Client.__table__,
        rows,
        key_columns=("run_id", "client_identifier"),
        value_columns=("client_config",),
    )
    record_new_clients(run, result.inserted)
    db.session.commit()
    return result
