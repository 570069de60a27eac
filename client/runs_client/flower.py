"""Flower integration: log a federated run from the strategy, without copying its loop.

`track(strategy, run)` returns a copy of the strategy whose class is a subclass of the
strategy's own class. It overrides only the hooks Flower's loop already calls, lets the
original method do the work and logs what goes in and out:

- Message API (`flwr.serverapp.strategy`): `aggregate_train` / `aggregate_evaluate`
  see each client's reply and the aggregate; `start` wraps `evaluate_fn`, so every
  server-side evaluation (round 0 included) is logged.
- Legacy API (`flwr.server.strategy`): `aggregate_fit` / `aggregate_evaluate` and
  `evaluate` (the server-side evaluation, round 0 included).

What is logged: server-side evaluations as server evaluations (confusion counts mapped
to true_positives/true_negatives/false_positives/false_negatives), aggregated train and
evaluate metrics as run-level metrics with step = round, each client's metrics as
client-local metrics (client_identifier = the node id, round_number = step = round), and
every client seen is registered. Train metric names get the prefix `train_` and
evaluate metric names `eval_` unless they already carry one (`train_`; `eval_`, `val_`,
`test_`), so a `loss` reported by both phases stays two series.

`import_result(run, result)` logs a finished strategy's `Result` (Message API) or a
legacy `History` the same way.
"""

from __future__ import annotations

import inspect
import logging
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

from runs_client.client import Run

log = logging.getLogger("runs_client")

TRAIN_PREFIX = "train_"
EVALUATE_PREFIX = "eval_"
EVALUATE_PREFIXES = ("eval_", "val_", "test_")
# Prefixes a server-side metric name may carry before its field name.
SERVER_PREFIXES = ("server_", "centralized_", "central_", "global_", "eval_", "val_", "test_")
SERVER_FIELDS = {
    "loss": "loss",
    "accuracy": "accuracy",
    "acc": "accuracy",
    "precision": "precision",
    "recall": "recall",
    "f1": "f1_score",
    "f1_score": "f1_score",
    "auroc": "auroc",
    "auc": "auroc",
    "true_positives": "true_positives",
    "true_negatives": "true_negatives",
    "false_positives": "false_positives",
    "false_negatives": "false_negatives",
    "num_samples": "num_samples",
    "num_examples": "num_samples",
    "num-examples": "num_samples",
}
for _short, _field in (
    ("tp", "true_positives"),
    ("tn", "true_negatives"),
    ("fp", "false_positives"),
    ("fn", "false_negatives"),
):
    SERVER_FIELDS[_short] = SERVER_FIELDS[f"cm_{_short}"] = _field


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _numbers_only(value: Any) -> Any:
    """The value when it is a number or a list of numbers, else None."""
    if _is_number(value):
        return value
    if isinstance(value, list | tuple) and value and all(_is_number(item) for item in value):
        return list(value)
    return None


def evaluation_fields(metrics: Mapping[str, Any], loss: Any = None) -> dict[str, Any]:
    """Map a server-side MetricRecord (or legacy metrics dict) to server-evaluation fields."""
    fields: dict[str, Any] = {}
    additional: dict[str, Any] = {}
    for key, value in metrics.items():
        value = _numbers_only(value)
        if value is None:
            continue
        bare = key.lower()
        for prefix in SERVER_PREFIXES:
            if bare.startswith(prefix):
                bare = bare[len(prefix) :]
                break
        target = SERVER_FIELDS.get(bare)
        if target is not None and target not in fields and not isinstance(value, list):
            fields[target] = value
        else:
            additional[key] = value
    if loss is not None:
        fields["loss"] = loss
    if additional:
        fields["additional_metrics"] = additional
    return fields


def _prefixed(metrics: Mapping[str, Any], phase: str) -> dict[str, Any]:
    named = {}
    for key, value in metrics.items():
        if not _is_number(value):
            continue  # lists, text and bytes have no place in a metric series
        if phase == "train":
            name = key if key.startswith(TRAIN_PREFIX) else TRAIN_PREFIX + key
        else:
            name = key if key.startswith(EVALUATE_PREFIXES) else EVALUATE_PREFIX + key
        named[name] = value
    return named


class Tracker:
    """Turns what a strategy sees into calls on a Run; never lets logging stop Flower."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.clients: set[str] = set()

    def _guard(self, what: str, function, *args: Any) -> None:
        try:
            function(*args)
        except Exception as error:
            if self.run._client.strict:
                raise
            log.warning("runs_client.flower: could not log %s: %r", what, error)

    def server_evaluation(self, server_round: int, metrics: Any, loss: Any = None) -> None:
        def log_it() -> None:
            fields = evaluation_fields(dict(metrics or {}), loss)
            self.run.log_server_evaluation(round_number=server_round, **fields)

        self._guard(f"the server evaluation of round {server_round}", log_it)

    def aggregated(self, server_round: int, metrics: Any, phase: str) -> None:
        def log_it() -> None:
            named = _prefixed(dict(metrics or {}), phase)
            if named:
                self.run.log_metrics(named, step=server_round)

        self._guard(f"the aggregated {phase} metrics of round {server_round}", log_it)

    def client_metrics(
        self, server_round: int, per_client: Iterable[tuple[Any, Mapping[str, Any]]], phase: str
    ) -> None:
        def log_it() -> None:
            fresh = []
            for client, metrics in per_client:
                client_identifier = str(client)
                if client_identifier not in self.clients:
                    self.clients.add(client_identifier)
                    fresh.append(client_identifier)
                named = _prefixed(metrics, phase)
                if named:
                    self.run.log_metrics(
                        named,
                        step=server_round,
                        client_identifier=client_identifier,
                        round_number=server_round,
                    )
            if fresh:
                self.run.register_clients(fresh)

        self._guard(f"the clients' {phase} metrics of round {server_round}", log_it)


def _message_client_metrics(replies: list[Any]) -> list[tuple[Any, dict[str, Any]]]:
    """(node id, merged metrics) of each reply without an error."""
    found = []
    for message in replies:
        if message.has_error():
            continue
        merged: dict[str, Any] = {}
        for record in message.content.metric_records.values():
            merged.update(record)
        found.append((message.metadata.src_node_id, merged))
    return found


class _MessageTracking:
    """Overrides for a `flwr.serverapp.strategy.Strategy` subclass."""

    _runs_tracker: Tracker

    def start(self, *args: Any, **kwargs: Any) -> Any:
        bound = inspect.signature(super().start).bind(*args, **kwargs)  # type: ignore[misc]
        evaluate_fn = bound.arguments.get("evaluate_fn")
        if evaluate_fn is not None:
            tracker = self._runs_tracker

            def tracked_evaluate_fn(server_round: int, arrays: Any) -> Any:
                result = evaluate_fn(server_round, arrays)
                if result is not None:
                    tracker.server_evaluation(server_round, result)
                return result

            bound.arguments["evaluate_fn"] = tracked_evaluate_fn
        return super().start(*bound.args, **bound.kwargs)  # type: ignore[misc]

    def aggregate_train(self, server_round: int, replies: Iterable[Any]) -> Any:
        replies = list(replies)  # an iterable may be read once: keep it for both
        tracker = self._runs_tracker
        tracker.client_metrics(server_round, _message_client_metrics(replies), "train")
        arrays, metrics = super().aggregate_train(server_round, replies)  # type: ignore[misc]
        if metrics is not None:
            tracker.aggregated(server_round, metrics, "train")
        return arrays, metrics

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Any]) -> Any:
        replies = list(replies)
        tracker = self._runs_tracker
        tracker.client_metrics(server_round, _message_client_metrics(replies), "evaluate")
        metrics = super().aggregate_evaluate(server_round, replies)  # type: ignore[misc]
        if metrics is not None:
            tracker.aggregated(server_round, metrics, "evaluate")
        return metrics


class _LegacyTracking:
    """Overrides for a `flwr.server.strategy.Strategy` subclass."""

    _runs_tracker: Tracker

    def aggregate_fit(self, server_round: int, results: list, failures: list) -> Any:
        per_client = [
            (proxy.cid, {**res.metrics, "num_examples": res.num_examples}) for proxy, res in results
        ]
        self._runs_tracker.client_metrics(server_round, per_client, "train")
        parameters, metrics = super().aggregate_fit(server_round, results, failures)  # type: ignore[misc]
        self._runs_tracker.aggregated(server_round, metrics, "train")
        return parameters, metrics

    def aggregate_evaluate(self, server_round: int, results: list, failures: list) -> Any:
        per_client = [
            (proxy.cid, {**res.metrics, "loss": res.loss, "num_examples": res.num_examples})
            for proxy, res in results
        ]
        self._runs_tracker.client_metrics(server_round, per_client, "evaluate")
        loss, metrics = super().aggregate_evaluate(server_round, results, failures)  # type: ignore[misc]
        combined = dict(metrics or {})
        if loss is not None:
            combined["loss"] = loss
        self._runs_tracker.aggregated(server_round, combined, "evaluate")
        return loss, metrics

    def evaluate(self, server_round: int, parameters: Any) -> Any:
        result = super().evaluate(server_round, parameters)  # type: ignore[misc]
        if result is not None:
            loss, metrics = result
            self._runs_tracker.server_evaluation(server_round, metrics, loss)
        return result


_TRACKED_CLASSES: dict[type, type] = {}


def _api_of(strategy: Any) -> type:
    try:
        from flwr.serverapp.strategy import Strategy as MessageStrategy
    except ImportError:  # a Flower before the Message API
        MessageStrategy = None  # noqa: N806
    try:
        from flwr.server.strategy import Strategy as LegacyStrategy
    except ImportError:  # a Flower without the legacy API
        LegacyStrategy = None  # noqa: N806
    if MessageStrategy is not None and isinstance(strategy, MessageStrategy):
        return _MessageTracking
    if LegacyStrategy is not None and isinstance(strategy, LegacyStrategy):
        return _LegacyTracking
    raise TypeError(
        f"track() takes a Flower strategy (flwr.serverapp.strategy.Strategy or "
        f"flwr.server.strategy.Strategy), not {type(strategy).__name__}"
    )


def track(strategy: Any, run: Run) -> Any:
    """A strategy that does what `strategy` does and logs every round to `run`.

    The result is an instance of a subclass of the strategy's class holding the same
    attributes, so it goes wherever the strategy went (ServerApp, start_server, ...).
    """
    if run.training_mode != "federated":
        raise ValueError("track() needs a federated run: start_run(training_mode='federated')")
    base = type(strategy)
    tracked_class = _TRACKED_CLASSES.get(base)
    if tracked_class is None:
        mixin = _api_of(strategy)
        tracked_class = type(f"Tracked{base.__name__}", (mixin, base), {"__module__": __name__})
        _TRACKED_CLASSES[base] = tracked_class
    tracked = object.__new__(tracked_class)
    tracked.__dict__.update(vars(strategy))
    tracked._runs_tracker = Tracker(run)
    return tracked


def import_result(run: Run, result: Any) -> None:
    """Log a finished Flower run: a Message API `Result` or a legacy `History`."""
    if hasattr(result, "evaluate_metrics_serverapp"):
        _import_message_result(run, result)
    elif hasattr(result, "losses_centralized"):
        _import_history(run, result)
    else:
        raise TypeError(f"import_result() takes a Flower Result or History, not {result!r}")


def _import_message_result(run: Run, result: Any) -> None:
    tracker = Tracker(run)
    for server_round, metrics in sorted(result.evaluate_metrics_serverapp.items()):
        tracker.server_evaluation(int(server_round), metrics)
    for server_round, metrics in sorted(result.train_metrics_clientapp.items()):
        tracker.aggregated(int(server_round), metrics, "train")
    for server_round, metrics in sorted(result.evaluate_metrics_clientapp.items()):
        tracker.aggregated(int(server_round), metrics, "evaluate")


def _by_round(series: Mapping[str, list[tuple[int, Any]]]) -> dict[int, dict[str, Any]]:
    rounds: dict[int, dict[str, Any]] = {}
    for name, points in series.items():
        for server_round, value in points:
            rounds.setdefault(int(server_round), {})[name] = value
    return rounds


def _import_history(run: Run, history: Any) -> None:
    tracker = Tracker(run)
    centralized = _by_round(history.metrics_centralized)
    losses = {int(server_round): loss for server_round, loss in history.losses_centralized}
    for server_round in sorted(set(centralized) | set(losses)):
        tracker.server_evaluation(
            server_round, centralized.get(server_round, {}), losses.get(server_round)
        )
    for server_round, metrics in sorted(_by_round(history.metrics_distributed_fit).items()):
        tracker.aggregated(server_round, metrics, "train")
    distributed = _by_round(history.metrics_distributed)
    for server_round, loss in history.losses_distributed:
        distributed.setdefault(int(server_round), {})["loss"] = loss
    for server_round, metrics in sorted(distributed.items()):
        tracker.aggregated(server_round, metrics, "evaluate")
