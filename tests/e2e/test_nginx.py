"""End to end: gunicorn (gunicorn.conf.py, two workers) behind nginx (deploy/nginx.conf).

The module installs nothing. It uses the nginx binary when there is one and skips
otherwise; `.ci/run` installs Debian's nginx and sets RUNS_TEST_REQUIRE_NGINX=1, which
turns that skip into a failure. gunicorn starts through deploy/start.sh (migrate, then
exec gunicorn) on the session's test database; everything started here is stopped here.
"""

from __future__ import annotations

import csv
import gzip
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import AUTH, WRITER_TOKEN, empty_tables, make_app

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
NGINX_SITE = REPO / "deploy" / "nginx.conf"
START_SCRIPT = REPO / "deploy" / "start.sh"
# Production addresses in deploy/nginx.conf, replaced by free loopback ports here; the
# upstream's one active `server` line becomes one line per instance, parameters kept.
DEPLOYED_UPSTREAM = re.compile(r"^( *)server 127\.0\.0\.1:8000( [^;]*)?;$", re.MULTILINE)
DEPLOYED_LISTEN = "listen 80;"

BODY_LIMIT = 16 * 1024 * 1024
STARTUP_SECONDS = 60
# gunicorn's graceful_timeout (30 s) plus a margin; then the process group is killed.
STOP_SECONDS = 40
# The client's own loopback address, distinct from nginx's 127.0.0.1 (Linux routes all
# of 127.0.0.0/8 to the loopback interface), so the app's view of "the client" can be
# told apart from the proxy.
CLIENT_ADDRESS = "127.0.0.2"
CSV_HEADER = (
    "epoch,train_loss,train_acc,train_f1,val_loss,val_acc,val_precision,val_recall,val_f1,val_auroc"
).split(",")


def nginx_binary() -> str | None:
    """nginx on PATH, or where Debian puts it (/usr/sbin is not on every user's PATH)."""
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self):
        return json.loads(self.body)


def call(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    source: str = "127.0.0.1",
    timeout: float = 60,
) -> Reply:
    """One request on a fresh connection; the whole body is read (chunked framing checked)."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=timeout, source_address=(source, 0)
    )
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        connection.close()


def post_json(port: int, path: str, document, headers: dict[str, str] | None = None, **kw):
    body = json.dumps(document).encode()
    sent = {"Content-Type": "application/json", **AUTH, **(headers or {})}
    return call(port, "POST", path, body=body, headers=sent, **kw)


def log_tail(path: Path | None, lines: int = 40) -> str:
    if path is None or not path.is_file():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_until(condition, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; log:\n{log_tail(log)}")
        time.sleep(0.05)


def stop(process: subprocess.Popen) -> None:
    """Terminate and wait; kill the whole process group if it does not stop in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def start(command: list[str], env: dict[str, str], log: Path, exits: ExitStack) -> subprocess.Popen:
    """Start a process in its own group, logging to a file; stopped when exits closes."""
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    exits.callback(stop, process)
    return process


def is_listening(port: int) -> bool:
    """Whether a server accepts connections on the loopback port."""
    try:
        connection = socket.create_connection(("127.0.0.1", port), timeout=1)
    except OSError:
        return False
    with connection:
        # With nothing listening, the kernel may pick the port itself as the source
        # port and connect the socket to itself.
        return connection.getsockname() != connection.getpeername()


def wait_listening(port: int, process: subprocess.Popen, log: Path) -> None:
    """Wait until the process listens on port; fail with its log if it exits first."""

    def listening() -> bool:
        if process.poll() is not None:
            pytest.fail(f"{process.args[0]} exited with {process.returncode}:\n{log_tail(log)}")
        return is_listening(port)

    wait_until(listening, STARTUP_SECONDS, f"{process.args[0]} on port {port}", log)


def render_site(upstream_ports: int | list[int], nginx_port: int) -> str:
    """deploy/nginx.conf with only its upstream and listen addresses changed."""
    ports = [upstream_ports] if isinstance(upstream_ports, int) else upstream_ports
    site = NGINX_SITE.read_text()
    servers = DEPLOYED_UPSTREAM.findall(site)
    assert len(servers) == 1, "deploy/nginx.conf must have one active upstream server line"
    indent, parameters = servers[0]
    lines = "\n".join(f"{indent}server 127.0.0.1:{port}{parameters};" for port in ports)
    site = DEPLOYED_UPSTREAM.sub(lambda _: lines, site)
    assert site.count(DEPLOYED_LISTEN) == 1, f"deploy/nginx.conf must contain {DEPLOYED_LISTEN!r}"
    return site.replace(DEPLOYED_LISTEN, f"listen 127.0.0.1:{nginx_port};")


def nginx_main_config(directory: Path, site: Path) -> str:
    """A main nginx.conf that keeps pid, logs and temp files in directory."""
    temp = directory / "temp"
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (temp / kind).mkdir(parents=True, exist_ok=True)
    # As root, nginx workers would switch to `nobody`, who cannot use these paths.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""{user}worker_processes 1;
daemon off;
pid {directory}/nginx.pid;
error_log {directory}/error.log info;
events {{ worker_connections 512; }}
http {{
    default_type application/octet-stream;
    # Which instances served each request: "a, b" when nginx moved it from a to b.
    log_format upstreams '"$request" $status upstream=[$upstream_addr] ($upstream_status)';
    access_log {directory}/access.log upstreams;
    client_body_temp_path {temp}/client_body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {site};
}}
"""


@dataclass
class Deployment:
    nginx_port: int
    gunicorn_port: int
    gunicorn: subprocess.Popen
    gunicorn_log: Path

    @property
    def base_url(self) -> str:
        """Scheme, host and port as the client uses them."""
        return f"http://127.0.0.1:{self.nginx_port}"

    def access_log_line(self, marker: str) -> str:
        """gunicorn's access-log line of the request whose User-Agent is marker."""
        found: list[str] = []

        def logged() -> bool:
            text = self.gunicorn_log.read_text(errors="replace")
            found[:] = [line for line in text.splitlines() if marker in line]
            return bool(found)

        wait_until(logged, 10, f"access log line {marker}", self.gunicorn_log)
        assert len(found) == 1, found
        return found[0]

    def worker_pids(self) -> tuple[set[int], set[int]]:
        """Pids of the workers gunicorn booted, and of those that exited."""
        text = self.gunicorn_log.read_text(errors="replace")
        booted = {int(pid) for pid in re.findall(r"Booting worker with pid: (\d+)", text)}
        exited = {int(pid) for pid in re.findall(r"Worker exiting \(pid: (\d+)\)", text)}
        return booted, exited


def require_nginx() -> str:
    """The nginx binary; skip without one, unless RUNS_TEST_REQUIRE_NGINX says it must be there."""
    nginx = nginx_binary()
    if nginx is None:
        if os.environ.get("RUNS_TEST_REQUIRE_NGINX"):
            pytest.fail("RUNS_TEST_REQUIRE_NGINX is set but there is no nginx binary")
        pytest.skip("nginx is not installed (apt-get install nginx)")
    return nginx


def start_nginx(
    nginx: str, directory: Path, upstream_ports: int | list[int], exits: ExitStack
) -> int:
    """Run deploy/nginx.conf in front of the upstream port(s); return nginx's own port."""
    port = free_port()
    site = directory / "runs_service.conf"
    site.write_text(render_site(upstream_ports, port))
    main_config = directory / "nginx.conf"
    main_config.write_text(nginx_main_config(directory, site))
    command = [nginx, "-p", str(directory), "-c", str(main_config)]
    check = subprocess.run([*command, "-t"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    process = start(command, dict(os.environ), directory / "nginx.out", exits)

    wait_listening(port, process, directory / "error.log")
    return port


@pytest.fixture(scope="module")
def deployment(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """gunicorn with two workers on the test database, nginx in front, both on free ports."""
    nginx = require_nginx()
    directory = tmp_path_factory.mktemp("e2e")
    gunicorn_port = free_port()
    # Only what this deployment sets: a developer's RUNS_* or GUNICORN_CMD_ARGS must not leak in.
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("RUNS_", "GUNICORN_", "FORWARDED_ALLOW_IPS"))
    }
    env.update(
        RUNS_DATABASE_URL=database_url,
        RUNS_API_TOKENS=WRITER_TOKEN,
        RUNS_PROXY_COUNT="1",
        RUNS_RESULTS_DIR=str(directory / "results"),
        BIND=f"127.0.0.1:{gunicorn_port}",
        WEB_CONCURRENCY="2",
    )
    with ExitStack() as exits:
        exits.callback(empty_tables, make_app(database_url, directory))
        gunicorn_log = directory / "gunicorn.log"
        gunicorn = start([str(START_SCRIPT)], env, gunicorn_log, exits)
        wait_listening(gunicorn_port, gunicorn, gunicorn_log)
        nginx_port = start_nginx(nginx, directory, gunicorn_port, exits)
        yield Deployment(nginx_port, gunicorn_port, gunicorn, gunicorn_log)


HISTORY_METRICS = CSV_HEADER[1:]


def metric_value(step: int, column: int) -> float:
    """Distinct per cell, in [0, 1) so that every metric accepts it."""
    return ((step * len(HISTORY_METRICS) + column) % 9973) / 9973


def history_points(epochs: int) -> list[dict]:
    """Metric points filling every CSV column for steps 0..epochs-1."""
    return [
        {"metric_name": name, "metric_value": metric_value(step, column), "step": step}
        for step in range(epochs)
        for column, name in enumerate(HISTORY_METRICS)
    ]


def create_run(port: int, **fields) -> Reply:
    reply = post_json(port, "/api/runs", {"training_mode": "centralized", **fields})
    assert reply.status == 201, reply.body
    return reply


def test_write_then_read_round_trip_through_nginx(deployment):
    created = create_run(deployment.nginx_port, run_description="through nginx").json()

    read = call(deployment.nginx_port, "GET", f"/api/runs/{created['id']}")

    assert read.status == 200
    assert read.json() == created
    assert created["run_description"] == "through nginx"


def test_generated_urls_use_the_client_scheme_host_and_port(deployment):
    created = create_run(deployment.nginx_port)
    docs = call(deployment.nginx_port, "GET", "/api/docs")
    docs_page = call(deployment.nginx_port, "GET", "/api/docs/")

    run_id = created.json()["id"]
    # nginx's port, not gunicorn's: the app builds URLs from X-Forwarded-Host/-Port/-Proto.
    assert created.headers["Location"] == f"{deployment.base_url}/api/runs/{run_id}"
    assert docs.status == 308
    assert docs.headers["Location"] == f"{deployment.base_url}/api/docs/"
    assert docs_page.status == 200
    assert f'"{deployment.base_url}/api/docs/oauth2-redirect.html"' in docs_page.body.decode()


def test_forwarded_headers_forged_by_a_client_do_not_pass_nginx(deployment):
    marker = "e2e-forged-through-nginx"
    forged = {
        "X-Forwarded-For": "203.0.113.9",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Port": "8443",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Ssl": "on",
        "User-Agent": marker,
    }

    created = post_json(
        deployment.nginx_port,
        "/api/runs",
        {"training_mode": "centralized"},
        headers=forged,
        source=CLIENT_ADDRESS,
    )

    assert created.status == 201, created.body
    # nginx overwrites host, port and scheme with what the client really used.
    assert created.headers["Location"] == f"{deployment.base_url}/api/runs/{created.json()['id']}"
    # nginx appends the client's address to its X-Forwarded-For and the app trusts that
    # one hop only: the address it sees (gunicorn logs it first) is the client's real one,
    # neither the forged entry nor nginx's own 127.0.0.1.
    client_address = deployment.access_log_line(marker).split(" ", 1)[0]
    assert client_address == CLIENT_ADDRESS


def test_a_direct_client_gets_exactly_one_hop_trusted(deployment):
    """RUNS_PROXY_COUNT=1: of a forged chain only the last entry counts.

    That one hop is whatever the peer says, which is why gunicorn binds to loopback
    (or a private address) and nothing but nginx can reach it.
    """
    marker = "e2e-forged-direct"
    forged = {
        "X-Forwarded-For": "203.0.113.9, 198.51.100.7",
        "X-Forwarded-Host": "evil.example, proxy.example",
        # Contradicts X-Forwarded-Proto: gunicorn must leave scheme headers to ProxyFix.
        "X-Forwarded-Proto": "http",
        "X-Forwarded-Ssl": "on",
        "User-Agent": marker,
    }

    created = post_json(
        deployment.gunicorn_port, "/api/runs", {"training_mode": "centralized"}, headers=forged
    )

    assert created.status == 201, created.body
    assert created.headers["Location"] == f"http://proxy.example/api/runs/{created.json()['id']}"
    assert deployment.access_log_line(marker).split(" ", 1)[0] == "198.51.100.7"


def test_body_at_the_limit_passes_and_one_byte_more_is_413_json(deployment):
    document = b'{"training_mode": "centralized"}'
    # JSON allows trailing whitespace: a valid body of exactly the limit.
    at_limit = document + b" " * (BODY_LIMIT - len(document))
    headers = {"Content-Type": "application/json", **AUTH}

    accepted = call(deployment.nginx_port, "POST", "/api/runs", at_limit, headers)
    refused = call(deployment.nginx_port, "POST", "/api/runs", at_limit + b" ", headers)

    assert accepted.status == 201, accepted.body[:500]
    assert refused.status == 413
    assert refused.headers.get_content_type() == "application/json"
    assert refused.json()["code"] == 413


def test_large_csv_download_streams_completely(deployment):
    epochs = 1000
    run_id = create_run(deployment.nginx_port).json()["id"]
    points = history_points(epochs)
    logged = post_json(deployment.nginx_port, f"/api/runs/{run_id}/metrics", {"metrics": points})
    assert logged.status == 200, logged.body[:500]
    assert logged.json()["inserted"] == epochs * len(HISTORY_METRICS)

    download = call(deployment.nginx_port, "GET", f"/api/runs/{run_id}/download/csv")

    assert download.status == 200, download.body[:500]
    assert download.headers.get_content_type() == "text/csv"
    assert download.headers["Content-Disposition"] == (
        f'attachment; filename="run_{run_id}_metrics.csv"'
    )
    # Passed on as it is produced: chunked, with no length known in advance.
    assert download.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in download.headers
    header, *rows = csv.reader(io.StringIO(download.body.decode()))
    assert header == CSV_HEADER
    assert [row[0] for row in rows] == [str(epoch) for epoch in range(1, epochs + 1)]
    assert all(
        [float(cell) for cell in row[1:]]
        == [metric_value(step, column) for column in range(len(HISTORY_METRICS))]
        for step, row in enumerate(rows)
    )


def test_json_is_gzipped_for_clients_that_accept_it(deployment):
    compressed = call(
        deployment.nginx_port, "GET", "/api/openapi.json", headers={"Accept-Encoding": "gzip"}
    )
    plain = call(deployment.nginx_port, "GET", "/api/openapi.json")

    assert compressed.status == plain.status == 200
    assert compressed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in compressed.headers["Vary"]
    assert len(compressed.body) < len(plain.body) / 3
    assert "Content-Encoding" not in plain.headers
    assert json.loads(gzip.decompress(compressed.body)) == plain.json()


def test_conditional_reads_answer_304_through_nginx_gzip_and_all(deployment):
    port = deployment.nginx_port
    run_id = create_run(port, run_description="polled through nginx").json()["id"]
    logged = post_json(port, f"/api/runs/{run_id}/metrics", {"metrics": history_points(20)})
    assert logged.status == 200, logged.body
    url = f"/api/runs/{run_id}/metrics"
    gzipped = {"Accept-Encoding": "gzip"}

    compressed = call(port, "GET", url, headers=gzipped)
    plain = call(port, "GET", url)
    assert compressed.headers["Content-Encoding"] == "gzip"  # big enough for gzip_min_length
    # nginx's gzip weakens the app's strong ETag; both name the same answer.
    weak_etag, strong_etag = compressed.headers["ETag"], plain.headers["ETag"]
    assert weak_etag == f"W/{strong_etag}"

    for etag in (weak_etag, strong_etag):
        for headers in (gzipped, {}):
            again = call(port, "GET", url, headers={**headers, "If-None-Match": etag})
            assert again.status == 304, (etag, headers)
            assert again.body == b""

    more = post_json(port, f"/api/runs/{run_id}/metrics", {"metrics": history_points(21)})
    assert more.status == 200, more.body
    changed = call(port, "GET", url, headers={**gzipped, "If-None-Match": weak_etag})
    assert changed.status == 200
    assert changed.headers["ETag"] != weak_etag
    assert json.loads(gzip.decompress(changed.body))["total_epochs"] == 21


def test_probes_answer_through_nginx(deployment):
    ready = call(deployment.nginx_port, "GET", "/readyz")
    alive = call(deployment.nginx_port, "GET", "/healthz")

    assert (ready.status, ready.json()) == (200, {"status": "ok"})
    assert (alive.status, alive.json()) == (200, {"status": "ok"})


def test_nginx_answers_503_json_with_retry_after_when_the_app_is_down(tmp_path):
    nginx = require_nginx()
    with ExitStack() as exits:
        # Nothing listens on the upstream port.
        port = start_nginx(nginx, tmp_path, free_port(), exits)
        reply = call(port, "GET", "/readyz")

    assert reply.status == 503
    assert reply.headers["Retry-After"] == "5"
    assert reply.headers.get_content_type() == "application/json"
    assert reply.json()["code"] == 503


@dataclass
class Outcome:
    started: float
    finished: float
    request: str
    result: int | str


def test_sighup_reload_while_requests_run_loses_none(deployment):
    """Writes, batches and downloads keep running while HUP replaces both workers."""
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    stopping = threading.Event()
    port = deployment.nginx_port

    def timed(method: str, path: str, document=None, expected_lines: int = 0) -> Reply | None:
        started = time.monotonic()
        try:
            if document is None:
                reply = call(port, method, path)
            else:
                reply = post_json(port, path, document)
            result: int | str = reply.status
            lines = reply.body.count(b"\n")
            if expected_lines and lines != expected_lines:
                result = f"{reply.status} with {lines} of {expected_lines} lines"
        except (OSError, http.client.HTTPException) as error:
            reply, result = None, repr(error)
        with lock:
            outcomes.append(Outcome(started, time.monotonic(), f"{method} {path}", result))
        return reply if result in (200, 201) else None

    def client() -> None:
        # Each round holds a worker for a while, so some are in flight at the signal.
        epochs = 100
        while not stopping.is_set():
            created = timed("POST", "/api/runs", {"training_mode": "centralized"})
            if created is None:
                continue
            run = f"/api/runs/{created.json()['id']}"
            if timed("POST", f"{run}/metrics", {"metrics": history_points(epochs)}):
                timed("GET", f"{run}/download/csv", expected_lines=epochs + 1)

    booted_before, exited_before = deployment.worker_pids()
    old_workers = booted_before - exited_before
    assert len(old_workers) == 2
    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(outcomes) >= 12, 60, "requests before the reload")
        signalled = time.monotonic()
        deployment.gunicorn.send_signal(signal.SIGHUP)

        def reloaded() -> bool:
            booted, exited = deployment.worker_pids()
            return old_workers <= exited and len(booted - exited) == 2

        wait_until(reloaded, 60, "the new workers", deployment.gunicorn_log)
        after = len(outcomes)
        wait_until(lambda: len(outcomes) >= after + 12, 60, "requests after the reload")
    finally:
        stopping.set()
        for thread in threads:
            thread.join(STOP_SECONDS)

    failed = [outcome for outcome in outcomes if outcome.result not in (200, 201)]
    assert failed == [], f"{len(failed)} of {len(outcomes)} requests failed"
    in_flight = [o for o in outcomes if o.started < signalled < o.finished]
    assert in_flight, "no request was in flight when the signal was sent"
    assert deployment.gunicorn.poll() is None
