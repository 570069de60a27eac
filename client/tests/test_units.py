"""Pure parts of the client, without a service: batching, backoff, checks, spool, queue."""

from __future__ import annotations

import http.server
import json
import logging
import math
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from runs_client import RunsClient, RunsClientError
from runs_client._http import Response, backoff_delay, encode, retry_after_seconds
from runs_client._points import InvalidInput, evaluation_body
from runs_client._spool import Spool
from runs_client.client import (
    CLIENTS,
    CREATE,
    EVALUATIONS,
    METRICS,
    PATCH,
    _RunRef,
    build_requests,
    refused_indexes,
)
from runs_client.flower import evaluation_fields

# Nothing listens on port 9 of the loopback (discard): connections are refused at once.
DOWN = "http://127.0.0.1:9"


def ref(name: str = "a") -> _RunRef:
    return _RunRef(name, {"training_mode": "federated", "external_id": name})


def metric_entry(run: _RunRef, step: int, values, client=None, round_number=None):
    return (METRICS, run, (step, client, round_number, list(values)))


def test_batches_keep_the_service_limit_and_the_last_value_of_a_repeated_point():
    run = ref()
    entries = [metric_entry(run, step, [("loss", float(step))]) for step in range(10_001)]
    entries.append(metric_entry(run, 3, [("loss", -1.0)]))
    entries.append(metric_entry(run, 10_000, [("loss", -2.0)]))
    requests = build_requests(entries)
    # Within a batch the last value replaces the earlier one; a later batch goes later.
    assert [len(request.items) for request in requests] == [10_000, 2]
    assert requests[0].payload()["metrics"][3]["metric_value"] == 3.0
    assert sorted(requests[1].payload()["metrics"], key=lambda point: point["step"]) == [
        {"metric_name": "loss", "metric_value": -1.0, "step": 3},
        {"metric_name": "loss", "metric_value": -2.0, "step": 10_000},
    ]


def test_batches_split_at_a_create_or_patch_of_the_same_run_only():
    first, second = ref("a"), ref("b")
    entries = [
        (CREATE, first, None),
        metric_entry(first, 0, [("loss", 1.0)]),
        metric_entry(second, 0, [("loss", 2.0)]),
        (PATCH, first, {"status": "completed"}),
        metric_entry(first, 1, [("loss", 0.5)]),
        metric_entry(second, 1, [("loss", 1.5)]),
        (EVALUATIONS, first, {"round_number": 1, "accuracy": 0.5}),
        (EVALUATIONS, first, {"round_number": 1, "accuracy": 0.6}),
        (CLIENTS, first, [{"client_identifier": "c"}, {"client_identifier": "c"}]),
    ]
    shape = [(r.kind, r.ref.external_id, len(r.items)) for r in build_requests(entries)]
    assert shape == [
        (CREATE, "a", 0),
        (METRICS, "a", 1),
        (METRICS, "b", 2),
        (PATCH, "a", 0),
        (METRICS, "a", 1),
        (EVALUATIONS, "a", 1),
        (CLIENTS, "a", 1),
    ]


def test_client_local_points_carry_client_and_round():
    [request] = build_requests([metric_entry(ref(), 2, [("train_loss", 0.1)], "c1", 2)])
    assert request.payload() == {
        "metrics": [
            {
                "metric_name": "train_loss",
                "metric_value": 0.1,
                "step": 2,
                "client_identifier": "c1",
                "round_number": 2,
            }
        ]
    }


@pytest.mark.parametrize(
    ("attempt", "retry_after", "low", "high"),
    [(0, None, 0.25, 0.5), (3, None, 2.0, 4.0), (10, None, 15.0, 30.0), (0, 7.0, 7.0, 7.0)],
)
def test_backoff_is_exponential_jittered_capped_and_honours_retry_after(
    attempt, retry_after, low, high
):
    for rand in (0.0, 0.5, 1.0):
        delay = backoff_delay(attempt, 0.5, 30.0, retry_after, rand=rand)
        assert low <= delay <= high


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after_seconds({"retry-after": "12"}) == 12.0
    assert retry_after_seconds({"retry-after": "99999"}) == 300.0
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"retry-after": "soon"}) is None
    later = datetime.now(timezone.utc) + timedelta(seconds=30)
    waited = retry_after_seconds({"retry-after": format_datetime(later, usegmt=True)})
    assert 25 <= waited <= 31


def test_refused_indexes_come_from_the_service_error_details():
    body = {"errors": {"json": {"metrics": {"0": {"metric_value": ["x"]}, "3": ["y"]}}}}
    assert refused_indexes(Response(422, {}, body), "metrics") == {0, 3}
    assert refused_indexes(Response(422, {}, {"message": "no details"}), "metrics") == set()
    assert refused_indexes(Response(409, {}, None), "metrics") == set()


def test_evaluation_body_maps_counts_and_keeps_other_numbers():
    body = evaluation_body(
        2, {"accuracy": 0.9, "true_positives": 475.0, "custom": 3, "series": [1, 2.5]}
    )
    assert body["true_positives"] == 475 and isinstance(body["true_positives"], int)
    assert body["additional_metrics"] == {"custom": 3, "series": [1, 2.5]}
    assert body["evaluation_time"].endswith("+00:00")
    with pytest.raises(InvalidInput, match="accuracy"):
        evaluation_body(1, {"accuracy": 1.2})
    with pytest.raises(InvalidInput, match="true_negatives"):
        evaluation_body(1, {"true_negatives": -1})
    with pytest.raises(InvalidInput, match="round_number"):
        evaluation_body(-1, {})


def test_flower_metric_records_map_to_server_evaluation_fields():
    fields = evaluation_fields(
        {
            "server_loss": 0.3,
            "accuracy": 0.9,
            "cm_tp": 40,
            "val_cm_tn": 30,
            "fp": 20,
            "false_negatives": 10,
            "auc": 0.8,
            "f1": 0.7,
            "num-examples": 100,
            "hist": [1, 2],
            "note": "text is skipped",
        }
    )
    assert fields == {
        "loss": 0.3,
        "accuracy": 0.9,
        "true_positives": 40,
        "true_negatives": 30,
        "false_positives": 20,
        "false_negatives": 10,
        "auroc": 0.8,
        "f1_score": 0.7,
        "num_samples": 100,
        "additional_metrics": {"hist": [1, 2]},
    }
    assert evaluation_fields({"accuracy": 0.5}, loss=0.7) == {"accuracy": 0.5, "loss": 0.7}


def test_spool_appends_reads_in_order_consumes_and_respects_its_cap(tmp_path):
    spool = Spool(tmp_path, "http://service", max_bytes=200)
    refused = spool.append([{"n": 1}, {"n": 2}, {"pad": "x" * 300}])
    assert refused == [{"pad": "x" * 300}]
    record, end = spool.peek()
    assert record == {"n": 1}
    spool.consume(end)
    record, end = spool.peek()
    assert record == {"n": 2}
    spool.consume(end)
    assert spool.peek() is None and not spool.has_pending()
    assert spool.path.stat().st_size == 0
    spool.close()
    assert not spool.path.exists()


HOLDER = """
import sys, time
from runs_client._spool import Spool
spool = Spool(sys.argv[1], "http://service", 10**6)
spool.append([{"held": True}])
print("ready", flush=True)
time.sleep(60)
"""


def test_spool_files_of_live_processes_stay_theirs_and_dead_ones_are_adopted(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        orphan = Spool(tmp_path, "http://service", 10**6)
        orphan.append([{"orphan": 1}, {"orphan": 2}])
        orphan._file.close()  # as a killed process leaves it: unlocked, not consumed
        orphan._file = None
        with orphan.path.open("ab") as handle:
            handle.write(b'{"torn": ')  # a write cut short by the kill
        adopter = Spool(tmp_path, "http://service", 10**6)
        assert adopter.adopt_orphans() == 2
        assert not orphan.path.exists()
        records = []
        while (head := adopter.peek()) is not None:
            records.append(head[0])
            adopter.consume(head[1])
        assert records == [{"orphan": 1}, {"orphan": 2}]
        held = [path for path in adopter.directory.glob("*.jsonl") if path != adopter.path]
        assert len(held) == 1 and json.loads(held[0].read_text()) == {"held": True}
        adopter.close()
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_a_full_queue_moves_the_oldest_points_to_the_spool_and_drops_none(tmp_path):
    client = RunsClient(DOWN, spool_dir=tmp_path, queue_size=50, max_retries=0, backoff_base=30.0)
    run = client.start_run()
    for step in range(1_000):
        run.log_metrics({"loss": float(step)}, step=step)
    assert client.pending_points <= 50
    assert client.flush(30)
    client.close()
    steps = []
    for path in tmp_path.rglob("*.jsonl"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record["op"] == METRICS:
                steps += [point["step"] for point in record["body"]["metrics"]]
    assert sorted(steps) == list(range(1_000))


def test_logging_never_raises_and_returns_fast_while_the_service_is_down(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="runs_client")
    client = RunsClient(DOWN, spool_dir=tmp_path, max_retries=0)
    run = client.start_run(training_mode="centralized")
    started = time.perf_counter()
    for step in range(200):
        run.log_metrics({"train_loss": 0.5, "val_acc": 0.9}, step=step)
    elapsed = time.perf_counter() - started
    run.log_metrics(None, step=0)
    run.log_metrics({"val_acc": math.inf, object(): 1}, step="x")
    run.log_server_evaluation(round_number=1, accuracy=0.5)
    run.register_clients(["a"])
    run.set_status("paused")
    assert "federated" in caplog.text and "paused" in caplog.text
    assert elapsed < 0.2  # 200 calls: far below a millisecond each
    client.close()


def test_strict_mode_raises_for_invalid_input(tmp_path):
    client = RunsClient(DOWN, spool_dir=tmp_path, strict=True, max_retries=0)
    run = client.start_run(training_mode="federated")
    with pytest.raises(RunsClientError, match="step"):
        run.log_metrics({"loss": 1.0}, step=-1)
    with pytest.raises(RunsClientError, match="round_number"):
        run.log_metrics({"loss": 1.0}, step=0, client_identifier="c")
    with pytest.raises(RunsClientError, match="training_mode"):
        client.start_run(training_mode="distributed")
    client.close()


def test_long_lists_are_encoded_in_slices_as_one_json_document():
    body = {
        "metrics": [{"metric_name": "a", "metric_value": i / 3, "step": i} for i in range(1_234)]
    }
    record = {"v": 1, "op": "metrics", "run": {"create": {"config": None}}, "body": body}
    for value in (body, record, [], {}, {"a": []}, list(range(2_000))):
        assert json.loads(encode(value)) == value
    with pytest.raises(ValueError):
        encode({"metrics": [math.nan] * 600})


class BusyThenReady(http.server.ThreadingHTTPServer):
    """Answers 503 with Retry-After to the first request, then 2xx; records the times."""

    def __init__(self) -> None:
        self.times: list[float] = []
        super().__init__(("127.0.0.1", 0), BusyThenReadyHandler)


class BusyThenReadyHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.times.append(time.monotonic())
        if len(self.server.times) == 1:
            status, body, extra = 503, {"message": "busy"}, {"Retry-After": "1"}
        elif self.path == "/api/runs":
            status, body, extra = 201, {"id": 1}, {}
        else:
            status, body, extra = 200, {"inserted": 1, "updated": 0, "unchanged": 0}, {}
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **extra}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_PATCH = do_POST


def test_the_sender_waits_as_long_as_retry_after_asks(tmp_path):
    server = BusyThenReady()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        client = RunsClient(url, spool_dir=tmp_path, backoff_base=0.01, backoff_max=0.02)
        with client.start_run() as run:
            run.log_metrics({"loss": 1.0}, step=0)
        client.close()
    finally:
        server.shutdown()
        server.server_close()
    assert run.run_id == 1
    first, second = server.times[:2]
    assert second - first >= 0.95  # without Retry-After the backoff would be 5-10 ms
    assert not any(path.read_text() for path in tmp_path.rglob("*.jsonl"))
