"""INSERT … ON CONFLICT for SQLite and PostgreSQL, with inserted/updated/unchanged counts."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Dialect, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import psycopg
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import UpdateBase

from runs_service.models.types import utc_now


@dataclass(frozen=True)
class BatchResult:
    """What a batch write did."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


def dialect_insert(session: Session, table: Table):
    """The dialect's own insert, which knows ON CONFLICT."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"upserts are not implemented for {dialect}")


def _with_python_defaults(table: Table, rows: Sequence[dict[str, Any]]) -> Sequence[dict[str, Any]]:
    """Rows with the Python-side defaults of the columns they leave out, as SQLAlchemy adds."""
    defaults = {
        column.name: column.default.arg(None) if column.default.is_callable else column.default.arg
        for column in table.columns
        if column.default is not None and column.name not in rows[0]
    }
    return [{**row, **defaults} for row in rows] if defaults else rows


@functools.lru_cache(maxsize=256)
def _bind_processors(table: Table, columns: tuple[str, ...], dialect: Dialect) -> list[Any]:
    """Each column type's own conversion for this database, as SQLAlchemy would apply it
    (cached: every batch of a table asks again)."""
    return [
        table.c[column].type.dialect_impl(dialect).bind_processor(dialect) for column in columns
    ]


def _bound_now(table: Table, dialect: Dialect) -> Any:
    """The current time as the table's updated_at column binds it."""
    (process,) = _bind_processors(table, ("updated_at",), dialect)
    now = utc_now()
    return now if process is None else process(now)


def _on_conflict_clause(
    table: Table,
    key_columns: Sequence[str],
    value_columns: Sequence[str],
    quote: Callable[[str], str],
    placeholder: str,
    distinct: str,
) -> str:
    """ON CONFLICT … DO UPDATE, only where a value changed, RETURNING updated_at."""
    name = quote(table.name)
    assignments = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in value_columns)
    changed = " OR ".join(
        f"{name}.{quote(c)} {distinct} excluded.{quote(c)}" for c in value_columns
    )
    return (
        f" ON CONFLICT ({', '.join(map(quote, key_columns))})"
        f" DO UPDATE SET {assignments}, updated_at = {placeholder}"
        f" WHERE {changed} RETURNING updated_at"
    )


def _json_each_source(columns: Sequence[str], values: list[list[Any]]) -> tuple[str, list[Any]]:
    """SQLite: the rows as one JSON array of arrays, read back by json_each.

    The statement's text is then the same for every batch, so SQLite compiles it once per
    connection; multi-row VALUES compiled (and sqlite3 cached) one per batch length, about
    20 MB per connection after a few hundred batches. Floats survive the trip exactly
    (tests/api/test_ingest.py).
    """
    fields = ", ".join(f"json_extract(value, '$[{index}]')" for index in range(len(columns)))
    # WHERE true: SQLite's rule for INSERT … SELECT … ON CONFLICT (else ON is ambiguous).
    return f"SELECT {fields} FROM json_each(?) WHERE true", [orjson.dumps(values).decode()]


def _unnest_source(
    table: Table, columns: Sequence[str], values: list[list[Any]], dialect: Dialect
) -> tuple[str, list[list[Any]]]:
    """PostgreSQL: one array per column, unnested, sent in binary format (%b).

    One parameter per column instead of 10,000 rows of VALUES; binary arrays take half
    the time of text ones to send and parse, with the same casts.
    """
    return _unnest_select(table, tuple(columns), dialect), [
        list(array) for array in zip(*values, strict=True)
    ]


@functools.lru_cache(maxsize=256)
def _unnest_select(table: Table, columns: tuple[str, ...], dialect: Dialect) -> str:
    types = [table.c[column].type.compile(dialect=dialect) for column in columns]
    return f"SELECT * FROM unnest({', '.join(f'%b::{type_}[]' for type_ in types)})"


def _values(
    table: Table, rows: Sequence[dict[str, Any]], dialect: Dialect
) -> tuple[list[str], list[list[Any]]]:
    """The rows' columns and values, each converted by its column type's own bind
    processor for this database, as SQLAlchemy would."""
    columns = list(rows[0])
    processors = list(zip(columns, _bind_processors(table, tuple(columns), dialect), strict=True))
    values = [
        [row[column] if process is None else process(row[column]) for column, process in processors]
        for row in rows
    ]
    return columns, values


def _source(
    table: Table, rows: Sequence[dict[str, Any]], dialect: Dialect
) -> tuple[list[str], str, list[Any]]:
    """The rows' columns and a SELECT of the rows: one parameter per column (PostgreSQL)
    or one JSON parameter (SQLite)."""
    columns, values = _values(table, rows, dialect)
    if dialect.name == "sqlite":
        return columns, *_json_each_source(columns, values)
    if dialect.name == "postgresql":
        return columns, *_unnest_source(table, columns, values, dialect)
    raise NotImplementedError(f"upserts are not implemented for {dialect.name}")


@dataclass(frozen=True)
class Overwrite:
    """Rows to store in a table, replacing every value of a row whose key exists."""

    table: Table
    key_columns: Sequence[str]
    rows: Sequence[dict[str, Any]]


@dataclass(frozen=True)
class CoreWrite:
    """A Core INSERT or UPDATE and its parameters, written along with other rows."""

    statement: UpdateBase
    parameters: Mapping[str, Any]


Write = Overwrite | CoreWrite


def _overwrite_statement(dialect: Dialect, write: Overwrite) -> tuple[str, Any]:
    """INSERT … ON CONFLICT DO UPDATE of every non-key column.

    PostgreSQL: from unnest arrays (one parameter per column); SQLite: one-row VALUES
    for an executemany, cheaper in-process than reading the rows back from JSON.
    """
    quote = dialect.identifier_preparer.quote
    if dialect.name == "sqlite":
        columns, values = _values(write.table, write.rows, dialect)
        source = f"VALUES ({', '.join('?' for _ in columns)})"
        parameters: Any = [tuple(row) for row in values]
    else:
        columns, source, source_parameters = _source(write.table, write.rows, dialect)
        parameters = tuple(source_parameters)
    assignments = ", ".join(
        f"{quote(c)} = excluded.{quote(c)}" for c in columns if c not in write.key_columns
    )
    sql = (
        f"INSERT INTO {quote(write.table.name)} ({', '.join(map(quote, columns))}) {source}"
        f" ON CONFLICT ({', '.join(map(quote, write.key_columns))})"
        f" DO UPDATE SET {assignments}"
    )
    return sql, parameters


# PostgreSQL with positional placeholders (%s), so that a Core statement's text can join
# the hand-spelled ones in one statement.
_POSITIONAL_POSTGRESQL = psycopg.dialect(paramstyle="format")


@functools.lru_cache(maxsize=64)
def _positional_form(statement: UpdateBase) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """A Core statement's PostgreSQL text and, per placeholder, its parameter's name and
    its type's conversion (cached: the callers build each statement once)."""
    dialect = _POSITIONAL_POSTGRESQL
    compiled = statement.compile(dialect=dialect)
    binds = tuple(
        (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
        for name in compiled.positiontup or ()
    )
    return compiled.string, binds


def _core_statement(write: CoreWrite) -> tuple[str, tuple[Any, ...]]:
    sql, binds = _positional_form(write.statement)
    values = write.parameters
    return sql, tuple(
        values[name] if process is None else process(values[name]) for name, process in binds
    )


def _write_statements(dialect: Dialect, writes: Sequence[Write]) -> list[tuple[str, Any]]:
    """PostgreSQL: each Core write, and each overwrite that has rows, as one statement's
    text and its positional parameters."""
    return [
        _core_statement(write)
        if isinstance(write, CoreWrite)
        else _overwrite_statement(dialect, write)
        for write in writes
        if isinstance(write, CoreWrite) or write.rows
    ]


def _with_writes(statements: Sequence[tuple[str, Any]], last: tuple[str, Any]) -> tuple[str, Any]:
    """PostgreSQL: one statement running `statements` as data-modifying WITHs, then `last`."""
    if not statements:
        return last
    ctes = ", ".join(f"write_{index} AS ({sql})" for index, (sql, _) in enumerate(statements))
    parameters = tuple(value for _, group in (*statements, last) for value in group)
    return f"WITH {ctes} {last[0]}", parameters


def store(session: Session, writes: Sequence[Write]) -> None:
    """Store rows of several tables, replacing every value of a row whose key exists, and
    run Core writes, in order.

    PostgreSQL: one statement (a data-modifying WITH per write but the last), one round
    trip; SQLite: an executemany per table, an execution per Core write.
    """
    dialect = session.get_bind().dialect
    connection = session.connection()
    if dialect.name == "postgresql":
        statements = _write_statements(dialect, writes)
        if statements:
            connection.exec_driver_sql(*_with_writes(statements[:-1], statements[-1]))
        return
    for each in writes:
        if isinstance(each, CoreWrite):
            connection.execute(each.statement, each.parameters)
        elif each.rows:
            connection.exec_driver_sql(*_overwrite_statement(dialect, each))


def upsert(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    key_columns: Sequence[str],
    value_columns: Sequence[str],
    also: Sequence[Write] = (),
) -> BatchResult:
    """Insert rows, overwrite those whose values changed, and count what happened.

    The update only fires when a value differs, so unchanged rows return nothing;
    `updated_at` is null on a fresh insert, which tells inserted from updated
    without reading first (no check-then-insert race). Every row has the same keys.
    `also` are writes of other tables sent with it: on PostgreSQL in the same
    statement (one round trip), on SQLite before it.
    """
    if not rows:
        store(session, also)
        return BatchResult()
    dialect = session.get_bind().dialect
    quote = dialect.identifier_preparer.quote
    rows = _with_python_defaults(table, rows)
    columns, source, source_parameters = _source(table, rows, dialect)
    placeholder, distinct = (
        ("?", "IS NOT") if dialect.name == "sqlite" else ("%b", "IS DISTINCT FROM")
    )
    statement = (
        f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, columns))}) {source}"
        + _on_conflict_clause(table, key_columns, value_columns, quote, placeholder, distinct)
    )
    # Spelled here and sent to the driver as is: SQLAlchemy's statement construction and
    # per-parameter processing cost more than the database's work on small batches.
    parameters = (*source_parameters, _bound_now(table, dialect))
    if dialect.name == "postgresql":
        statement, parameters = _with_writes(
            _write_statements(dialect, also), (statement, parameters)
        )
    else:
        store(session, also)
    written = session.connection().exec_driver_sql(statement, parameters).scalars().all()
    inserted = sum(1 for updated_at in written if updated_at is None)
    updated = len(written) - inserted
    return BatchResult(inserted, updated, len(rows) - len(written))
