"""Keeping the analytics roll-ups (models.AnalyticsRollup) in step with the runs.

A run contributes to one roll-up group, (training mode, status, UTC start day, shard): one
run, each best score it has, and its duration when it has an end. Every write that
changes one of those moves the run's contribution: the old one out, the new one in, as
INSERT … ON CONFLICT increments in the writer's transaction. Sums are exact integers
(scores in units of 1e-12, durations in microseconds), so the stored rows depend only on
the runs, never on the order of the writes, and a rebuild from the runs finds them equal.
The group's max_accuracy cannot be decremented: when the run holding it leaves the group
or drops below it, the group's maximum is read again from that group's runs (one day's).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, localcontext
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Select,
    Update,
    bindparam,
    case,
    func,
    null,
    select,
    text,
    union_all,
)

from runs_service.catalogue import SCORE_KEYS
from runs_service.extensions import db
from runs_service.models import AnalyticsRollup, Run, RunStatus, RunSummary, TrainingMode
from runs_service.models.rollup import IN_PROGRESS_SHARDS, SCORE_SCALE
from runs_service.services import run_stats
from runs_service.services.upsert import CoreWrite, dialect_insert

GroupKey = tuple[TrainingMode, RunStatus, date, int]
KEY_COLUMNS = ("training_mode", "status", "start_day", "shard")
# Columns that add up (everything but the key and max_accuracy).
SUM_COLUMNS = (
    "runs",
    *(f"{score}_{part}" for score in SCORE_KEYS for part in ("count", "sum")),
    "duration_count",
    "duration_sum",
)
BEST_COLUMNS = tuple(f"best_{score}" for score in SCORE_KEYS)


def scaled_score(value: float) -> int:
    """A score as an integer number of 1e-12 units (how roll-ups sum them exactly)."""
    return round(value * SCORE_SCALE)


def duration_microseconds(start: datetime | None, end: datetime | None) -> int | None:
    """end - start in whole microseconds, None when either is missing."""
    if start is None or end is None:
        return None
    return (end - start) // timedelta(microseconds=1)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def group_key(run_id: int, mode: TrainingMode, status: RunStatus, start: datetime) -> GroupKey:
    """The roll-up group of a run: its mode, status, UTC start day and shard."""
    shard = run_id % IN_PROGRESS_SHARDS if status is RunStatus.IN_PROGRESS else 0
    return (TrainingMode(mode), RunStatus(status), _utc(start).date(), shard)


@dataclass(frozen=True)
class Contribution:
    """What one run adds to its roll-up group."""

    key: GroupKey
    bests: tuple[float | None, ...]  # per SCORE_KEYS
    duration: int | None  # microseconds

    @property
    def accuracy(self) -> float | None:
        return self.bests[SCORE_KEYS.index("accuracy")]

    def sums(self, sign: int) -> dict[str, int]:
        """The increments of the group's sum columns that add (+1) or remove (-1) this run."""
        values = {"runs": sign}
        for score, best in zip(SCORE_KEYS, self.bests, strict=True):
            present = best is not None
            values[f"{score}_count"] = sign * present
            values[f"{score}_sum"] = sign * scaled_score(best) if present else 0
        values["duration_count"] = sign * (self.duration is not None)
        values["duration_sum"] = sign * (self.duration or 0)
        return values


def contribution(
    run_id: int,
    mode: TrainingMode,
    status: RunStatus,
    start: datetime,
    end: datetime | None,
    bests: Mapping[str, float | None] | None,
) -> Contribution:
    """A run's contribution from its facts; bests maps best_* columns (None: no summary)."""
    bests = bests or {}
    return Contribution(
        key=group_key(run_id, mode, status, start),
        bests=tuple(bests.get(column) for column in BEST_COLUMNS),
        duration=duration_microseconds(start, end),
    )


def run_contribution(run: Run, bests: Mapping[str, float | None] | None) -> Contribution:
    return contribution(run.id, run.training_mode, run.status, run.start_time, run.end_time, bests)


def _connection() -> Any:
    """The session's connection: Core statements skip the ORM's per-statement work (the
    write path runs these on every batch; the caller flushes what must be seen)."""
    return db.session.connection()


@functools.cache
def _stored_bests_query() -> Select:
    return select(*(getattr(RunSummary, column) for column in BEST_COLUMNS)).where(
        RunSummary.run_id == bindparam("run_id")
    )


def stored_bests(run_id: int) -> dict[str, float | None] | None:
    """The run's stored best values (best_* columns), or None when it has no summary."""
    row = _connection().execute(_stored_bests_query(), {"run_id": run_id}).one_or_none()
    return None if row is None else dict(zip(BEST_COLUMNS, row, strict=True))


def _contributions_query() -> Select:
    """What runs contribute to their roll-ups: id, mode, status, times and bests."""
    return select(
        Run.id,
        Run.training_mode,
        Run.status,
        Run.start_time,
        Run.end_time,
        *(getattr(RunSummary, column) for column in BEST_COLUMNS),
    ).outerjoin(RunSummary, RunSummary.run_id == Run.id)


def contribution_of(row: Any) -> Contribution:
    """The contribution of a row of _contributions_query."""
    return contribution(*row[:5], dict(zip(BEST_COLUMNS, row[5:], strict=True)))


def stored_contribution(run_id: int) -> Contribution | None:
    """The contribution of the run as the database holds it now (None: no such run)."""
    row = db.session.execute(_contributions_query().where(Run.id == run_id)).one_or_none()
    if row is None:
        return None
    return contribution_of(row)


# --- Writing: one run's contribution moves ---


@functools.cache
def _increment_statement(dialect: str) -> Any:
    table = AnalyticsRollup.__table__
    columns = (*KEY_COLUMNS, *SUM_COLUMNS, "max_accuracy")
    insert = dialect_insert(db.session, table).values(
        {column: bindparam(column, type_=table.c[column].type) for column in columns}
    )
    stored, offered = table.c.max_accuracy, insert.excluded.max_accuracy
    upsert = insert.on_conflict_do_update(
        index_elements=list(KEY_COLUMNS),
        set_={
            **{column: table.c[column] + insert.excluded[column] for column in SUM_COLUMNS},
            "max_accuracy": case(
                (offered.is_(None), stored),
                ((stored.is_(None)) | (offered > stored), offered),
                else_=stored,
            ),
        },
    )
    return upsert.returning(table.c.runs)


@functools.cache
def _delete_empty_statement() -> Any:
    table = AnalyticsRollup.__table__
    return table.delete().where(
        *(table.c[column] == bindparam(column) for column in KEY_COLUMNS), table.c.runs == 0
    )


def _group_runs(sharded: bool) -> list[Any]:
    """Conditions selecting the runs of the group named by the key bind parameters."""
    conditions = [
        Run.training_mode == bindparam("key_training_mode"),
        Run.status == bindparam("key_status"),
        Run.start_time >= bindparam("day_start"),
        Run.start_time < bindparam("day_end"),
    ]
    if sharded:
        conditions.append(Run.id % IN_PROGRESS_SHARDS == bindparam("key_shard"))
    return conditions


@functools.cache
def _recompute_max_statement(sharded: bool) -> Update:
    """Set a group's max_accuracy from its runs, if it was at most `held` (the leaver's)."""
    table = AnalyticsRollup.__table__
    highest = (
        select(func.max(RunSummary.best_accuracy))
        .select_from(Run)
        .join(RunSummary, RunSummary.run_id == Run.id)
        .where(*_group_runs(sharded))
        .scalar_subquery()
    )
    return (
        table.update()
        .where(
            *(table.c[column] == bindparam(f"key_{column}") for column in KEY_COLUMNS),
            table.c.max_accuracy <= bindparam("held"),
        )
        .values(max_accuracy=highest)
    )


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, UTC)
    return start, start + timedelta(days=1)


def move_contribution(old: Contribution | None, new: Contribution | None) -> None:
    """Take a run's old contribution out of the roll-ups and put its new one in.

    Call it after the run's new state is written (flushed) in the same transaction: a
    group whose maximum leaves is recomputed from the runs as they are now.
    """
    if old == new:
        return
    increments: dict[GroupKey, dict[str, int]] = {}
    for part, sign in ((old, -1), (new, 1)):
        if part is None:
            continue
        sums = increments.setdefault(part.key, dict.fromkeys(SUM_COLUMNS, 0))
        for column, amount in part.sums(sign).items():
            sums[column] += amount
    statement = _increment_statement(db.session.get_bind().dialect.name)
    emptied: set[GroupKey] = set()
    # Keys in a fixed order: two writers moving runs between the same groups lock the
    # rows in the same order (no deadlock on PostgreSQL).
    for key in sorted(increments, key=_sortable):
        offered = new.accuracy if new is not None and new.key == key else None
        row = {**dict(zip(KEY_COLUMNS, key, strict=True)), **increments[key]}
        runs = _connection().execute(statement, {**row, "max_accuracy": offered}).scalar_one()
        if runs == 0:
            # The group's last run left: no row, as a rebuild would leave none.
            emptied.add(key)
            named = dict(zip(KEY_COLUMNS, key, strict=True))
            _connection().execute(_delete_empty_statement(), named)
    held = old.accuracy if old is not None else None
    if held is None or old.key in emptied:
        return
    stays = new is not None and new.key == old.key and (new.accuracy or -1.0) >= held
    if stays:
        return
    mode, status, day, shard = old.key
    day_start, day_end = _day_bounds(day)
    sharded = status is RunStatus.IN_PROGRESS
    _connection().execute(
        _recompute_max_statement(sharded),
        {
            "key_training_mode": mode,
            "key_status": status,
            "key_start_day": day,
            "key_shard": shard,
            "day_start": day_start,
            "day_end": day_end,
            "held": held,
        },
    )


def contribution_writes(
    old: Contribution | None, new: Contribution | None
) -> list[CoreWrite] | None:
    """A run's contribution moving within its group, as writes to send with the batch
    that changes it: none when nothing moves. None when only move_contribution can do it,
    after the batch: the run changes group, or the group's maximum may leave with it."""
    if old == new:
        return []
    if old is None or new is None or old.key != new.key:
        return None
    if old.accuracy is not None and (new.accuracy is None or new.accuracy < old.accuracy):
        return None
    removed, added = old.sums(-1), new.sums(1)
    row = {
        **dict(zip(KEY_COLUMNS, new.key, strict=True)),
        **{column: removed[column] + added[column] for column in SUM_COLUMNS},
        "max_accuracy": new.accuracy,
    }
    return [CoreWrite(_increment_statement(db.session.get_bind().dialect.name), row)]


def _sortable(key: GroupKey) -> tuple[str, str, date, int]:
    mode, status, day, shard = key
    return (mode.value, status.value, day, shard)


def track_run_change(run: Run, bests: Mapping[str, float | None] | None, change) -> None:
    """Apply `change()` (which writes the run's new state) and move its contribution.

    bests are the run's best values, which `change` does not touch.
    """
    old = run_contribution(run, bests)
    change()
    db.session.flush()
    move_contribution(old, run_contribution(run, bests))


# --- Rebuilding from the runs (flask refresh-rollups) ---


def _lock_for_rebuild() -> None:
    """Keep writers out while the roll-ups are rebuilt (SQLite: BEGIN IMMEDIATE did)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("LOCK TABLE analytics_rollups IN EXCLUSIVE MODE"))


def computed_rollups() -> dict[GroupKey, dict[str, Any]]:
    """Every roll-up row as the runs and their summaries say it should be."""
    rows = db.session.execute(_contributions_query().execution_options(yield_per=5000))
    groups: dict[GroupKey, dict[str, Any]] = {}
    for row in rows:
        part = contribution_of(row)
        group = groups.setdefault(part.key, {**dict.fromkeys(SUM_COLUMNS, 0), "max_accuracy": None})
        for column, amount in part.sums(1).items():
            group[column] += amount
        if part.accuracy is not None and (
            group["max_accuracy"] is None or part.accuracy > group["max_accuracy"]
        ):
            group["max_accuracy"] = part.accuracy
    return groups


def rebuild_rollups() -> int:
    """Make the roll-ups exactly what the runs say, commit, and return how many rows changed.

    Rows that are right are left alone, so running it on correct roll-ups writes nothing.
    """
    _lock_for_rebuild()
    table = AnalyticsRollup.__table__
    wanted = computed_rollups()
    columns = (*SUM_COLUMNS, "max_accuracy")
    stored = {
        (TrainingMode(row[0]), RunStatus(row[1]), row[2], row[3]): dict(
            zip(columns, row[4:], strict=True)
        )
        for row in db.session.execute(select(*(table.c[c] for c in (*KEY_COLUMNS, *columns))))
    }
    changed = 0
    for key in sorted(wanted.keys() | stored.keys(), key=_sortable):
        want, have = wanted.get(key), stored.get(key)
        named = dict(zip(KEY_COLUMNS, key, strict=True))
        where = [table.c[column] == value for column, value in named.items()]
        if want is None:
            db.session.execute(table.delete().where(*where))
            changed += 1
        elif have is None:
            db.session.execute(table.insert().values(**named, **want))
            changed += 1
        elif {column: _plain(have[column]) for column in columns} != want:
            db.session.execute(table.update().where(*where).values(**want))
            changed += 1
    db.session.commit()
    return changed


def _plain(value: Any) -> Any:
    """A summed value as Python compares it (PostgreSQL sums come back as Decimal)."""
    return value if value is None or isinstance(value, float) else int(value)


# --- Reading: the analytics totals per (mode, status) ---


@dataclass
class Totals:
    """Counts and exact sums of some runs (the roll-up columns): what averages are made of."""

    sums: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SUM_COLUMNS, 0))
    max_accuracy: float | None = None

    @property
    def runs(self) -> int:
        return self.sums["runs"]

    def add(self, sums: Mapping[str, int], max_accuracy: float | None) -> None:
        for column in SUM_COLUMNS:
            self.sums[column] += sums[column]
        if max_accuracy is not None and (
            self.max_accuracy is None or max_accuracy > self.max_accuracy
        ):
            self.max_accuracy = max_accuracy

    def mean_score(self, score: str) -> Decimal | None:
        """The exact mean of the score's best values (as summed, in 1e-12 units)."""
        return _mean(self.sums[f"{score}_sum"], self.sums[f"{score}_count"] * SCORE_SCALE)

    def mean_duration_minutes(self) -> Decimal | None:
        return _mean(self.sums["duration_sum"], self.sums["duration_count"] * 60 * 10**6)


def _mean(total: int, divisor: int) -> Decimal | None:
    if divisor == 0:
        return None
    with localcontext() as context:
        context.prec = 50
        return Decimal(total) / Decimal(divisor)


@functools.cache
def run_count_query(by_status: bool, by_mode: bool) -> Select:
    """How many runs have one of the statuses and one of the modes bound as `statuses`
    and `training_modes` (expanding; each only when asked): a sum over the roll-up rows
    (one per mode, status and start day), so it does not grow with the number of runs."""
    table = AnalyticsRollup.__table__
    query = select(func.coalesce(func.sum(table.c.runs), 0))
    if by_status:
        query = query.where(table.c.status.in_(bindparam("statuses", expanding=True)))
    if by_mode:
        query = query.where(table.c.training_mode.in_(bindparam("training_modes", expanding=True)))
    return query


def _rollup_filters(by_mode: bool, since_day: bool) -> list[Any]:
    table = AnalyticsRollup.__table__
    filters = []
    if by_mode:
        filters.append(table.c.training_mode == bindparam("training_mode"))
    if since_day:
        filters.append(table.c.start_day > bindparam("after_day"))
    return filters


@functools.cache
def _rollup_reading_query(
    by_mode: bool, since_day: bool, by_status: bool
) -> Select | CompoundSelect:
    """The roll-up rows added up: run counts per (mode, status), sums and maximum.

    With by_status, in one statement: the sums and maximum of the rows of the status
    asked for, per mode (status NULL), then every (mode, status)'s run count alone (sums
    NULL). The score sums, 13 columns a row, are what costs, and most rows are of runs in
    progress (IN_PROGRESS_SHARDS per mode and day), which the default question leaves
    out: on SQLite at 100,000 runs that is 1.1 ms against 4.3 for summing every row
    (BENCHMARKS.md, "Analytics on SQLite at 100,000 runs").
    """
    table = AnalyticsRollup.__table__
    filters = _rollup_filters(by_mode, since_day)
    totals = (
        *(func.sum(table.c[column]).label(column) for column in SUM_COLUMNS),
        func.max(table.c.max_accuracy).label("max_accuracy"),
    )
    if not by_status:
        return (
            select(table.c.training_mode, table.c.status, *totals)
            .where(*filters)
            .group_by(table.c.training_mode, table.c.status)
        )
    # The typed part first: the other's NULLs take its column types (PostgreSQL).
    asked = (
        select(table.c.training_mode, null().label("status"), *totals)
        .where(*filters, table.c.status == bindparam("status"))
        .group_by(table.c.training_mode)
    )
    counts = (
        select(
            table.c.training_mode,
            table.c.status,
            *(
                func.sum(table.c.runs) if column == "runs" else null()
                for column in (*SUM_COLUMNS, "max_accuracy")
            ),
        )
        .where(*filters)
        .group_by(table.c.training_mode, table.c.status)
    )
    return union_all(asked, counts)


@functools.cache
def _runs_query(filters: frozenset[str]) -> Select:
    """The matching runs' facts that make their contributions."""
    return _contributions_query().where(*run_stats.run_filters(filters))


@dataclass
class Reading:
    """What the roll-ups say of the runs of some mode(s) started since some moment."""

    # Every (mode, status)'s number of runs.
    runs: dict[tuple[TrainingMode, RunStatus], int] = field(default_factory=dict)
    # Per mode, the counts, sums and maximum of the runs of the statuses asked for.
    totals: dict[TrainingMode, Totals] = field(
        default_factory=lambda: {mode: Totals() for mode in TrainingMode}
    )

    def count(self, mode: str, status: str, runs: int) -> None:
        key = (TrainingMode(mode), RunStatus(status))
        self.runs[key] = self.runs.get(key, 0) + runs


def read_rollups(
    training_mode: TrainingMode | None,
    started_after: datetime | None,
    status: RunStatus | None,
) -> Reading:
    """The run counts of every status, and the totals of `status`'s runs (None: all), of
    the runs of training_mode (None: both) started at or after started_after (None: ever).

    Whole UTC days come from the roll-ups; the runs of the day started_after falls in are
    read themselves (the start_time index bounds that to one day's runs) and added up with
    the same arithmetic, so the sums stay exact. The roll-up rows are one statement
    (_rollup_reading_query), which sums scores only for the status asked for.
    """
    params: dict[str, Any] = {}
    if training_mode is not None:
        params["training_mode"] = training_mode
    reading = Reading()
    if started_after is not None:
        boundary = _utc(started_after)
        params["after_day"] = boundary.date()
        day_end = _day_bounds(boundary.date())[1]
        edge = {**params, "started_after": boundary, "started_before": day_end}
        for row in db.session.execute(_runs_query(run_stats.filter_names(edge)), edge):
            reading.count(row.training_mode, row.status, 1)
            if status is None or RunStatus(row.status) is status:
                part = contribution_of(row)
                reading.totals[TrainingMode(row.training_mode)].add(part.sums(1), part.accuracy)
    query = _rollup_reading_query(
        training_mode is not None, started_after is not None, status is not None
    )
    for row in db.session.execute(query, {**params, "status": status}):
        if row.status is not None:
            reading.count(row.training_mode, row.status, _plain(row.runs))
        if row.status is None or status is None:
            sums = {column: _plain(getattr(row, column)) for column in SUM_COLUMNS}
            reading.totals[TrainingMode(row.training_mode)].add(sums, row.max_accuracy)
    return reading
