"""Configuration from the environment."""

from __future__ import annotations

import pytest

from runs_service.config import database_binds, engine_options, load_config, parse_bool


def test_defaults_are_safe(tmp_path):
    config = load_config({}, str(tmp_path))
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/runs.db"
    assert config["RUNS_API_TOKENS"] == ()
    assert config["RUNS_REQUIRE_AUTH_FOR_READS"] is False
    assert config["RUNS_PROXY_COUNT"] == 0
    assert config["MAX_CONTENT_LENGTH"] == 16 * 1024 * 1024
    assert config["RUNS_RESULTS_DIR"] == str(tmp_path / "results")


def test_variables_are_read(tmp_path):
    config = load_config(
        {
            "RUNS_DATABASE_URL": "postgresql+psycopg://u@h/db",
            "RUNS_API_TOKENS": " a, ,b ",
            "RUNS_REQUIRE_AUTH_FOR_READS": "yes",
            "RUNS_MAX_CONTENT_LENGTH": "1024",
            "RUNS_MAX_RESULTS_FILE_BYTES": "2048",
            "RUNS_PROXY_COUNT": "1",
            "RUNS_RESULTS_DIR": "/srv/results",
        },
        str(tmp_path),
    )
    assert config["RUNS_API_TOKENS"] == ("a", "b")
    assert config["RUNS_REQUIRE_AUTH_FOR_READS"] is True
    assert config["MAX_CONTENT_LENGTH"] == 1024
    assert config["RUNS_MAX_RESULTS_FILE_BYTES"] == 2048
    assert config["RUNS_PROXY_COUNT"] == 1
    assert config["RUNS_RESULTS_DIR"] == "/srv/results"
    options = engine_options(config)
    assert options["pool_pre_ping"] is False
    assert options["connect_args"]["connect_timeout"] == 5


@pytest.mark.parametrize(
    ("raw", "expected"), [("true", True), ("1", True), ("YES", True), ("no", False), ("0", False)]
)
def test_booleans(raw, expected):
    assert parse_bool(raw, "X") is expected


@pytest.mark.parametrize(
    "environ",
    [
        {"RUNS_REQUIRE_AUTH_FOR_READS": "maybe"},
        # SPEC §4.0: true/false, 1/0, yes/no; nothing else.
        {"RUNS_REQUIRE_AUTH_FOR_READS": "on"},
        {"RUNS_MAX_CONTENT_LENGTH": "lots"},
        {"RUNS_PROXY_COUNT": "-1"},
    ],
)
def test_bad_values_fail_loudly_naming_the_variable(tmp_path, environ):
    with pytest.raises(ValueError, match=next(iter(environ))):
        load_config(environ, str(tmp_path))


def test_new_variables_default_to_nothing(tmp_path):
    config = load_config({}, str(tmp_path))
    assert config["RUNS_READ_TOKENS"] == ()
    assert config["RUNS_ADMIN_TOKENS"] == ()
    assert config["RUNS_CORS_ORIGINS"] == ()


def test_token_scopes_and_origins_are_read(tmp_path):
    config = load_config(
        {
            "RUNS_READ_TOKENS": "r1, r2",
            "RUNS_ADMIN_TOKENS": "adm",
            "RUNS_CORS_ORIGINS": "http://localhost:3000, https://Runs.Example.org:8443",
        },
        str(tmp_path),
    )
    assert config["RUNS_READ_TOKENS"] == ("r1", "r2")
    assert config["RUNS_ADMIN_TOKENS"] == ("adm",)
    assert config["RUNS_CORS_ORIGINS"] == ("http://localhost:3000", "https://runs.example.org:8443")


@pytest.mark.parametrize(
    "origin", ["*", "localhost:3000", "http://localhost:3000/", "https://*.example.org", "ftp://x"]
)
def test_an_origin_that_is_not_exact_fails_naming_the_variable(tmp_path, origin):
    with pytest.raises(ValueError, match="RUNS_CORS_ORIGINS"):
        load_config({"RUNS_CORS_ORIGINS": origin}, str(tmp_path))


def test_read_replica_bind_gets_the_primary_engine_options(tmp_path):
    config = load_config(
        {
            "RUNS_DATABASE_URL": "postgresql+psycopg://u@primary/db",
            "RUNS_READ_DATABASE_URL": "postgresql+psycopg://u@standby/db",
        },
        str(tmp_path),
    )
    binds = database_binds(config)
    assert binds["read_replica"]["url"] == "postgresql+psycopg://u@standby/db"
    assert binds["read_replica"]["pool_pre_ping"] is True
    assert binds["read_replica"]["connect_args"] == engine_options(config)["connect_args"]
    assert database_binds(load_config({}, str(tmp_path))) == {}


@pytest.mark.parametrize(
    ("primary", "replica"),
    [("", "sqlite:///copy.db"), ("", "postgresql+psycopg://u@standby/db")],
)
def test_read_replica_needs_postgresql_on_both_sides(tmp_path, primary, replica):
    environ = {"RUNS_READ_DATABASE_URL": replica}
    if primary:
        environ["RUNS_DATABASE_URL"] = primary
    with pytest.raises(ValueError, match="RUNS_READ_DATABASE_URL"):
        database_binds(load_config(environ, str(tmp_path)))
