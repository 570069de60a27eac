"""Data the tests log: the nine metrics of a centralized training loop."""

from __future__ import annotations

NINE_METRICS = (
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "val_precision",
    "val_recall",
    "val_f1",
    "val_auroc",
    "learning_rate",
)


def epoch_metrics(epoch: int) -> dict[str, float]:
    return {
        name: round(0.5 + 0.004 * epoch + 0.001 * index, 6)
        for index, name in enumerate(NINE_METRICS)
    }


def expected_points(epochs: int) -> list[dict]:
    return [
        {"metric_name": name, "metric_value": value, "step": epoch}
        for epoch in range(epochs)
        for name, value in epoch_metrics(epoch).items()
    ]
