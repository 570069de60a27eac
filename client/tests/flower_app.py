"""A real Flower simulation tracked into runs_service (run as a script by test_flower.py).

A logistic-regression "pneumonia classifier" in NumPy on generated data: each client
trains one epoch of gradient descent on its own partition; the server evaluates the
global model on a held-out set (confusion counts included) before the first round and
after every round. `python flower_app.py URL TOKEN SPOOL_DIR message|legacy ROUNDS CLIENTS`
prints the run's id and external id as JSON.
"""

from __future__ import annotations

import json
import sys

import numpy as np

FEATURES = 8
SAMPLES_PER_CLIENT = 200
SEED = 7
LEARNING_RATE = 0.5


def make_data(partition: int, samples: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED + partition)
    truth = np.linspace(-1.0, 1.0, FEATURES)
    x = rng.normal(size=(samples, FEATURES))
    y = (x @ truth + rng.normal(scale=0.5, size=samples) > 0).astype(np.float64)
    return x, y


def predict(weights: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(x @ weights[0] + weights[1])))


def train_epoch(weights: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    probabilities = predict(weights, x)
    gradient = probabilities - y
    return [
        weights[0] - LEARNING_RATE * x.T @ gradient / len(y),
        weights[1] - LEARNING_RATE * np.array([gradient.mean()]),
    ]


def evaluate(weights: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    probabilities = np.clip(predict(weights, x), 1e-7, 1 - 1e-7)
    loss = float(-np.mean(y * np.log(probabilities) + (1 - y) * np.log(1 - probabilities)))
    predicted = probabilities >= 0.5
    tp = int(np.sum(predicted & (y == 1)))
    tn = int(np.sum(~predicted & (y == 0)))
    fp = int(np.sum(predicted & (y == 0)))
    fn = int(np.sum(~predicted & (y == 1)))
    return {
        "loss": loss,
        "accuracy": (tp + tn) / len(y),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "cm_tp": tp,
        "cm_tn": tn,
        "cm_fp": fp,
        "cm_fn": fn,
    }


def initial_weights() -> list[np.ndarray]:
    return [np.zeros(FEATURES), np.zeros(1)]


HELD_OUT = make_data(1000, 300)


def message_api_apps(run, rounds: int, clients: int):
    """ServerApp and ClientApp of the Message API (flwr.serverapp.strategy)."""
    from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg

    from runs_client.flower import track

    client_app = ClientApp()

    @client_app.train()
    def train(message: Message, context: Context) -> Message:
        x, y = make_data(int(context.node_config["partition-id"]), SAMPLES_PER_CLIENT)
        weights = message.content["arrays"].to_numpy_ndarrays()
        weights = train_epoch(weights, x, y)
        scores = evaluate(weights, x, y)
        metrics = MetricRecord(
            {"train_loss": scores["loss"], "train_acc": scores["accuracy"], "num-examples": len(y)}
        )
        content = RecordDict({"arrays": ArrayRecord(weights), "metrics": metrics})
        return Message(content=content, reply_to=message)

    @client_app.evaluate()
    def client_evaluate(message: Message, context: Context) -> Message:
        x, y = make_data(int(context.node_config["partition-id"]), SAMPLES_PER_CLIENT)
        scores = evaluate(message.content["arrays"].to_numpy_ndarrays(), x, y)
        metrics = MetricRecord(
            {"eval_loss": scores["loss"], "eval_acc": scores["accuracy"], "num-examples": len(y)}
        )
        return Message(content=RecordDict({"metrics": metrics}), reply_to=message)

    server_app = ServerApp()

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        strategy = track(
            FedAvg(
                min_train_nodes=clients, min_evaluate_nodes=clients, min_available_nodes=clients
            ),
            run,
        )

        def server_evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
            scores = evaluate(arrays.to_numpy_ndarrays(), *HELD_OUT)
            return MetricRecord(scores)

        strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(initial_weights()),
            num_rounds=rounds,
            evaluate_fn=server_evaluate,
        )

    return server_app, client_app


def legacy_apps(run, rounds: int, clients: int):
    """ServerApp and ClientApp of the legacy API (flwr.server.strategy, NumPyClient)."""
    from flwr.client import ClientApp, NumPyClient
    from flwr.common import ndarrays_to_parameters
    from flwr.server import ServerApp, ServerAppComponents, ServerConfig
    from flwr.server.strategy import FedAvg

    from runs_client.flower import track

    class Client(NumPyClient):
        def __init__(self, partition: int) -> None:
            self.x, self.y = make_data(partition, SAMPLES_PER_CLIENT)

        def fit(self, parameters, config):
            weights = train_epoch(list(parameters), self.x, self.y)
            scores = evaluate(weights, self.x, self.y)
            return weights, len(self.y), {"train_loss": scores["loss"]}

        def evaluate(self, parameters, config):
            scores = evaluate(list(parameters), self.x, self.y)
            return scores["loss"], len(self.y), {"eval_acc": scores["accuracy"]}

    def client_fn(context):
        return Client(int(context.node_config["partition-id"])).to_client()

    def server_evaluate(server_round, parameters, config):
        scores = evaluate(list(parameters), *HELD_OUT)
        return scores.pop("loss"), scores

    def weighted_average(results):
        total = sum(count for count, _ in results)
        names = {name for _, metrics in results for name in metrics}
        return {
            name: sum(count * metrics[name] for count, metrics in results) / total for name in names
        }

    def server_fn(context):
        strategy = FedAvg(
            fit_metrics_aggregation_fn=weighted_average,
            evaluate_metrics_aggregation_fn=weighted_average,
            min_fit_clients=clients,
            min_evaluate_clients=clients,
            min_available_clients=clients,
            initial_parameters=ndarrays_to_parameters(initial_weights()),
            evaluate_fn=server_evaluate,
        )
        return ServerAppComponents(
            strategy=track(strategy, run), config=ServerConfig(num_rounds=rounds)
        )

    return ServerApp(server_fn=server_fn), ClientApp(client_fn=client_fn)


def main() -> None:
    url, token, spool_dir, api, rounds, clients = sys.argv[1:7]
    rounds_count, clients_count = int(rounds), int(clients)

    from flwr.simulation import run_simulation

    from runs_client import RunsClient

    client = RunsClient(url, token=token, spool_dir=spool_dir, strict=True)
    logged: list[dict] = []
    clients_seen: list[str] = []
    with client.start_run(
        training_mode="federated",
        run_description=f"Flower simulation ({api} API)",
        config={"num_rounds": rounds_count, "num_clients": clients_count},
    ) as run:
        spy_on(run, logged, clients_seen)
        apps = message_api_apps if api == "message" else legacy_apps
        server_app, client_app = apps(run, rounds_count, clients_count)
        run_simulation(
            server_app=server_app,
            client_app=client_app,
            num_supernodes=clients_count,
            backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
        )
    client.close()
    print(
        json.dumps(
            {
                "run_id": run.run_id,
                "external_id": run.external_id,
                "points": logged,
                "clients": clients_seen,
            }
        )
    )


def spy_on(run, logged: list[dict], clients_seen: list[str]) -> None:
    """Record every point and client the tracker logs, in the service's JSON shape."""
    log_metrics, register_clients = run.log_metrics, run.register_clients

    def recording_log_metrics(metrics, step, client_identifier=None, round_number=None):
        for name, value in metrics.items():
            point = {"metric_name": name, "metric_value": float(value), "step": step}
            if client_identifier is not None:
                point.update(client_identifier=client_identifier, round_number=round_number)
            logged.append(point)
        log_metrics(metrics, step, client_identifier, round_number)

    def recording_register_clients(clients):
        clients = list(clients)
        clients_seen.extend(clients)
        register_clients(clients)

    run.log_metrics = recording_log_metrics
    run.register_clients = recording_register_clients


if __name__ == "__main__":
    main()
