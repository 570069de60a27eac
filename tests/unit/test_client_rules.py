"""The Python client (client/) checks points with a copy of the catalogue's rules: the same.

The client cannot import the service (it installs without Flask), so its module of
rules is loaded here by path; it imports the standard library only.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from runs_service import catalogue

RULES = Path(__file__).resolve().parents[2] / "client" / "runs_client" / "_points.py"
SHARED = (
    "SCORE_SUFFIXES",
    "COUNT_SUFFIXES",
    "MAX_STEP",
    "MAX_ROUND",
    "MAX_COUNT",
    "MAX_METRIC_NAME_LENGTH",
    "MAX_CLIENT_IDENTIFIER_LENGTH",
    "MAX_METRICS_PER_BATCH",
    "MAX_EVALUATIONS_PER_BATCH",
    "MAX_CLIENTS_PER_BATCH",
    "MAX_ADDITIONAL_METRICS",
    "MAX_ADDITIONAL_LIST_LENGTH",
    "MAX_ABS_NUMBER",
)


def client_rules():
    spec = importlib.util.spec_from_file_location("runs_client_points", RULES)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", SHARED)
def test_the_client_checks_with_the_catalogue_limits_and_suffixes(name):
    assert getattr(client_rules(), name) == getattr(catalogue, name)


@pytest.mark.parametrize(
    "name", ["val_acc", "val_AUC", "server_f1_score", "val_cm_tp", "train_loss", "lr", "x_cm_fn"]
)
def test_the_client_sorts_names_into_scores_and_counts_as_the_catalogue_does(name):
    rules = client_rules()
    category = rules.name_category(name)
    assert (category == rules.SCORE) == catalogue.is_score_name(name)
    assert (category == rules.COUNT) == catalogue.is_count_name(name)
