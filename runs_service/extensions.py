"""Extension objects, bound to the application in create_app, and the connections' setup:
SQLite's pragmas and transactions, PostgreSQL's autocommit reads and idle pings, the read
replica."""

from __future__ import annotations

import logging
import sqlite3
import time

from flask import Flask, has_request_context, request
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session
from sqlalchemy import MetaData, event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

from runs_service.config import READ_REPLICA_BIND, SQLITE_BUSY_TIMEOUT_SECONDS, TRUE_WORDS
from runs_service.errors import http_exception_response

logger = logging.getLogger(__name__)

# Stable constraint names keep Alembic revisions identical on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class RunsApi(Api):
    """flask-smorest's Api with the service's error shape (headers and messages kept)."""

    def handle_http_exception(self, error):
        return http_exception_response(error)


# Requests that may read from the replica, and the header that sends them to the primary
# instead (read-your-writes for a client that just wrote).
REPLICA_METHODS = frozenset({"GET", "HEAD"})
READ_PRIMARY_HEADER = "X-Runs-Read-Primary"


def reads_from_replica() -> bool:
    """Whether this is a GET or HEAD request that did not ask for the primary."""
    return (
        has_request_context()
        and request.method in REPLICA_METHODS
        and request.headers.get(READ_PRIMARY_HEADER, "").strip().lower() not in TRUE_WORDS
    )


class RoutingSession(Session):
    """db.session: read-only requests use the read replica's engine when one is configured.

    SQLAlchemy's documented way to choose a database per operation is Session.get_bind;
    Flask-SQLAlchemy's own override (bind keys of models) handles everything else.
    """

    def __init__(self, db: SQLAlchemy, **kwargs) -> None:
        super().__init__(db, **kwargs)
        # Sessions live inside one application context: look the replica up once, so that
        # without one every statement pays a single attribute test.
        self._read_replica = db.engines.get(READ_REPLICA_BIND)

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        if self._read_replica is not None and bind is None and reads_from_replica():
            return self._read_replica
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)


db = SQLAlchemy(model_class=Base, session_options={"class_": RoutingSession})
api = RunsApi()


def init_migrations(app: Flask, directory: str) -> None:
    """`flask db …` (Alembic), for commands and tests only.

    Imported here, not at the top: the served application never migrates, and Alembic
    with Flask-Migrate adds 11 MB to every gunicorn process (BENCHMARKS.md, memory).
    """
    from flask_migrate import Migrate

    # Batch mode lets later revisions alter SQLite tables (it recreates them).
    Migrate(compare_type=True, render_as_batch=True).init_app(app, db, directory=directory)


# Requests that only read start deferred SQLite transactions; everything else (writes,
# CLI commands, migrations) takes the write lock up front.
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@event.listens_for(Engine, "connect")
def _configure_sqlite(dbapi_connection, connection_record) -> None:
    """Give every SQLite connection foreign keys (for cascades), WAL and a busy timeout."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # sqlite3's own transaction handling would BEGIN (deferred) only before the first
    # INSERT/UPDATE/DELETE; _begin_sqlite below emits BEGIN itself instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
    # WAL lets readers proceed while one gunicorn worker writes; memory databases ignore it.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def read_only_request() -> bool:
    """Whether the code runs for a request that only reads (GET, HEAD, OPTIONS)."""
    return has_request_context() and request.method in READ_ONLY_METHODS


def sqlite_begin_statement() -> str:
    """BEGIN for a read-only request, BEGIN IMMEDIATE for everything else.

    A deferred transaction that reads and then writes has to upgrade its read lock to
    the write lock; in WAL mode, when another connection committed in between, SQLite
    refuses at once with "database is locked" and the busy timeout never applies.
    BEGIN IMMEDIATE takes the write lock first, so concurrent writers (threads, or
    gunicorn workers sharing the file) wait their turn for up to the busy timeout.
    Read-only requests (GET, HEAD, OPTIONS) keep deferred transactions: in WAL mode
    they never wait for a writer.
    """
    return "BEGIN" if read_only_request() else "BEGIN IMMEDIATE"


@event.listens_for(Engine, "begin")
def _begin_sqlite(connection) -> None:
    """Start SQLite transactions ourselves (SQLAlchemy's pysqlite recipe)."""
    if connection.dialect.name == "sqlite":
        # Straight to the driver, as sqlite3's own implicit BEGIN was: statement counts
        # and SQL logging see the application's queries only.
        connection.connection.driver_connection.execute(sqlite_begin_statement())


class ReplicaFallback:
    """Connections of the replica's engine go to the primary while the replica is down.

    A connection the replica refuses (stopped, restarting, unreachable) is made to the
    primary instead, and the replica is left alone for retry_seconds: reads keep being
    answered and pay for one failed connection attempt per period, not one per request.
    After that, a pooled primary connection is replaced at its next checkout, so reads
    return to the replica once it is back.
    """

    def __init__(self, replica: Engine, primary: Engine, retry_seconds: float) -> None:
        # Connection parameters from each URL (host, port, dbname, user, password); the
        # engine options (timeouts, statement_timeout) are the same for both.
        self.replica_url_params = replica.dialect.create_connect_args(replica.url)[1]
        self.primary_url_params = primary.dialect.create_connect_args(primary.url)[1]
        self.retry_seconds = retry_seconds
        self.replica_down_until = 0.0
        event.listen(replica, "do_connect", self.connect)
        event.listen(replica, "checkout", self.retry_replica)

    def connect(self, dialect, connection_record, cargs, cparams):
        if time.monotonic() >= self.replica_down_until:
            try:
                return dialect.connect(*cargs, **cparams)
            except dialect.loaded_dbapi.OperationalError as error:
                self.replica_down_until = time.monotonic() + self.retry_seconds
                logger.warning(
                    "Read replica unavailable, reading from the primary for %s s: %s",
                    self.retry_seconds,
                    str(error).strip(),
                )
        connection_record.info["reads_on_primary"] = True
        options = {k: v for k, v in cparams.items() if k not in self.replica_url_params}
        return dialect.connect(*cargs, **{**options, **self.primary_url_params})

    def retry_replica(self, dbapi_connection, connection_record, connection_proxy) -> None:
        if (
            connection_record.info.get("reads_on_primary")
            and time.monotonic() >= self.replica_down_until
        ):
            # The pool closes this connection and makes a new one (connect above).
            raise exc.DisconnectionError("time to try the read replica again")


class AutocommitReads:
    """Read-only requests on PostgreSQL run in autocommit, sparing BEGIN and ROLLBACK.

    Under READ COMMITTED every statement takes its own snapshot, in a transaction or not,
    so a read-only request sees the same data either way, two round trips sooner (the
    gain is in BENCHMARKS.md). The connection's own mode comes back at checkin.
    """

    def __init__(self, engine: Engine) -> None:
        event.listen(engine, "checkout", self.checked_out)
        event.listen(engine, "checkin", self.checked_in)

    def checked_out(self, dbapi_connection, connection_record, connection_proxy) -> None:
        if read_only_request():
            connection_record.info["autocommit_before_read"] = dbapi_connection.autocommit
            dbapi_connection.autocommit = True

    def checked_in(self, dbapi_connection, connection_record) -> None:
        before = connection_record.info.pop("autocommit_before_read", None)
        if before is not None and dbapi_connection is not None and not dbapi_connection.closed:
            dbapi_connection.autocommit = before


def init_autocommit_reads(app: Flask) -> None:
    """AutocommitReads on every PostgreSQL engine (the primary's and the replica's)."""
    with app.app_context():
        engines = list(db.engines.values())
    app.extensions["runs_autocommit_reads"] = [
        AutocommitReads(engine) for engine in engines if engine.dialect.name == "postgresql"
    ]


class IdlePing:
    """Ping a pooled PostgreSQL connection before use only when it sat idle a while.

    SQLAlchemy's pool_pre_ping pings at every checkout, a round trip per request. A
    connection checked in less than idle_seconds ago is used without one: a server
    restart takes longer than that and its connections have sat idle since, so they are
    pinged. A connection dropped in between fails its request with a 503 (SQLAlchemy's
    disconnect handling then replaces every pooled connection); nothing is half-written,
    the transaction never began.
    """

    def __init__(self, engine: Engine, idle_seconds: float) -> None:
        self.dialect = engine.dialect
        self.idle_seconds = idle_seconds
        event.listen(engine, "checkin", self.checked_in)
        event.listen(engine, "checkout", self.checked_out)

    def checked_in(self, dbapi_connection, connection_record) -> None:
        connection_record.info["idle_since"] = time.monotonic()

    def checked_out(self, dbapi_connection, connection_record, connection_proxy) -> None:
        # A new connection has no idle_since (info is cleared when one is replaced).
        idle_since = connection_record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < self.idle_seconds:
            return
        try:
            self.dialect.do_ping(dbapi_connection)
        except self.dialect.loaded_dbapi.Error as error:
            if not self.dialect.is_disconnect(error, dbapi_connection, None):
                raise
            # The pool replaces this and every older connection, then retries the checkout.
            raise exc.InvalidatePoolError(f"ping after idle failed: {error}") from error


def init_idle_ping(app: Flask) -> None:
    """Ping the primary's idle PostgreSQL connections (config.PING_AFTER_IDLE_SECONDS)."""
    if app.config["SQLALCHEMY_ENGINE_OPTIONS"].get("pool_pre_ping"):
        return
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "postgresql":
        app.extensions["runs_idle_ping"] = IdlePing(
            engine, app.config["RUNS_DB_PING_AFTER_IDLE_SECONDS"]
        )


def init_read_replica(app: Flask) -> None:
    """Let the read replica's engine (RUNS_READ_DATABASE_URL) fall back to the primary."""
    if READ_REPLICA_BIND not in app.config["SQLALCHEMY_BINDS"]:
        return
    with app.app_context():
        replica, primary = db.engines[READ_REPLICA_BIND], db.engine
    retry_seconds = app.config["RUNS_READ_REPLICA_RETRY_SECONDS"]
    app.extensions["runs_read_replica"] = ReplicaFallback(replica, primary, retry_seconds)
