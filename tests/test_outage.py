"""Database outages: every route answers 503 JSON with Retry-After, fast, and recovers.

The shared PostgreSQL server is never stopped: an outage is an unreachable URL, an
SQLite file that cannot be opened, or a TCP proxy in front of the real database that
the test closes (connections reset, new ones refused) and opens again.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import make_url

from runs_service import create_app
from runs_service.config import engine_options, load_config
from runs_service.extensions import db
from tests.helpers import ADMIN_AUTH, ADMIN_TOKEN, AUTH, WRITER_TOKEN

# A connection to this port is refused at once: nothing listens on tcpmux.
UNREACHABLE_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:1/none"
CONNECT_TIMEOUT_SECONDS = 2
# Far below gunicorn's 30 s worker timeout: an outage never costs a worker.
RESPONSE_BOUND_SECONDS = CONNECT_TIMEOUT_SECONDS + 3
# Routes that answer without the database (the probes' liveness half and the API docs).
DATABASE_FREE = {("get", "/healthz")}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

RUN_ID = 1
FEDERATED_BODY = {"training_mode": "federated"}
METRICS_BODY = {"metrics": [{"metric_name": "val_acc", "metric_value": 0.5, "step": 0}]}
EVALUATIONS_BODY = {"evaluations": [{"round_number": 1, "accuracy": 0.5}]}
CLIENTS_BODY = {"clients": [{"client_identifier": "client-1"}]}
RESULTS_BODY = {"evaluate_metrics_serverapp": {"1": {"server_accuracy": 0.5}}}

# One valid request per operation of the OpenAPI document (checked against it below).
VALID_REQUESTS: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/runs"): {"json": FEDERATED_BODY},
    ("get", "/api/runs/list"): {"query_string": {"limit": 5}},
    ("get", "/api/runs/analytics/summary"): {"query_string": {"status": "all"}},
    ("get", "/api/runs/{run_id}"): {},
    ("patch", "/api/runs/{run_id}"): {"json": {"status": "completed"}},
    ("delete", "/api/runs/{run_id}"): {},
    ("get", "/api/runs/{run_id}/metrics"): {},
    ("post", "/api/runs/{run_id}/metrics"): {"json": METRICS_BODY},
    ("get", "/api/runs/{run_id}/download/csv"): {},
    ("get", "/api/runs/{run_id}/download/json"): {},
    ("get", "/api/runs/{run_id}/download/summary"): {},
    ("get", "/api/runs/{run_id}/federated-rounds"): {},
    ("get", "/api/runs/{run_id}/server-evaluation"): {},
    ("post", "/api/runs/{run_id}/server-evaluations"): {"json": EVALUATIONS_BODY},
    ("post", "/api/runs/{run_id}/clients"): {"json": CLIENTS_BODY},
    ("post", "/api/runs/backfill/{run_id}/server-evaluations"): {"json": RESULTS_BODY},
    ("get", "/api/runs/{run_id}/metric-history"): {"query_string": {"max_points": 100}},
    ("get", "/api/runs/{run_id}/clients"): {},
    ("get", "/api/runs/compare"): {"query_string": {"run_ids": "1,2", "names": "val_acc"}},
    ("get", "/api/runs/{run_id}/metric-summaries"): {"query_string": {"at_best_of": "val_acc"}},
    ("get", "/api/runs/metric-names"): {},
    ("get", "/healthz"): {},
    ("get", "/readyz"): {},
}


def outage_app(database_url: str, tmp_path, **overrides: Any) -> Flask:
    return create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "RUNS_API_TOKENS": (WRITER_TOKEN,),
            "RUNS_ADMIN_TOKENS": (ADMIN_TOKEN,),
            "RUNS_RESULTS_DIR": str(tmp_path / "results"),
            "RUNS_DB_CONNECT_TIMEOUT": CONNECT_TIMEOUT_SECONDS,
            **overrides,
        }
    )


def call(app: Flask, method: str, path: str, **kwargs: Any):
    """Send one request as an admin (every scope); returns the response and how long it took."""
    started = time.monotonic()
    response = app.test_client().open(
        path.replace("{run_id}", str(kwargs.pop("run_id", RUN_ID))),
        method=method.upper(),
        headers=ADMIN_AUTH,
        **kwargs,
    )
    return response, time.monotonic() - started


def assert_unavailable(response, elapsed: float, route: str) -> None:
    assert response.status_code == 503, (route, response.status_code, response.get_data())
    assert response.mimetype == "application/json", route
    body = response.get_json()
    assert body["code"] == 503 and body["status"] == "Service Unavailable", route
    assert "retry" in body["message"].lower(), route
    assert response.headers["Retry-After"].isdigit(), route
    assert elapsed < RESPONSE_BOUND_SECONDS, (route, elapsed)


def assert_every_route_is_unavailable(app: Flask) -> None:
    for (method, path), kwargs in VALID_REQUESTS.items():
        response, elapsed = call(app, method, path, **kwargs)
        if (method, path) in DATABASE_FREE:
            assert response.status_code == 200, (method, path)
        else:
            assert_unavailable(response, elapsed, f"{method.upper()} {path}")
    # The API's own documentation needs no database either.
    client = app.test_client()
    assert client.get("/api/openapi.json").status_code == 200
    assert client.get("/api/docs/", follow_redirects=True).status_code == 200


def test_the_route_table_covers_every_operation(app):
    document = app.test_client().get("/api/openapi.json").get_json()
    operations = {
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
    assert operations == set(VALID_REQUESTS)


def test_unreachable_postgres_makes_every_route_answer_503_quickly(tmp_path):
    app = outage_app(UNREACHABLE_POSTGRES, tmp_path)
    assert_every_route_is_unavailable(app)


def test_unopenable_sqlite_file_makes_every_route_answer_503(tmp_path):
    app = outage_app("sqlite:///" + str(tmp_path / "missing-directory" / "runs.db"), tmp_path)
    assert_every_route_is_unavailable(app)


def test_readiness_fails_while_liveness_holds(tmp_path):
    app = outage_app(UNREACHABLE_POSTGRES, tmp_path)
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    response, elapsed = call(app, "get", "/readyz")
    assert_unavailable(response, elapsed, "GET /readyz")


def test_sqlite_database_that_appears_later_is_used_without_a_restart(tmp_path):
    path = tmp_path / "later" / "runs.db"
    app = outage_app("sqlite:///" + str(path), tmp_path)
    assert app.test_client().get("/readyz").status_code == 503
    path.parent.mkdir()
    with app.app_context():
        upgrade()
    assert app.test_client().get("/readyz").status_code == 200
    response, _ = call(app, "post", "/api/runs", json=FEDERATED_BODY)
    assert response.status_code == 201


class TcpProxy:
    """A loopback TCP proxy that can be cut (every connection reset, new ones refused),
    stalled (connections accepted, nothing forwarded) and restored on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.stalled = False
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        listener.settimeout(0.05)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stopping.clear()
        self._spawn(self._accept_loop)

    def stop(self) -> None:
        """Close the port and reset every open connection, like a database that went away."""
        self._stopping.set()
        while self._threads:
            self._threads.pop().join(timeout=5)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                downstream, _ = self._listener.accept()
            except TimeoutError:
                continue
            self._track(downstream)
            if self.stalled:
                continue  # accepted, never answered: the client's timeouts must act
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                downstream.close()
                continue
            self._track(upstream)
            self._spawn(self._pump, downstream, upstream)

    def _pump(self, downstream: socket.socket, upstream: socket.socket) -> None:
        peers = {downstream: upstream, upstream: downstream}
        while not self._stopping.is_set():
            try:
                readable, _, _ = select.select(list(peers), [], [], 0.05)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return self._close_pair(downstream, upstream)
                    peers[sock].sendall(data)
            except OSError:
                return self._close_pair(downstream, upstream)
        # Stopping: abort both sides (RST), the way a crashed server's connections end.
        for sock in (downstream, upstream):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._close_pair(downstream, upstream)

    def _close_pair(self, *sockets: socket.socket) -> None:
        with self._lock:
            for sock in sockets:
                self._sockets.discard(sock)
                sock.close()


@pytest.fixture
def postgres_proxy(database_url: str, is_postgres: bool) -> Iterator[tuple[TcpProxy, str]]:
    """A proxy in front of the session's PostgreSQL database, and the URL through it."""
    if not is_postgres:
        pytest.skip("needs PostgreSQL (RUNS_TEST_DATABASE_URL)")
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    try:
        yield (
            proxy,
            url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
        )
    finally:
        proxy.stop()


def test_postgres_outage_answers_503_and_recovers_without_a_restart(postgres_proxy, app, tmp_path):
    proxy, url = postgres_proxy
    service = outage_app(url, tmp_path)
    assert service.test_client().get("/readyz").status_code == 200
    created, _ = call(service, "post", "/api/runs", json=FEDERATED_BODY)
    assert created.status_code == 201
    run_id = created.get_json()["id"]
    # The pool now holds live connections through the proxy; cutting it resets them.
    proxy.stop()
    for (method, path), kwargs in VALID_REQUESTS.items():
        response, elapsed = call(service, method, path, run_id=run_id, **kwargs)
        if (method, path) in DATABASE_FREE:
            assert response.status_code == 200
        else:
            assert_unavailable(response, elapsed, f"{method.upper()} {path}")

    proxy.start()
    client = service.test_client()
    assert client.get("/readyz").status_code == 200
    assert client.get(f"/api/runs/{run_id}").status_code == 200
    logged = client.post(f"/api/runs/{run_id}/metrics", json=METRICS_BODY, headers=AUTH)
    assert logged.status_code == 200, logged.get_json()
    with service.app_context():
        db.engine.dispose()


def test_postgres_that_accepts_but_never_answers_is_503_within_the_connect_timeout(
    postgres_proxy, app, tmp_path
):
    proxy, url = postgres_proxy
    proxy.stalled = True
    service = outage_app(url, tmp_path)
    for method, path in (("get", "/readyz"), ("get", "/api/runs/list"), ("post", "/api/runs")):
        response, elapsed = call(service, method, path, **VALID_REQUESTS[(method, path)])
        assert_unavailable(response, elapsed, f"{method.upper()} {path}")
    proxy.stalled = False
    assert service.test_client().get("/readyz").status_code == 200
    with service.app_context():
        db.engine.dispose()


def test_configured_timeouts_stay_below_gunicorns_worker_timeout(tmp_path):
    namespace: dict[str, Any] = {}
    config_path = os.path.join(os.path.dirname(__file__), "..", "gunicorn.conf.py")
    with open(config_path) as source:
        exec(compile(source.read(), config_path, "exec"), namespace)
    worker_timeout = namespace["timeout"]

    postgres = engine_options(
        load_config({"RUNS_DATABASE_URL": UNREACHABLE_POSTGRES}, str(tmp_path))
    )
    connect_args = postgres["connect_args"]
    assert connect_args["connect_timeout"] < worker_timeout
    assert postgres["pool_timeout"] < worker_timeout
    assert connect_args["tcp_user_timeout"] / 1000 < worker_timeout
    statement_timeout_ms = int(connect_args["options"].removeprefix("-c statement_timeout="))
    assert statement_timeout_ms / 1000 < worker_timeout
    sqlite = engine_options(load_config({}, str(tmp_path)))
    assert sqlite["connect_args"]["timeout"] < worker_timeout
