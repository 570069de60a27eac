"""End to end: three gunicorn instances behind deploy/nginx.conf over one PostgreSQL.

Eight writers work through nginx while one instance is killed with SIGKILL and started
again. Every acknowledged write must be stored exactly once, writers that retry lose
nothing, and a read through any instance right after a write sees it. SQLite is one
host's file, so the module needs RUNS_TEST_DATABASE_URL (the PostgreSQL pass of
.ci/run); without nginx it skips, or fails under RUNS_TEST_REQUIRE_NGINX.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.e2e.test_nginx import (
    HISTORY_METRICS,
    Reply,
    call,
    free_port,
    metric_value,
    require_nginx,
    start,
    start_nginx,
    wait_listening,
    wait_until,
)
from tests.helpers import AUTH, WRITER_TOKEN, empty_tables, make_app

pytestmark = pytest.mark.e2e

INSTANCES = 3
WRITERS = 8
# Each run gets its metrics in this many batches of STEPS_PER_BATCH epochs.
BATCHES = 2
STEPS_PER_BATCH = 5
# Acknowledged writes before the kill, while one instance is down, and after its return.
WRITES_PER_PHASE = 40
# Answers that say "not done, try again": nginx's own 503 (instance died mid-request)
# and a connection nginx could not complete.
RETRIABLE = frozenset({502, 503, 504})


# The test's nginx log format (tests/e2e/test_nginx.py, nginx_main_config).
LOG_LINE = re.compile(r'"(?P<request>[^"]*)" (?P<status>\d+) upstream=\[(?P<upstreams>[^]]*)\]')


@dataclass
class Logged:
    request: str
    status: int
    upstreams: list[str]


@dataclass
class Instance:
    port: int
    log: Path
    process: subprocess.Popen | None = None


@dataclass
class Cluster:
    nginx_port: int
    nginx_log: Path
    instances: list[Instance]
    env: dict[str, str]
    exits: ExitStack
    killed_port: int | None = None

    def start_instance(self, instance: Instance) -> None:
        command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
        env = {**self.env, "BIND": f"127.0.0.1:{instance.port}"}
        instance.process = start(command, env, instance.log, self.exits)

    def kill_instance(self, instance: Instance) -> None:
        """SIGKILL to the master and its worker at once, as when a host dies."""
        assert instance.process is not None
        self.killed_port = instance.port
        os.killpg(instance.process.pid, signal.SIGKILL)
        instance.process.wait()

    def restart_instance(self, instance: Instance) -> None:
        self.start_instance(instance)
        wait_listening(instance.port, instance.process, instance.log)

    def log_size(self) -> int:
        return self.nginx_log.stat().st_size

    def logged(self, since: int = 0, until: int | None = None) -> list[Logged]:
        """The requests nginx logged between two sizes of its access log."""
        with open(self.nginx_log, "rb") as log:
            log.seek(since)
            size = -1 if until is None else until - since
            lines = log.read(size).decode(errors="replace").splitlines()
        return [
            Logged(found["request"], int(found["status"]), found["upstreams"].split(", "))
            for line in lines
            if (found := LOG_LINE.match(line))
        ]


@pytest.fixture(scope="module")
def cluster(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three instances (one worker each) on the test database, nginx in front."""
    if not database_url.startswith("postgresql"):
        pytest.skip("several instances share a PostgreSQL database (RUNS_TEST_DATABASE_URL)")
    nginx = require_nginx()
    tmp_path = tmp_path_factory.mktemp("scale-out")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("RUNS_", "GUNICORN_", "FORWARDED_ALLOW_IPS", "WEB_CONCURRENCY"))
    }
    env.update(
        RUNS_DATABASE_URL=database_url,
        RUNS_API_TOKENS=WRITER_TOKEN,
        RUNS_PROXY_COUNT="1",
        RUNS_RESULTS_DIR=str(tmp_path / "results"),
        WEB_CONCURRENCY="1",
    )
    instances = [Instance(free_port(), tmp_path / f"gunicorn-{n}.log") for n in range(INSTANCES)]
    with ExitStack() as exits:
        exits.callback(empty_tables, make_app(database_url, tmp_path))
        cluster = Cluster(0, tmp_path / "access.log", instances, env, exits)
        for instance in instances:
            cluster.start_instance(instance)
        for instance in instances:
            wait_listening(instance.port, instance.process, instance.log)
        cluster.nginx_port = start_nginx(
            nginx, tmp_path, [instance.port for instance in instances], exits
        )
        yield cluster


def batch_points(first_step: int) -> list[dict]:
    return [
        {"metric_name": name, "metric_value": metric_value(step, column), "step": step}
        for step in range(first_step, first_step + STEPS_PER_BATCH)
        for column, name in enumerate(HISTORY_METRICS)
    ]


@dataclass
class Ledger:
    """What the writers sent and what was acknowledged; shared by their threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    acknowledged: int = 0
    retries: int = 0
    # Retrying writers: external_id -> run id, and run id -> epochs acknowledged.
    runs_by_key: dict[str, int] = field(default_factory=dict)
    epochs: Counter = field(default_factory=Counter)
    # One-shot writers (no external_id, no retry of the create): description -> status.
    one_shot: dict[str, int | str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def note(self, problem: str) -> None:
        with self.lock:
            self.problems.append(problem)

    def acknowledge(self) -> None:
        with self.lock:
            self.acknowledged += 1


def send(port: int, method: str, path: str, document) -> Reply | str:
    """One write; a connection error comes back as its text instead of raising."""
    body = json.dumps(document).encode()
    headers = {"Content-Type": "application/json", **AUTH}
    try:
        return call(port, method, path, body=body, headers=headers, timeout=30)
    except (OSError, http.client.HTTPException) as error:
        return repr(error)


def until_done(ledger: Ledger, port: int, method: str, path: str, document, done) -> Reply:
    """Send until the answer is one of `done`, retrying what could not be done."""
    while True:
        reply = send(port, method, path, document)
        if isinstance(reply, Reply) and reply.status in done:
            ledger.acknowledge()
            return reply
        if isinstance(reply, Reply) and reply.status not in RETRIABLE:
            raise AssertionError(f"{method} {path}: {reply.status} {reply.body[:300]!r}")
        with ledger.lock:
            ledger.retries += 1
        time.sleep(0.05)


def read_everywhere(cluster: Cluster, ledger: Ledger, path: str, name: str, expected) -> None:
    """Read path through every instance that is up and through nginx: each must see it."""
    for port in [instance.port for instance in cluster.instances] + [cluster.nginx_port]:
        for attempt in range(3):
            try:
                reply = call(port, "GET", path, timeout=30)
                break
            except (OSError, http.client.HTTPException) as error:
                failure = error
                # An instance that dies after sending its answer's headers cuts the answer
                # off, also behind nginx, which cannot resend what it began passing on: a
                # reader retries. Directly, only the killed instance may not answer.
                if port == cluster.nginx_port and attempt < 2:
                    with ledger.lock:
                        ledger.retries += 1
                    continue
                if port != cluster.killed_port:
                    where = "nginx" if port == cluster.nginx_port else f"instance on {port}"
                    ledger.note(f"GET {path} through {where}: {failure!r}")
                reply = None
                break
        if reply is not None and (reply.status != 200 or reply.json().get(name) != expected):
            ledger.note(f"GET {path} on port {port}: {reply.status} {reply.body[:200]!r}")


def write_one_run(cluster: Cluster, ledger: Ledger, key: str, retrying: bool) -> None:
    """Create a run, log its metrics in batches, complete it; read each write back."""
    port = cluster.nginx_port
    document = {"training_mode": "centralized", "run_description": key}
    if retrying:
        document["external_id"] = key
        created = until_done(ledger, port, "POST", "/api/runs", document, (200, 201))
        run_id = created.json()["id"]
        with ledger.lock:
            assert ledger.runs_by_key.setdefault(key, run_id) == run_id
    else:
        created = send(port, "POST", "/api/runs", document)
        outcome = created.status if isinstance(created, Reply) else created
        with ledger.lock:
            ledger.one_shot[key] = outcome
        if outcome != 201:
            return
        ledger.acknowledge()
        run_id = created.json()["id"]
    run = f"/api/runs/{run_id}"
    read_everywhere(cluster, ledger, run, "run_description", key)
    for batch in range(BATCHES):
        points = batch_points(batch * STEPS_PER_BATCH)
        until_done(ledger, port, "POST", f"{run}/metrics", {"metrics": points}, (200,))
        with ledger.lock:
            ledger.epochs[run_id] += STEPS_PER_BATCH
        epochs = (batch + 1) * STEPS_PER_BATCH
        read_everywhere(cluster, ledger, f"{run}/metrics", "total_epochs", epochs)
    until_done(ledger, port, "PATCH", run, {"status": "completed"}, (200,))
    read_everywhere(cluster, ledger, run, "status", "completed")


def creates_are_idempotent(port: int) -> bool:
    """Whether a repeated external_id answers 200 with the existing run (SPEC 4.2).

    Writers retry a create whose answer they lost only when it is: otherwise a create that
    reached an instance before it died would be stored twice by the retry. Until the
    service has it (issue 11), every writer sends each create once and retries only the
    idempotent writes (metric batches, PATCH).
    """
    document = {"training_mode": "centralized", "external_id": "idempotence-probe"}
    first, again = (send(port, "POST", "/api/runs", document) for _ in range(2))
    return again.status == 200 and again.json()["id"] == first.json()["id"]


def writer(
    cluster: Cluster, ledger: Ledger, number: int, stopping: threading.Event, retry_creates: bool
) -> None:
    """Write runs until told to stop; even writers retry creates when that is safe."""
    try:
        for sequence in itertools.count():
            if stopping.is_set():
                return
            retrying = retry_creates and number % 2 == 0
            write_one_run(cluster, ledger, f"writer-{number}-run-{sequence}", retrying)
    except Exception as error:  # reported by the test, which cannot see a thread's exception
        ledger.note(f"writer {number} stopped: {error!r}")


def stored_facts(database_url: str) -> tuple[dict[str, list[int]], dict[int, Counter], int]:
    """Runs per description, (metric, step) rows per run, and wrong metric values."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            runs: dict[str, list[int]] = {}
            for run_id, description in connection.execute(
                text("SELECT id, run_description FROM runs")
            ):
                runs.setdefault(description, []).append(run_id)
            rows: dict[int, Counter] = {}
            wrong = 0
            for run_id, name, step, value in connection.execute(
                text("SELECT run_id, metric_name, step, metric_value FROM run_metrics")
            ):
                rows.setdefault(run_id, Counter())[(name, step)] += 1
                wrong += value != metric_value(step, HISTORY_METRICS.index(name))
    finally:
        engine.dispose()
    return runs, rows, wrong


def waiting_on_locks(connection) -> int:
    """Sessions of the test database waiting for a lock (requests held in flight).

    In autocommit: inside a transaction pg_stat_activity would show one frozen snapshot.
    """
    return connection.execute(
        text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
    ).scalar_one()


def test_an_instance_killed_mid_request_resends_batches_but_never_a_create(cluster, database_url):
    """Requests held in flight on every instance (a table lock), then one instance dies.

    nginx spreads six requests round-robin, one create and one metric batch per instance.
    The killed instance's batch must be resent to another instance and succeed; its
    create must not be resent (nginx answers 503) and must not be stored.
    """
    port = cluster.nginx_port
    run_id = send(port, "POST", "/api/runs", {"training_mode": "centralized"}).json()["id"]
    victim = cluster.instances[0]
    victim_address = f"127.0.0.1:{victim.port}"
    answers: dict[int, int | str] = {}
    requests = [
        ("POST", "/api/runs", {"training_mode": "centralized", "run_description": f"held-{n}"})
        if n % 2 == 0
        else ("POST", f"/api/runs/{run_id}/metrics", {"metrics": batch_points(n * 10)})
        for n in range(2 * INSTANCES)
    ]

    def request(number: int) -> None:
        reply = send(port, *requests[number])
        answers[number] = reply.status if isinstance(reply, Reply) else reply

    engine = create_engine(database_url)
    threads = [threading.Thread(target=request, args=(n,)) for n in range(len(requests))]
    log_before = cluster.log_size()
    try:
        observing = engine.execution_options(isolation_level="AUTOCOMMIT")
        with engine.connect() as locker, observing.connect() as observer:
            locker.execute(text("LOCK TABLE runs IN EXCLUSIVE MODE"))
            for number, thread in enumerate(threads):
                thread.start()
                wait_until(lambda n=number: waiting_on_locks(observer) > n, 30, "a held request")
            cluster.kill_instance(victim)
            # The victim's create comes back (503); its batch waits again on another
            # instance, beside the two sessions of the dead instance, which PostgreSQL
            # notices only when their lock wait ends (they then roll back).
            wait_until(lambda: len(answers) == 1, 30, "the answer of the killed create")
            wait_until(lambda: waiting_on_locks(observer) == 7, 30, "the resent batch")
            locker.rollback()
    finally:
        for thread in threads:
            if thread.ident is not None:
                thread.join(60)
        engine.dispose()
        cluster.restart_instance(victim)

    creates = {requests[n][2]["run_description"]: answers[n] for n in range(0, len(requests), 2)}
    batches = [answers[n] for n in range(1, len(requests), 2)]
    assert sorted(creates.values()) == [201, 201, 503]
    assert batches == [200, 200, 200]
    logged = [entry for entry in cluster.logged(log_before) if entry.request.startswith("POST")]
    # The failed create was sent to the victim only; the victim's batch went on to another.
    assert [e.upstreams for e in logged if e.status == 503] == [[victim_address]]
    resent = [e for e in logged if len(e.upstreams) == 2]
    assert [(e.request.split()[1], e.upstreams[0]) for e in resent] == [
        (f"/api/runs/{run_id}/metrics", victim_address)
    ]
    runs, rows, wrong = stored_facts(database_url)
    acknowledged = {key for key, answer in creates.items() if answer == 201}
    assert {key for key in runs if key and key.startswith("held-")} == acknowledged
    assert all(len(runs[key]) == 1 for key in acknowledged)
    expected = {
        (name, n * 10 + step)
        for n in range(1, 2 * INSTANCES, 2)
        for step in range(STEPS_PER_BATCH)
        for name in HISTORY_METRICS
    }
    assert set(rows[run_id]) == expected
    assert set(rows[run_id].values()) == {1}
    assert wrong == 0


def test_killing_an_instance_under_concurrent_writes_loses_and_duplicates_nothing(
    cluster, database_url
):
    ledger = Ledger()
    stopping = threading.Event()
    retry_creates = creates_are_idempotent(cluster.nginx_port)
    threads = [
        threading.Thread(target=writer, args=(cluster, ledger, number, stopping, retry_creates))
        for number in range(WRITERS)
    ]
    victim = cluster.instances[1]
    victim_address = f"127.0.0.1:{victim.port}"
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: ledger.acknowledged >= WRITES_PER_PHASE, 60, "writes before the kill")
        cluster.kill_instance(victim)
        killed_at = ledger.acknowledged
        log_at_kill = cluster.log_size()
        wait_until(
            lambda: ledger.acknowledged >= killed_at + WRITES_PER_PHASE, 60, "writes while down"
        )
        cluster.restart_instance(victim)
        log_at_restart = cluster.log_size()

        def victim_serves_again() -> bool:
            served = cluster.logged(log_at_restart)
            return sum(entry.upstreams[-1] == victim_address for entry in served) >= 5

        # nginx tries the instance again once its fail_timeout (5 s) has passed.
        wait_until(victim_serves_again, 60, "nginx sending requests to the restarted instance")
        restarted_at = ledger.acknowledged
        wait_until(
            lambda: ledger.acknowledged >= restarted_at + WRITES_PER_PHASE, 60, "writes after"
        )
    finally:
        stopping.set()
        for thread in threads:
            thread.join(60)

    assert ledger.problems == []
    # While the victim was down, nginx moved what it sent there to another instance, except
    # a create the victim held when it died: that one is answered 503, never resent.
    sent_to_victim = [
        entry
        for entry in cluster.logged(log_at_kill, log_at_restart)
        if entry.upstreams[0] == victim_address
    ]
    moved = [entry for entry in sent_to_victim if len(entry.upstreams) == 2]
    assert moved and all(entry.status < 500 for entry in moved), sent_to_victim
    assert all(
        entry in moved or (entry.request.startswith("POST /api/runs ") and entry.status == 503)
        for entry in sent_to_victim
    ), sent_to_victim

    runs, rows, wrong = stored_facts(database_url)
    # Retrying writers: every run exactly once, under the id its creator was given.
    for key, run_id in ledger.runs_by_key.items():
        assert runs[key] == [run_id], key
    # Every acknowledged epoch stored once (a unique key forbids more; all must be there).
    for run_id, epochs in ledger.epochs.items():
        expected = {(name, step) for step in range(epochs) for name in HISTORY_METRICS}
        assert set(rows.get(run_id, {})) == expected, run_id
        assert set(rows[run_id].values()) == {1}
    assert wrong == 0
    # One-shot creates: acknowledged ones stored exactly once; nginx never resent a create,
    # so even an unacknowledged one (the instance died holding it) exists at most once.
    for key, outcome in ledger.one_shot.items():
        stored = len(runs.get(key, []))
        assert stored == 1 if outcome == 201 else stored <= 1, (key, outcome, stored)
    written = {key for key in runs if key and key.startswith("writer-")}
    assert written == set(ledger.runs_by_key) | (written & set(ledger.one_shot))
