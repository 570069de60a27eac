"""Set-up mistakes stop with one line that says what to do: no traceback, non-zero exit.

The commands run as a person runs them, in a subprocess: `flask --app runs_service …` and
`gunicorn -c gunicorn.conf.py wsgi:app` from the repository root.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from sqlalchemy import make_url

from tests.helpers import make_app

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Commands here either fail at once or serve; the bound only keeps a hang from
# blocking the suite.
COMMAND_TIMEOUT = 120


def environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    """The caller's environment without RUNS_* settings, on a database in tmp_path."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("RUNS_")}
    env.pop("WEB_CONCURRENCY", None)
    env.update(
        RUNS_DATABASE_URL=f"sqlite:///{tmp_path / 'runs.db'}",
        RUNS_RESULTS_DIR=str(tmp_path / "results"),
    )
    env.update(variables)
    return env


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT
    )


def flask(*arguments: str) -> list[str]:
    return [str(BIN / "flask"), "--app", "runs_service", *arguments]


GUNICORN = [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", "127.0.0.1:0", "wsgi:app"]


def only_line(result: subprocess.CompletedProcess) -> str:
    """The one line a failed command printed (stdout and stderr together)."""
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode != 0, lines
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, lines
    return lines[0]


BAD_SETTINGS = [
    ("RUNS_PROXY_COUNT", "-1", ">= 0"),
    ("RUNS_REQUIRE_AUTH_FOR_READS", "maybe", "true/false, 1/0, yes/no"),
    ("RUNS_MAX_CONTENT_LENGTH", "16MB", ">= 1"),
    ("RUNS_DB_CONNECT_TIMEOUT", "0", ">= 1"),
]


@pytest.mark.parametrize(("name", "value", "accepted"), BAD_SETTINGS)
@pytest.mark.parametrize("program", ["flask", "gunicorn"])
def test_a_bad_setting_stops_with_one_line_naming_it_and_the_accepted_values(
    tmp_path, program, name, value, accepted
):
    command = flask("demo-data") if program == "flask" else GUNICORN
    line = only_line(run(command, environment(tmp_path, **{name: value})))
    assert line.startswith("Error: ")
    assert name in line and accepted in line and repr(value) in line


def test_a_bad_gunicorn_setting_stops_with_one_line(tmp_path):
    line = only_line(run(GUNICORN, environment(tmp_path, GUNICORN_THREADS="two")))
    assert line == "Error: GUNICORN_THREADS must be a whole number >= 1, not 'two'."


@pytest.mark.parametrize("value", ["two", "0", ""])
def test_the_start_script_checks_web_concurrency_before_gunicorn_reads_it(tmp_path, value):
    # gunicorn itself reads WEB_CONCURRENCY (with a traceback for a bad value) before
    # gunicorn.conf.py runs; deploy/start.sh checks it first.
    env = environment(tmp_path, WEB_CONCURRENCY=value)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    line = only_line(run(["sh", "deploy/start.sh"], env))
    assert line == f"Error: WEB_CONCURRENCY must be a whole number >= 1, not '{value}'."


@pytest.mark.parametrize("command", [["demo-data"], ["refresh-summaries"]])
def test_commands_before_db_upgrade_say_to_run_it(tmp_path, command):
    line = only_line(run(flask(*command), environment(tmp_path)))
    assert "flask --app runs_service db upgrade" in line


def test_demo_data_after_db_upgrade_loads(tmp_path):
    env = environment(tmp_path)
    assert run(flask("db", "upgrade"), env).returncode == 0
    result = run(flask("demo-data", "--count", "3"), env)
    assert result.returncode == 0, result.stderr
    assert "Loaded 3 demo runs." in result.stdout


@pytest.fixture
def missing_postgres_database(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL (RUNS_TEST_DATABASE_URL)")
    name = f"runs_missing_{uuid.uuid4().hex[:8]}"
    return make_url(database_url).set(database=name).render_as_string(hide_password=False)


@pytest.mark.postgres
@pytest.mark.parametrize("command", [["db", "upgrade"], ["demo-data"], ["refresh-summaries"]])
def test_a_postgresql_url_to_a_missing_database_says_so(
    tmp_path, missing_postgres_database, command
):
    env = environment(tmp_path, RUNS_DATABASE_URL=missing_postgres_database)
    line = only_line(run(flask(*command), env))
    name = make_url(missing_postgres_database).database
    assert f'The database "{name}" of RUNS_DATABASE_URL does not exist' in line


@pytest.mark.postgres
def test_requests_to_a_missing_database_answer_503_naming_it(tmp_path, missing_postgres_database):
    client = make_app(missing_postgres_database, tmp_path).test_client()
    name = make_url(missing_postgres_database).database
    for path in ("/readyz", "/api/runs/list"):
        response = client.get(path)
        assert response.status_code == 503
        assert f'"{name}"' in response.get_json()["message"]
        assert response.headers["Retry-After"]


def test_requests_to_a_database_without_tables_answer_503_saying_to_upgrade(tmp_path):
    client = make_app(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path).test_client()
    for path in ("/readyz", "/api/runs/list", "/api/runs/1/metrics"):
        response = client.get(path)
        assert response.status_code == 503, path
        assert "db upgrade" in response.get_json()["message"]
    assert client.get("/healthz").status_code == 200


def test_a_body_over_the_limit_names_the_limit(app_with):
    client = app_with(MAX_CONTENT_LENGTH=16 * 1024 * 1024).test_client()
    response = client.post(
        "/api/runs",
        data=b" " * (16 * 1024 * 1024 + 1),
        headers={"Authorization": "Bearer test-writer-token", "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.get_json()["message"] == (
        "The request body is larger than the limit of 16 MiB (RUNS_MAX_CONTENT_LENGTH)."
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_gunicorn_answering_directly_names_the_limit_in_its_413(tmp_path):
    port = _free_port()
    env = environment(tmp_path, RUNS_API_TOKENS="secret", RUNS_MAX_CONTENT_LENGTH="1024")
    env["WEB_CONCURRENCY"] = "1"
    command = [*GUNICORN[:-3], "--bind", f"127.0.0.1:{port}", "wsgi:app"]
    log = open(tmp_path / "gunicorn.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):
                    break
            except OSError:
                assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/runs",
            data=json.dumps(
                {"training_mode": "centralized", "run_description": "x" * 2000}
            ).encode(),
            headers={"Authorization": "Bearer secret", "Content-Type": "application/json"},
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(request, timeout=30)
        assert answer.value.code == 413
        body = json.loads(answer.value.read())
        assert body["message"] == (
            "The request body is larger than the limit of 1,024 bytes (RUNS_MAX_CONTENT_LENGTH)."
        )
    finally:
        server.terminate()
        server.wait(timeout=COMMAND_TIMEOUT)
        log.close()
