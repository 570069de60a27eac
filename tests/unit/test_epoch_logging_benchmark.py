"""The per-epoch logging benchmark sends valid requests and summarises what it timed."""

from __future__ import annotations

import json
import random

from benchmarks.epoch_logging import epoch_body, summarise
from runs_service.schemas.ingest import MetricBatchSchema


def test_each_epoch_is_one_valid_request_of_the_nine_trainer_metrics():
    rng = random.Random(1)
    for epoch in (0, 500, 999):
        body = json.loads(epoch_body(rng, epoch, 1_000))
        points = MetricBatchSchema().load(body)["metrics"]
        assert len(points) == 9
        assert {point["step"] for point in points} == {epoch}


def test_the_summary_compares_the_first_and_last_requests():
    latencies = [1.0] * 100 + [5.0] * 800 + [2.0] * 100
    result = summarise("sqlite", latencies)
    assert (result.window, result.first_p50_ms, result.last_p50_ms) == (100, 1.0, 2.0)
    assert result.growth == 2.0
    assert result.worst_p50_ms == 5.0
    assert len(result.slice_p50_ms) == 10
