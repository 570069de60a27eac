"""Downloads of a run's results: the history as CSV, ExperimentResults as JSON, a text report.

The run is loaded (and a missing run or history raised) before anything is
streamed; the chunks are then produced from memory without touching the database.
The JSON document is shaped by the caller (the API's response schema), not here.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runs_service.catalogue import (
    CONFUSION_COUNTS,
    FINAL_METRICS,
    LOSS_METRIC,
    SERVER_METRIC_FIELDS,
)
from runs_service.errors import NotFound
from runs_service.services.definitions import (
    CSV_COLUMNS,
    HistoryEntry,
    csv_row,
    csv_safe_cell,
)
from runs_service.services.results import (
    RunResults,
    experiment_results,
    load_run_results,
)

# Each chunk handed to the server holds about this many characters.
CHUNK_CHARS = 64 * 1024
MISSING = "n/a"
LABEL_WIDTH = 24
COLUMN_WIDTH = 14
NO_HISTORY = "No training history available"
COUNT_LABELS = (
    *((count.label, count.server_field) for count in CONFUSION_COUNTS),
    ("Total", "total"),
)
CONFUSION_STATISTICS = (
    ("Sensitivity", "sensitivity", "sensitivity_ci95"),
    ("Specificity", "specificity", "specificity_ci95"),
    ("Precision", "precision_cm", None),
    ("Accuracy", "accuracy_cm", None),
    ("F1", "f1_cm", None),
)
BEST_LABELS = tuple(
    (f"{'Lowest' if metric is LOSS_METRIC else 'Best'} val {metric.label}", metric.best_key)
    for metric in FINAL_METRICS
)


@dataclass(frozen=True)
class Download:
    """A file to stream: its name, media type and text chunks."""

    filename: str
    mimetype: str
    chunks: Iterator[str]


def in_chunks(pieces: Iterable[str], size: int = CHUNK_CHARS) -> Iterator[str]:
    """Join small pieces into chunks of at least size characters (the last may be shorter)."""
    buffer: list[str] = []
    length = 0
    for piece in pieces:
        buffer.append(piece)
        length += len(piece)
        if length >= size:
            yield "".join(buffer)
            buffer, length = [], 0
    if buffer:
        yield "".join(buffer)


def _csv_line(cells: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue()


def csv_lines(history: Iterable[HistoryEntry]) -> Iterator[str]:
    """Yield the CSV header and one line per epoch, with empty cells for missing values."""
    yield _csv_line(CSV_COLUMNS)
    for entry in history:
        yield _csv_line(csv_row(entry))


def csv_download(run_id: int) -> Download:
    """The run's training history as CSV; NotFound when it has none."""
    history = load_run_results(run_id).view.history
    if not history:
        raise NotFound(NO_HISTORY)
    return Download(f"run_{run_id}_metrics.csv", "text/csv", in_chunks(csv_lines(history)))


def json_download(run_id: int, dump: Callable[[dict[str, Any]], Any]) -> Download:
    """The run's ExperimentResults as a JSON file, shaped by dump as GET /metrics shapes it."""
    document = dump(experiment_results(load_run_results(run_id)))
    pieces = json.JSONEncoder(indent=2).iterencode(document)
    return Download(f"run_{run_id}_results.json", "application/json", in_chunks(pieces))


def report_text(value: object) -> str:
    """Render a value for the text report: one line, no live spreadsheet formula."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    # Control characters could forge report lines or drive a terminal.
    printable = "".join(char if char.isprintable() else " " for char in str(value))
    return csv_safe_cell(" ".join(printable.split()))


def metric_text(value: object) -> str:
    """Render a metric for the text report: floats to 4 places, missing as n/a."""
    if isinstance(value, float):
        return f"{value:.4f}"
    return report_text(value)


def _line(label: str, text: str) -> str:
    return f"{label + ':':<{LABEL_WIDTH}}{text}\n"


def _heading(title: str) -> str:
    # Markdown-style headings: underlines of '=' or '-' would be formulas in a spreadsheet.
    return f"\n## {title}\n"


def _config_lines(config: Mapping[str, Any] | None) -> Iterator[str]:
    if not config:
        yield "(none)\n"
        return
    for key in sorted(config):
        value = config[key]
        shown = json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value
        yield _line(report_text(key), report_text(shown))


def _interval(bounds: Sequence[float] | None) -> str:
    if bounds is None:
        return ""
    return f" (95% CI {bounds[0]:.4f} to {bounds[1]:.4f})"


def _confusion_lines(matrix: Mapping[str, Any] | None) -> Iterator[str]:
    if matrix is None:
        yield "(not logged)\n"
        return
    for label, key in COUNT_LABELS:
        yield _line(label, metric_text(matrix[key]))
    for label, key, interval_key in CONFUSION_STATISTICS:
        interval = _interval(matrix[interval_key]) if interval_key else ""
        yield _line(label, metric_text(matrix[key]) + interval)


def _history_lines(history: Sequence[HistoryEntry], unit: str) -> Iterator[str]:
    """The history table; its first column is headed `epoch` or, for federated runs, `round`."""
    if not history:
        yield NO_HISTORY + ".\n"
        return
    headings = (unit, *CSV_COLUMNS[1:])
    yield "".join(f"{column:>{COLUMN_WIDTH}}" for column in headings).rstrip() + "\n"
    for entry in history:
        cells = (metric_text(entry.get(column)) for column in CSV_COLUMNS)
        yield "".join(f"{cell:>{COLUMN_WIDTH}}" for cell in cells).rstrip() + "\n"


def summary_lines(results: RunResults) -> Iterator[str]:
    """Yield the text report: run facts, final and best metrics, confusion matrix, every epoch."""
    run, view = results.run, results.view
    document = experiment_results(results)
    metadata = document["metadata"]
    unit = "round" if results.is_federated else "epoch"
    final_epoch = report_text(view.history[-1]["epoch"] if view.history else None)
    yield f"# Run {run.id} summary report\n"
    yield _line("Experiment", document["experiment_id"])
    yield _line("Description", report_text(run.run_description))
    yield _line("Training mode", run.training_mode.value)
    yield _line("Status", run.status.value)
    yield _line("Start time", report_text(run.start_time))
    yield _line("End time", report_text(run.end_time))
    yield _line("Duration (minutes)", report_text(metadata["duration_minutes"]))
    yield _line("Training rounds" if results.is_federated else "Epochs", str(view.total_epochs))
    yield _line("Source path", report_text(run.source_path))
    yield _line("External id", report_text(run.external_id))
    yield _heading("Configuration")
    yield from _config_lines(run.config)
    yield _heading(f"Final metrics ({unit} {final_epoch})")
    for key, value in document["final_metrics"].items():
        yield _line(key, metric_text(value))
    yield _heading("Best metrics")
    yield _line(f"Best {unit} (val acc)", report_text(metadata["best_epoch"]))
    for label, key in BEST_LABELS:
        yield _line(label, metric_text(metadata[key]))
    yield _heading(f"Confusion matrix ({unit} {final_epoch})")
    yield from _confusion_lines(document["confusion_matrix"])
    if results.is_federated:
        yield _heading("Initial evaluation (round 0)")
        initial = metadata["initial_evaluation"]
        if initial is None:
            yield "(not logged)\n"
        else:
            for field in SERVER_METRIC_FIELDS:
                yield _line(field, metric_text(initial[field]))
    yield _heading("Training history" + (" (training rounds)" if results.is_federated else ""))
    yield from _history_lines(view.history, unit)


def summary_download(run_id: int) -> Download:
    """The run's plain-text summary report."""
    results = load_run_results(run_id)
    return Download(f"run_{run_id}_summary.txt", "text/plain", in_chunks(summary_lines(results)))
