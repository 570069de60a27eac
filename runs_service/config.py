"""Configuration: the only module that reads the environment."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# The booleans of SPEC §4.0; an empty value counts as unset, i.e. false.
TRUE_WORDS = frozenset({"true", "1", "yes"})
FALSE_WORDS = frozenset({"false", "0", "no", ""})

DEFAULT_MAX_CONTENT_LENGTH = 16 * 1024 * 1024
DEFAULT_MAX_RESULTS_FILE_BYTES = 16 * 1024 * 1024
# Kept below gunicorn's worker timeout (gunicorn.conf.py) so that a stalled
# database turns into a 503 instead of a killed worker.
DEFAULT_DB_CONNECT_TIMEOUT_SECONDS = 5
DEFAULT_DB_STATEMENT_TIMEOUT_MS = 15_000
SQLITE_BUSY_TIMEOUT_SECONDS = 15
# Flask-SQLAlchemy bind key of the read replica (RUNS_READ_DATABASE_URL).
READ_REPLICA_BIND = "read_replica"
# After the replica refused a connection, reads use the primary for this long before
# the replica is tried again, so an outage costs one failed connection per period.
READ_REPLICA_RETRY_SECONDS = 5
# A pooled PostgreSQL connection idle longer than this is pinged before it is used; one
# used more recently is taken as alive (a server that dropped it since fails that one
# request with a 503 and the pool replaces every connection). A busy worker's requests
# so skip a round trip each; a restart takes longer than this, and finds idle connections.
PING_AFTER_IDLE_SECONDS = 1.0


class ConfigurationError(ValueError):
    """A configuration value the service cannot run with; the message names the variable."""


def parse_bool(raw: str, name: str) -> bool:
    """Read a configuration boolean written as true/false, 1/0 or yes/no (any case)."""
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigurationError(f"{name} must be one of true/false, 1/0, yes/no, not {raw!r}.")


def parse_int(raw: str, name: str, minimum: int = 0) -> int:
    """Read a configuration integer of at least `minimum`, with a clear error."""
    try:
        value = int(raw.strip())
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise ConfigurationError(f"{name} must be a whole number >= {minimum}, not {raw!r}.")
    return value


def parse_tokens(raw: str) -> tuple[str, ...]:
    """Split the comma-separated token list, ignoring blanks."""
    return tuple(token.strip() for token in raw.split(",") if token.strip())


# An origin as a browser sends it: scheme, host and optional port; no path, no wildcard.
ORIGIN_PATTERN = re.compile(
    r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?"
)


def parse_origins(raw: str, name: str) -> tuple[str, ...]:
    """Split a comma-separated list of exact origins (http[s]://host[:port])."""
    origins = parse_tokens(raw)
    for origin in origins:
        if not ORIGIN_PATTERN.fullmatch(origin):
            raise ValueError(
                f"{name} must list exact origins such as http://localhost:3000 "
                f"(scheme, host, optional port; no path or wildcard), not {origin!r}"
            )
    return tuple(origin.lower() for origin in origins)


def default_database_url(instance_path: str) -> str:
    """SQLite file in the instance folder."""
    return "sqlite:///" + str(Path(instance_path) / "runs.db")


def engine_options(config: Mapping[str, Any]) -> dict:
    """Engine options that bound how long a request can wait on the database."""
    database_url = config["SQLALCHEMY_DATABASE_URI"]
    connect_timeout = config["RUNS_DB_CONNECT_TIMEOUT"]
    statement_timeout_ms = config["RUNS_DB_STATEMENT_TIMEOUT_MS"]
    if database_url.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}}
    if database_url.startswith("postgresql"):
        return {
            # The primary's pooled connections are pinged only after sitting idle
            # (extensions.IdlePing, PING_AFTER_IDLE_SECONDS), not at every checkout.
            "pool_pre_ping": False,
            "pool_size": 5,
            "max_overflow": 5,
            "pool_timeout": connect_timeout,
            "connect_args": {
                "connect_timeout": connect_timeout,
                "options": f"-c statement_timeout={statement_timeout_ms}",
                # A server that vanishes from the network (no reset, no answer) would
                # otherwise hold a request for the ~15 minutes of TCP retransmissions:
                # unacknowledged data and failed keepalives drop the connection instead.
                "tcp_user_timeout": connect_timeout * 1000,
                "keepalives": 1,
                "keepalives_idle": 30,
                "keepalives_interval": 5,
                "keepalives_count": 3,
            },
        }
    return {}


def database_binds(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """SQLALCHEMY_BINDS: the read replica with the primary's engine options, if configured."""
    read_url = config.get("RUNS_READ_DATABASE_URL")
    if not read_url:
        return {}
    if not (
        read_url.startswith("postgresql")
        and config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
    ):
        raise ValueError(
            "RUNS_READ_DATABASE_URL must name a PostgreSQL standby of a PostgreSQL "
            "RUNS_DATABASE_URL (postgresql+psycopg://...)"
        )
    options = engine_options({**config, "SQLALCHEMY_DATABASE_URI": read_url})
    # Every checkout of the replica is pinged: a standby that went away is then found
    # before a read uses it, and the read falls back to the primary (ReplicaFallback).
    return {READ_REPLICA_BIND: {"url": read_url, **options, "pool_pre_ping": True}}


def load_config(environ: Mapping[str, str], instance_path: str) -> dict[str, Any]:
    """Build the Flask configuration from environment variables with safe defaults."""
    database_url = environ.get("RUNS_DATABASE_URL") or default_database_url(instance_path)
    connect_timeout = parse_int(
        environ.get("RUNS_DB_CONNECT_TIMEOUT", str(DEFAULT_DB_CONNECT_TIMEOUT_SECONDS)),
        "RUNS_DB_CONNECT_TIMEOUT",
        minimum=1,
    )
    statement_timeout_ms = parse_int(
        environ.get("RUNS_DB_STATEMENT_TIMEOUT_MS", str(DEFAULT_DB_STATEMENT_TIMEOUT_MS)),
        "RUNS_DB_STATEMENT_TIMEOUT_MS",
        minimum=1,
    )
    return {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "RUNS_READ_DATABASE_URL": environ.get("RUNS_READ_DATABASE_URL") or None,
        "RUNS_READ_REPLICA_RETRY_SECONDS": READ_REPLICA_RETRY_SECONDS,
        "RUNS_DB_PING_AFTER_IDLE_SECONDS": PING_AFTER_IDLE_SECONDS,
        "RUNS_DB_CONNECT_TIMEOUT": connect_timeout,
        "RUNS_DB_STATEMENT_TIMEOUT_MS": statement_timeout_ms,
        "RUNS_RESULTS_DIR": environ.get("RUNS_RESULTS_DIR") or str(Path(instance_path) / "results"),
        "RUNS_READ_TOKENS": parse_tokens(environ.get("RUNS_READ_TOKENS", "")),
        "RUNS_API_TOKENS": parse_tokens(environ.get("RUNS_API_TOKENS", "")),
        "RUNS_ADMIN_TOKENS": parse_tokens(environ.get("RUNS_ADMIN_TOKENS", "")),
        "RUNS_CORS_ORIGINS": parse_origins(
            environ.get("RUNS_CORS_ORIGINS", ""), "RUNS_CORS_ORIGINS"
        ),
        "RUNS_REQUIRE_AUTH_FOR_READS": parse_bool(
            environ.get("RUNS_REQUIRE_AUTH_FOR_READS", "false"), "RUNS_REQUIRE_AUTH_FOR_READS"
        ),
        "MAX_CONTENT_LENGTH": parse_int(
            environ.get("RUNS_MAX_CONTENT_LENGTH", str(DEFAULT_MAX_CONTENT_LENGTH)),
            "RUNS_MAX_CONTENT_LENGTH",
            minimum=1,
        ),
        "RUNS_MAX_RESULTS_FILE_BYTES": parse_int(
            environ.get("RUNS_MAX_RESULTS_FILE_BYTES", str(DEFAULT_MAX_RESULTS_FILE_BYTES)),
            "RUNS_MAX_RESULTS_FILE_BYTES",
            minimum=1,
        ),
        "RUNS_PROXY_COUNT": parse_int(environ.get("RUNS_PROXY_COUNT", "0"), "RUNS_PROXY_COUNT"),
        "RUNS_RETRY_AFTER_SECONDS": 5,
    }


def from_environment(instance_path: str) -> dict[str, Any]:
    """Configuration of the running process."""
    return load_config(os.environ, instance_path)
