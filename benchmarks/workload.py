"""Deterministic, seeded benchmark workload, expressed as write-API request bodies.

`generate_workload(n)` yields n runs: half centralized (one point of each of the 14
trainer metrics per epoch), half federated (server evaluations of rounds 0..R with
confusion-matrix counts, 2-10 clients, each client's local train_loss/train_acc per
round), in a realistic status mix. `big_run()` is the extra centralized run of 1,000
epochs that the read cases fetch. Every run draws from its own generator seeded by
(seed, index), so a run's bodies do not depend on how many runs come before it.

The shapes follow `runs_service.demo_data`, with cheaper per-epoch arithmetic: the
loader generates millions of points and the generator must not dominate.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# The trainer metric names are the demo data's: one list of what trainers log.
from runs_service.demo_data import TRAINER_METRIC_NAMES

CENTRALIZED = "centralized"
FEDERATED = "federated"
COMPLETED = "completed"
FAILED = "failed"
IN_PROGRESS = "in_progress"


DEFAULT_SEED = 20_251_104
DEFAULT_EPOCHS = 20
DEFAULT_ROUNDS = 20
BIG_RUN_EPOCHS = 1_000
MIN_CLIENTS, MAX_CLIENTS = 2, 10
# Status mix: most runs finish, some fail, a few are still running.
FAILED_SHARE = 0.15
IN_PROGRESS_SHARE = 0.05
# Start times lie in the year before a fixed anchor, so the bodies never depend on
# the clock (read cases do not filter by date).
ANCHOR = datetime(2025, 11, 1, tzinfo=UTC)
HISTORY_SECONDS = 365 * 86_400
# The pneumonia test split serves as validation set: 624 images, 390 pneumonia.
VALIDATION_POSITIVES = 390
VALIDATION_NEGATIVES = 234
VALIDATION_SIZE = VALIDATION_POSITIVES + VALIDATION_NEGATIVES
MODELS = ("ResNet50", "ResNet18", "DenseNet121", "EfficientNet-B0", "MobileNetV3")
LEARNING_RATES = (2e-3, 1e-3, 5e-4, 3e-4, 1e-4)

Body = dict[str, Any]


@dataclass(frozen=True)
class WorkloadRun:
    """One run as the request bodies that create it through the write API."""

    run: Body
    metrics: list[Body]
    evaluations: list[Body]
    clients: list[Body]


def generate_workload(
    count: int,
    seed: int = DEFAULT_SEED,
    epochs: int = DEFAULT_EPOCHS,
    rounds: int = DEFAULT_ROUNDS,
) -> Iterator[WorkloadRun]:
    """Yield `count` runs alternating centralized and federated, identical for the same seed."""
    if count < 0 or epochs < 2 or rounds < 2:
        raise ValueError("count must be >= 0, epochs and rounds >= 2")
    for index in range(count):
        rng = random.Random(seed * 1_000_003 + index)
        status = _status(rng)
        if index % 2 == 0:
            yield _centralized(rng, index, status, epochs)
        else:
            yield _federated(rng, index, status, rounds)


def big_run(seed: int = DEFAULT_SEED, epochs: int = BIG_RUN_EPOCHS) -> WorkloadRun:
    """Return the extra completed centralized run with `epochs` epochs."""
    rng = random.Random(seed * 1_000_003 - 1)
    return _centralized(rng, -1, COMPLETED, epochs, description="benchmark: 1,000-epoch run")


def _status(rng: random.Random) -> str:
    draw = rng.random()
    if draw < IN_PROGRESS_SHARE:
        return IN_PROGRESS
    if draw < IN_PROGRESS_SHARE + FAILED_SHARE:
        return FAILED
    return COMPLETED


def _units_done(rng: random.Random, status: str, configured: int) -> int:
    """Completed runs finish every epoch or round; others stop part-way."""
    return configured if status == COMPLETED else rng.randint(1, configured - 1)


def _run_body(
    rng: random.Random,
    mode: str,
    status: str,
    done: int,
    unit_seconds: int,
    description: str,
    config: Body,
) -> Body:
    """Return the POST /api/runs body; in-progress runs have no end time."""
    start = ANCHOR - timedelta(seconds=rng.randrange(HISTORY_SECONDS))
    end = None
    if status != IN_PROGRESS:
        end = (start + timedelta(seconds=60 + done * unit_seconds)).isoformat()
    return {
        "training_mode": mode,
        "status": status,
        "start_time": start.isoformat(),
        "end_time": end,
        "run_description": description,
        "source_path": f"results/{mode}/{start:%Y%m%d_%H%M%S}",
        "config": config,
    }


def _counts(rng: random.Random, accuracy: float, recall_bias: float) -> tuple[int, int, int, int]:
    """Return (tp, tn, fp, fn) on the validation set for a target accuracy."""
    sensitivity = _clamp(accuracy + recall_bias + rng.uniform(-0.02, 0.02))
    specificity = _clamp(
        (accuracy * VALIDATION_SIZE - sensitivity * VALIDATION_POSITIVES) / VALIDATION_NEGATIVES
    )
    tp = round(sensitivity * VALIDATION_POSITIVES)
    tn = round(specificity * VALIDATION_NEGATIVES)
    return tp, tn, VALIDATION_NEGATIVES - tn, VALIDATION_POSITIVES - tp


def _scores(tp: int, tn: int, fp: int, fn: int) -> tuple[float, float, float, float]:
    """Return accuracy, precision, recall and F1 of a confusion matrix (0.0 on empty division)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    accuracy = (tp + tn) / (tp + tn + fp + fn)
    return round(accuracy, 4), round(precision, 4), round(recall, 4), round(f1, 4)


def _centralized(
    rng: random.Random, index: int, status: str, epochs: int, description: str | None = None
) -> WorkloadRun:
    """One point of each trainer metric per finished epoch."""
    model = rng.choice(MODELS)
    learning_rate = rng.choice(LEARNING_RATES)
    done = _units_done(rng, status, epochs)
    config = {"model": model, "learning_rate": learning_rate, "batch_size": 32, "epochs": epochs}
    run = _run_body(
        rng,
        CENTRALIZED,
        status,
        done,
        rng.randint(60, 420),
        description or f"bench {index}: {model} lr={learning_rate:g}",
        config,
    )
    peak = rng.uniform(0.82, 0.94)
    tau = epochs * rng.uniform(0.15, 0.3)
    recall_bias = rng.uniform(0.0, 0.06)
    auroc_gap = rng.uniform(0.02, 0.05)
    metrics: list[Body] = []
    for step in range(done):
        decay = math.exp(-(step + 1) / tau)
        tp, tn, fp, fn = _counts(rng, 0.5 + (peak - 0.5) * (1 - decay), recall_bias)
        accuracy, precision, recall, f1 = _scores(tp, tn, fp, fn)
        train_acc = round(_clamp(0.55 + (peak - 0.5) * (1 - decay) + rng.uniform(0, 0.04)), 4)
        values = (
            round(0.05 + 0.63 * decay + rng.uniform(0, 0.02), 5),
            train_acc,
            round(_clamp(train_acc + rng.uniform(0, 0.02)), 4),
            round(0.2 + 0.5 * decay + rng.uniform(0, 0.03), 5),
            accuracy,
            precision,
            recall,
            f1,
            round(_clamp(accuracy + auroc_gap), 4),
            tp,
            tn,
            fp,
            fn,
            float(f"{learning_rate * 0.95**step:.6g}"),
        )
        metrics.extend(
            {"metric_name": name, "metric_value": value, "step": step}
            for name, value in zip(TRAINER_METRIC_NAMES, values, strict=True)
        )
    return WorkloadRun(run=run, metrics=metrics, evaluations=[], clients=[])


def _federated(rng: random.Random, index: int, status: str, rounds: int) -> WorkloadRun:
    """Server evaluations of rounds 0..done, clients, and client-local training metrics."""
    model = rng.choice(MODELS)
    learning_rate = rng.choice(LEARNING_RATES)
    num_clients = rng.randint(MIN_CLIENTS, MAX_CLIENTS)
    done = _units_done(rng, status, rounds)
    config = {
        "model": model,
        "strategy": "FedAvg",
        "learning_rate": learning_rate,
        "num_rounds": rounds,
        "num_clients": num_clients,
    }
    unit_seconds = rng.randint(60, 300)
    run = _run_body(
        rng,
        FEDERATED,
        status,
        done,
        unit_seconds,
        f"bench {index}: {model} FedAvg {num_clients} clients",
        config,
    )
    clients = [
        {"client_identifier": f"client_{number}", "client_config": {"partition_id": number}}
        for number in range(num_clients)
    ]
    start = datetime.fromisoformat(run["start_time"])
    peak = rng.uniform(0.78, 0.92)
    tau = rounds * rng.uniform(0.2, 0.4)
    recall_bias = rng.uniform(0.0, 0.06)
    evaluations: list[Body] = []
    for round_number in range(done + 1):
        decay = math.exp(-round_number / tau)
        tp, tn, fp, fn = _counts(rng, 0.5 + (peak - 0.5) * (1 - decay), recall_bias)
        accuracy, precision, recall, f1 = _scores(tp, tn, fp, fn)
        evaluations.append(
            {
                "round_number": round_number,
                "loss": round(0.25 + 0.45 * decay + rng.uniform(0, 0.03), 5),
                "accuracy": accuracy,
                "precision": precision,
                "recall": recall,
                "f1_score": f1,
                "auroc": round(_clamp(accuracy + 0.03), 4),
                "true_positives": tp,
                "true_negatives": tn,
                "false_positives": fp,
                "false_negatives": fn,
                "num_samples": VALIDATION_SIZE,
                "evaluation_time": (
                    start + timedelta(seconds=60 + round_number * unit_seconds)
                ).isoformat(),
            }
        )
    # Client-local points: step 0 of each client's training in each round. Each client
    # keeps an offset from the common curve; the noise is cheap because there are many.
    offsets = [(client["client_identifier"], rng.uniform(0.0, 0.05)) for client in clients]
    metrics: list[Body] = []
    for round_number in range(1, done + 1):
        decay = math.exp(-round_number / tau)
        base_loss = 0.1 + 0.58 * decay
        base_acc = 0.55 + 0.4 * (1 - decay)  # stays within [0.5, 0.97] with offset and noise
        for identifier, offset in offsets:
            noise = rng.random() * 0.02
            metrics.append(
                {
                    "metric_name": "train_loss",
                    "metric_value": round(base_loss + offset + noise, 5),
                    "step": 0,
                    "client_identifier": identifier,
                    "round_number": round_number,
                }
            )
            metrics.append(
                {
                    "metric_name": "train_acc",
                    "metric_value": round(base_acc - offset + noise, 4),
                    "step": 0,
                    "client_identifier": identifier,
                    "round_number": round_number,
                }
            )
    return WorkloadRun(run=run, metrics=metrics, evaluations=evaluations, clients=clients)


def _clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return max(low, min(high, value))
