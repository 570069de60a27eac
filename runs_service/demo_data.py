"""Deterministic generator of realistic demo runs, expressed as write-API request bodies."""

import math
import random
import string
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from runs_service.catalogue import (
    CONFUSION_METRIC_NAMES,
    LEARNING_RATE,
    RESULTS_FILE_FIELDS,
    SERVER_COUNT_FIELDS,
    TRAINING_METRIC_NAMES,
    VALIDATION_METRICS,
)

CENTRALIZED = "centralized"
FEDERATED = "federated"
COMPLETED = "completed"
FAILED = "failed"
IN_PROGRESS = "in_progress"

# The pneumonia test split (624 images, 390 pneumonia) serves as validation set everywhere.
VALIDATION_SIZE = 624
VALIDATION_POSITIVES = 390
VALIDATION_NEGATIVES = VALIDATION_SIZE - VALIDATION_POSITIVES
TRAINING_SIZE = 5216
HISTORY_DAYS = 90
# Demo runs are placed before this moment, not before the current time, so that
# `flask demo-data` loads the same runs, ids, values and timestamps on every machine and
# every day (the README's examples are produced from them).
DEMO_NOW = datetime(2026, 11, 2, 9, 0, 0, tzinfo=UTC)
MIN_CLIENTS, MAX_CLIENTS = 2, 10

# What the demo trainer logs every epoch, in this order.
TRAINER_METRIC_NAMES = (
    *TRAINING_METRIC_NAMES,
    *(metric.history_name for metric in VALIDATION_METRICS),
    *CONFUSION_METRIC_NAMES,
    LEARNING_RATE,
)
CLIENT_METRIC_NAMES = ("train_loss", "train_acc")


@dataclass(frozen=True)
class _Model:
    """Speed and attainable validation accuracy of one architecture."""

    minutes_per_epoch: tuple[float, float]
    peak_accuracy: tuple[float, float]


_MODELS = {
    "ResNet50": _Model((3.0, 6.0), (0.87, 0.94)),
    "ResNet18": _Model((1.2, 2.5), (0.85, 0.92)),
    "DenseNet121": _Model((3.5, 7.0), (0.87, 0.94)),
    "EfficientNet-B0": _Model((1.5, 3.0), (0.86, 0.93)),
    "MobileNetV3": _Model((0.8, 1.6), (0.83, 0.90)),
}
_LEARNING_RATES = (2e-3, 1e-3, 5e-4, 3e-4, 1e-4)
_CENTRALIZED_VARIANTS = (
    "baseline",
    "augmented",
    "class-weighted",
    "fine-tuned",
    "frozen backbone",
    "label smoothing",
)
_OPTIMIZERS = ("adam", "adamw", "sgd")
# model -> the experiment its runs belong to (other models' runs belong to none).
_EXPERIMENTS = {
    "ResNet50": "resnet-pneumonia",
    "ResNet18": "resnet-pneumonia",
    "DenseNet121": "densenet-pneumonia",
}
_SCHEDULERS = ("cosine", "step", "exponential")


@dataclass(frozen=True)
class DemoRun:
    """One demo run as the request bodies that create it through the write API.

    A run with `evaluations_in_results_file` had its server evaluations written only to
    the federated server's results file (it predates live logging): the loader writes
    that file instead of logging them, and a backfill imports them.
    """

    run: dict
    metrics: list[dict]
    evaluations: list[dict]
    clients: list[dict]
    evaluations_in_results_file: bool = False


@dataclass(frozen=True)
class _Plan:
    """What is decided about a run before its histories are drawn."""

    mode: str
    status: str
    rng: random.Random
    model: str
    learning_rate: float
    configured: int  # epochs or training rounds in the config
    done: int  # epochs or training rounds that actually finished
    unit_seconds: int
    setup_seconds: int
    start: datetime
    end: datetime | None

    def unit_end(self, unit: int) -> datetime:
        """Return when epoch or round `unit` finished (0 = right after setup)."""
        return self.start + timedelta(seconds=self.setup_seconds + unit * self.unit_seconds)


def generate_demo_runs(
    count: int = 60,
    seed: int = 42,
    now: datetime | None = None,
    epochs: tuple[int, int] = (10, 30),
    rounds: tuple[int, int] = (5, 20),
) -> Iterator[DemoRun]:
    """Yield `count` demo runs in start-time order, identical for the same seed and `now`.

    `now` defaults to DEMO_NOW. The oldest completed federated run keeps its server
    evaluations in its results file only (see DemoRun).
    """
    _check_range("epochs", epochs)
    _check_range("rounds", rounds)
    if count < 0:
        raise ValueError("count must be >= 0")
    now = DEMO_NOW if now is None else _as_utc(now)
    now = now.replace(microsecond=0)

    rng = random.Random(seed)
    modes = [CENTRALIZED] * (count // 2) + [FEDERATED] * (count - count // 2)
    rng.shuffle(modes)
    statuses = _statuses(count)
    rng.shuffle(statuses)
    plans = [
        _plan(mode, status, random.Random(rng.getrandbits(64)), now, epochs, rounds)
        for mode, status in zip(modes, statuses, strict=True)
    ]
    # Stable sort: database ids then grow with start time, as they would in real life.
    plans.sort(key=lambda plan: plan.start)
    file_only = next(
        (plan for plan in plans if plan.mode == FEDERATED and plan.status == COMPLETED), None
    )
    for plan in plans:
        if plan.mode == CENTRALIZED:
            yield _centralized(plan)
        else:
            demo_run = _federated(plan)
            if plan is file_only:
                demo_run = replace(demo_run, evaluations_in_results_file=True)
            yield demo_run


def results_document(evaluations: list[dict]) -> dict:
    """The results file a Flower server writes for these server evaluations.

    Each round's metrics are the repr of a Python dict, as the server app writes them,
    with the confusion-matrix counts as floats.
    """
    rounds = {}
    for evaluation in evaluations:
        metrics = {
            key: float(evaluation[field]) if field in SERVER_COUNT_FIELDS else evaluation[field]
            for key, field in RESULTS_FILE_FIELDS.items()
        }
        rounds[str(evaluation["round_number"])] = repr(metrics)
    return {"evaluate_metrics_serverapp": rounds}


def _check_range(name: str, bounds: tuple[int, int]) -> None:
    """Reject a (low, high) range that is empty or starts below 1."""
    low, high = bounds
    if not 1 <= low <= high:
        raise ValueError(f"{name} must be (low, high) with 1 <= low <= high, got {bounds}")


def _as_utc(moment: datetime) -> datetime:
    """Read a naive datetime as UTC and convert an aware one to UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _statuses(count: int) -> list[str]:
    """Return a mostly-completed mix with some failed and a few in-progress runs."""
    if count < 3:
        return [COMPLETED] * count
    in_progress = max(1, round(count * 0.05))
    failed = max(1, round(count * 0.15))
    return (
        [IN_PROGRESS] * in_progress
        + [FAILED] * failed
        + [COMPLETED] * (count - in_progress - failed)
    )


def _plan(
    mode: str,
    status: str,
    rng: random.Random,
    now: datetime,
    epochs: tuple[int, int],
    rounds: tuple[int, int],
) -> _Plan:
    """Draw the model, length and timing of one run."""
    model = rng.choice(list(_MODELS))
    learning_rate = rng.choice(_LEARNING_RATES)
    configured = rng.randint(*(epochs if mode == CENTRALIZED else rounds))
    if status == COMPLETED:
        done = configured
    else:
        done = rng.randint(1, configured - 1) if configured > 1 else 0

    minutes = rng.uniform(*_MODELS[model].minutes_per_epoch)
    if mode == FEDERATED:
        # Clients train on a slice of the data in parallel, then weights travel both ways.
        minutes = minutes * rng.uniform(0.4, 1.0) + rng.uniform(0.2, 0.8)
    unit_seconds = max(1, round(minutes * 60))
    setup_seconds = rng.randint(20, 180)
    if status == COMPLETED:
        tail_seconds = rng.randint(15, 120)
    else:
        tail_seconds = round(rng.uniform(0.1, 0.9) * unit_seconds)
    duration = setup_seconds + done * unit_seconds + tail_seconds

    if status == IN_PROGRESS:
        start = now - timedelta(seconds=duration)
        end = None
    else:
        ago = rng.randint(duration + 60, max(duration + 60, HISTORY_DAYS * 86400))
        start = now - timedelta(seconds=ago)
        end = start + timedelta(seconds=duration)
    return _Plan(
        mode=mode,
        status=status,
        rng=rng,
        model=model,
        learning_rate=learning_rate,
        configured=configured,
        done=done,
        unit_seconds=unit_seconds,
        setup_seconds=setup_seconds,
        start=start,
        end=end,
    )


def _centralized(plan: _Plan) -> DemoRun:
    """Build a centralized run with one point of every trainer metric per finished epoch."""
    rng = plan.rng
    variant = rng.choice(_CENTRALIZED_VARIANTS)
    scheduler = rng.choice(_SCHEDULERS)
    config = {
        "model": plan.model,
        "learning_rate": plan.learning_rate,
        "batch_size": rng.choice((16, 32, 64)),
        "epochs": plan.configured,
        "optimizer": rng.choice(_OPTIMIZERS),
        "weight_decay": rng.choice((0.0, 1e-5, 1e-4)),
        "scheduler": scheduler,
        "image_size": 224,
        "augmentation": variant == "augmented" or rng.random() < 0.5,
        "seed": rng.randint(0, 9999),
    }
    description = f"{plan.model} {variant} lr={_format_lr(plan.learning_rate)}"

    peak = rng.uniform(*_MODELS[plan.model].peak_accuracy)
    train_peak = min(0.995, peak + rng.uniform(0.02, 0.06))
    tau = plan.configured * rng.uniform(0.15, 0.3)
    recall_bias = rng.uniform(0.0, 0.06)
    auroc_gap = rng.uniform(0.02, 0.05)
    train_floor = rng.uniform(0.03, 0.15)
    val_floor = rng.uniform(0.18, 0.32)
    overfit = rng.uniform(0.0, 0.2)

    metrics = []
    for step in range(plan.done):
        decay = math.exp(-(step + 1) / tau)
        train_decay = math.exp(-(step + 1) / (0.8 * tau))
        accuracy = 0.5 + (peak - 0.5) * (1 - decay) + rng.gauss(0, 0.01)
        tp, tn, fp, fn = _confusion(accuracy, recall_bias, rng)
        scores = _scores(tp, tn, fp, fn)
        train_acc = _score(0.55 + (train_peak - 0.55) * (1 - train_decay) + rng.gauss(0, 0.005))
        late = ((step + 1) / plan.configured) ** 2
        values = {
            "train_loss": _loss(
                train_floor + (0.68 - train_floor) * train_decay + rng.gauss(0, 0.008)
            ),
            "train_acc": train_acc,
            "train_f1": _score(train_acc + rng.uniform(0.0, 0.02)),
            "val_loss": _loss(
                val_floor + (0.7 - val_floor) * decay + overfit * late + rng.gauss(0, 0.012)
            ),
            "val_acc": scores["accuracy"],
            "val_precision": scores["precision"],
            "val_recall": scores["recall"],
            "val_f1": scores["f1"],
            "val_auroc": _score(min(0.995, scores["accuracy"] + auroc_gap + rng.gauss(0, 0.005))),
            "val_cm_tp": tp,
            "val_cm_tn": tn,
            "val_cm_fp": fp,
            "val_cm_fn": fn,
            "learning_rate": _learning_rate(plan.learning_rate, scheduler, step, plan.configured),
        }
        metrics.extend(
            {"metric_name": name, "metric_value": value, "step": step}
            for name, value in values.items()
        )
    return DemoRun(
        run=_run_body(plan, description, config, [variant.replace(" ", "-")]),
        metrics=metrics,
        evaluations=[],
        clients=[],
    )


def _federated(plan: _Plan) -> DemoRun:
    """Build a federated run with clients, server evaluations of rounds 0..done and client loss."""
    rng = plan.rng
    strategy = rng.choice(("FedAvg", "FedProx"))
    num_clients = rng.randint(MIN_CLIENTS, MAX_CLIENTS)
    non_iid = rng.random() < 0.5
    local_epochs = rng.choice((1, 2, 3))
    batch_size = rng.choice((16, 32, 64))
    config = {
        "model": plan.model,
        "strategy": strategy,
        "learning_rate": plan.learning_rate,
        "batch_size": batch_size,
        "num_rounds": plan.configured,
        "num_clients": num_clients,
        "local_epochs": local_epochs,
        "fraction_fit": 1.0,
        "fraction_evaluate": 1.0,
        "optimizer": rng.choice(_OPTIMIZERS),
        "partition": "dirichlet" if non_iid else "iid",
    }
    if non_iid:
        config["dirichlet_alpha"] = rng.choice((0.1, 0.5, 1.0))
    if strategy == "FedProx":
        config["proximal_mu"] = rng.choice((0.001, 0.01, 0.1))
    label = "non-IID" if non_iid else "IID"
    description = (
        f"{plan.model} {strategy} {num_clients} clients {label} lr={_format_lr(plan.learning_rate)}"
    )
    clients = _clients(rng, num_clients, config, local_epochs, batch_size)

    # Heterogeneous client data costs accuracy and makes rounds noisier.
    peak = rng.uniform(*_MODELS[plan.model].peak_accuracy) - rng.uniform(0.01, 0.03)
    noise = 0.01
    if non_iid:
        peak -= rng.uniform(0.02, 0.05)
        noise = 0.02
    tau = plan.configured * rng.uniform(0.2, 0.4)
    recall_bias = rng.uniform(0.0, 0.06)
    auroc_gap = rng.uniform(0.02, 0.05)
    floor = rng.uniform(0.22, 0.38)

    # Round 0 evaluates the untrained global model, so it sits near chance.
    evaluations = [
        _evaluation(
            plan,
            0,
            loss=0.69 + abs(rng.gauss(0, 0.02)),
            counts=_confusion(0.5 + rng.gauss(0, 0.02), rng.uniform(-0.2, 0.2), rng),
            auroc=0.5 + rng.gauss(0, 0.03),
        )
    ]
    for round_number in range(1, plan.done + 1):
        decay = math.exp(-round_number / tau)
        counts = _confusion(
            0.5 + (peak - 0.5) * (1 - decay) + rng.gauss(0, noise), recall_bias, rng
        )
        accuracy = (counts[0] + counts[1]) / VALIDATION_SIZE
        evaluations.append(
            _evaluation(
                plan,
                round_number,
                loss=floor + (0.69 - floor) * decay + rng.gauss(0, noise),
                counts=counts,
                auroc=min(0.995, accuracy + auroc_gap + rng.gauss(0, 0.005)),
            )
        )
    metrics = _client_metrics(rng, plan, clients, tau)
    return DemoRun(
        run=_run_body(
            plan, description, config, [strategy.lower(), "non-iid" if non_iid else "iid"]
        ),
        metrics=metrics,
        evaluations=evaluations,
        clients=clients,
    )


def _clients(
    rng: random.Random, num_clients: int, config: dict, local_epochs: int, batch_size: int
) -> list[dict]:
    """Split the training set over the clients, evenly for IID and Dirichlet-skewed otherwise."""
    alpha = config.get("dirichlet_alpha")
    if alpha is None:
        weights = [rng.uniform(0.9, 1.1) for _ in range(num_clients)]
    else:
        weights = [rng.gammavariate(alpha, 1.0) + 1e-3 for _ in range(num_clients)]
    minimum = 50
    spare = TRAINING_SIZE - minimum * num_clients
    sizes = [minimum + math.floor(spare * weight / sum(weights)) for weight in weights]
    sizes[-1] += TRAINING_SIZE - sum(sizes)
    return [
        {
            "client_identifier": f"client_{index}",
            "client_config": {
                "partition_id": index,
                "partition": config["partition"],
                "num_examples": size,
                "local_epochs": local_epochs,
                "batch_size": batch_size,
            },
        }
        for index, size in enumerate(sizes)
    ]


def _client_metrics(rng: random.Random, plan: _Plan, clients: list[dict], tau: float) -> list[dict]:
    """Return each client's local train_loss and train_acc for every finished training round."""
    profiles = [
        (rng.uniform(0.05, 0.2), rng.uniform(0.88, 0.98), tau * rng.uniform(0.7, 1.1))
        for _ in clients
    ]
    metrics = []
    for round_number in range(1, plan.done + 1):
        for client, (floor, peak, client_tau) in zip(clients, profiles, strict=True):
            decay = math.exp(-round_number / client_tau)
            values = {
                "train_loss": _loss(floor + (0.68 - floor) * decay + rng.gauss(0, 0.015)),
                "train_acc": _score(0.55 + (peak - 0.55) * (1 - decay) + rng.gauss(0, 0.01)),
            }
            metrics.extend(
                {
                    "metric_name": name,
                    "metric_value": value,
                    "step": 0,
                    "client_identifier": client["client_identifier"],
                    "round_number": round_number,
                }
                for name, value in values.items()
            )
    return metrics


def _evaluation(
    plan: _Plan, round_number: int, loss: float, counts: tuple[int, int, int, int], auroc: float
) -> dict:
    """Return one server-evaluation item whose scores follow from its confusion matrix."""
    tp, tn, fp, fn = counts
    scores = _scores(tp, tn, fp, fn)
    return {
        "round_number": round_number,
        "loss": _loss(loss),
        "accuracy": scores["accuracy"],
        "precision": scores["precision"],
        "recall": scores["recall"],
        "f1_score": scores["f1"],
        "auroc": _score(auroc),
        "true_positives": tp,
        "true_negatives": tn,
        "false_positives": fp,
        "false_negatives": fn,
        "num_samples": tp + tn + fp + fn,
        "evaluation_time": plan.unit_end(round_number).isoformat(),
    }


def _run_body(plan: _Plan, description: str, config: dict, tags: list[str]) -> dict:
    """Return the POST /api/runs body of a planned run.

    Runs of the ResNet and DenseNet families belong to an experiment of their family;
    experiment and tags draw nothing from the random generator, so adding them left
    every other value of the demo data as it was.
    """
    rng = plan.rng
    source_path = None
    if rng.random() < 0.85:
        slug = plan.model.lower().replace("-", "")
        source_path = f"results/{plan.mode}/{plan.start:%Y%m%d_%H%M%S}_{slug}"
    external_id = None
    if rng.random() < 0.4:
        external_id = "wandb-" + "".join(rng.choices(string.ascii_lowercase + string.digits, k=8))
    return {
        "training_mode": plan.mode,
        "status": plan.status,
        "start_time": plan.start.isoformat(),
        "end_time": plan.end.isoformat() if plan.end else None,
        "run_description": description,
        "source_path": source_path,
        "external_id": external_id,
        "config": config,
        "experiment": _EXPERIMENTS.get(plan.model),
        "tags": tags,
    }


def _confusion(
    accuracy: float, recall_bias: float, rng: random.Random
) -> tuple[int, int, int, int]:
    """Return (tp, tn, fp, fn) on the validation set for a target accuracy and recall lean."""
    accuracy = _clamp(accuracy, 0.0, 1.0)
    sensitivity = _clamp(accuracy + recall_bias + rng.gauss(0, 0.01), 0.0, 1.0)
    specificity = _clamp(
        (accuracy * VALIDATION_SIZE - sensitivity * VALIDATION_POSITIVES) / VALIDATION_NEGATIVES,
        0.0,
        1.0,
    )
    tp = round(sensitivity * VALIDATION_POSITIVES)
    tn = round(specificity * VALIDATION_NEGATIVES)
    return tp, tn, VALIDATION_NEGATIVES - tn, VALIDATION_POSITIVES - tp


def _scores(tp: int, tn: int, fp: int, fn: int) -> dict[str, float]:
    """Return accuracy, precision, recall and F1 of a confusion matrix (0.0 on empty division)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": _score((tp + tn) / (tp + tn + fp + fn)),
        "precision": _score(precision),
        "recall": _score(recall),
        "f1": _score(f1),
    }


def _learning_rate(initial: float, scheduler: str, step: int, epochs: int) -> float:
    """Return the learning rate of epoch `step` under a decaying schedule."""
    if scheduler == "cosine":
        minimum = initial * 0.01
        value = minimum + (initial - minimum) * 0.5 * (1 + math.cos(math.pi * step / epochs))
    elif scheduler == "step":
        value = initial * 0.1 ** (step // max(1, math.ceil(epochs / 3)))
    else:
        value = initial * 0.9**step
    # Learning rates are tiny, so keep significant digits rather than decimal places.
    return float(f"{value:.6g}")


def _format_lr(learning_rate: float) -> str:
    """Format a learning rate the way people write it in run names, e.g. 1e-3."""
    mantissa, exponent = f"{learning_rate:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _clamp(value: float, low: float, high: float) -> float:
    """Limit a value to [low, high]."""
    return max(low, min(high, value))


def _score(value: float) -> float:
    """Clamp a score to [0, 1] and round it to 4 places."""
    return round(_clamp(value, 0.0, 1.0), 4)


def _loss(value: float) -> float:
    """Keep a loss positive and round it to 5 places."""
    return round(max(0.005, value), 5)
