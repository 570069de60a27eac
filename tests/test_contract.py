"""Contract fuzzing: schemathesis drives every operation of /api/openapi.json in-process.

Positive and negative data, the default checks (no 5xx, documented status codes,
content types, headers and bodies, negative data rejected), as an authenticated
writer. Generated run ids are steered to real runs most of the time so the
handlers' logic is reached, not only the 404 path.

Bounded and seeded for CI; RUNS_FUZZ_EXAMPLES and RUNS_FUZZ_SEED explore further
(README, "Fuzzing for longer").
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from hypothesis import seed as hypothesis_seed
from schemathesis.generation import GenerationMode

from runs_service import create_app
from runs_service.extensions import db
from runs_service.models import Run
from tests.helpers import ADMIN_AUTH, AUTH, READER_AUTH, WRITER_TOKEN

MAX_EXAMPLES = int(os.environ.get("RUNS_FUZZ_EXAMPLES", "50"))
SEED = int(os.environ.get("RUNS_FUZZ_SEED", "20251126"))

# The document does not depend on the database: load it from an app that has none.
schema = schemathesis.openapi.from_wsgi(
    "/api/openapi.json",
    create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "RUNS_API_TOKENS": (WRITER_TOKEN,)}),
)
schema.config.generation.update(modes=list(GenerationMode), max_examples=MAX_EXAMPLES)

RESULTS_SECTION = "evaluate_metrics_serverapp"
EARLIEST = "0001-01-01T00:00:00+00:00"
LEGACY_ROUND = "{'server_loss': 0.69, 'server_accuracy': np.float64(0.5), 'server_cm_tp': 475.0}"
RESULTS_DOCUMENT = {
    "evaluate_metrics_serverapp": {
        "0": LEGACY_ROUND,
        "1": {
            "server_loss": 0.6,
            "server_accuracy": 0.61,
            "server_cm_tp": 300,
            "server_cm_tn": 200,
            "server_cm_fp": 20,
            "server_cm_fn": 40,
        },
    }
}


COUNTS = ("true_positives", "true_negatives", "false_positives", "false_negatives")
FILE_COUNTS = ("server_cm_tp", "server_cm_tn", "server_cm_fp", "server_cm_fn")
# What identifies an item of each batch: a batch names each item once (else 422).
BATCH_KEYS = {
    "metrics": ("metric_name", "step", "client_identifier", "round_number"),
    "evaluations": ("round_number",),
    "clients": ("client_identifier",),
}


@dataclass
class SeededRuns:
    """Runs with data behind them, recreated whenever a fuzzed DELETE removes one."""

    app: Flask
    results_dir: Path
    ids: dict[str, int] = field(default_factory=dict)

    def ensure(self) -> None:
        with self.app.app_context():
            present = {
                kind: run_id
                for kind, run_id in self.ids.items()
                if db.session.get(Run, run_id) is not None
            }
            db.session.remove()
        for kind in ("centralized", "federated"):
            if kind not in present:
                present[kind] = self._create(kind)
        self.ids = present

    def _create(self, kind: str) -> int:
        client = self.app.test_client()

        def post(path: str, body: dict) -> dict:
            response = client.post(path, json=body, headers=AUTH)
            assert response.status_code in (200, 201), response.get_json()
            return response.get_json()

        run_id = post("/api/runs", {"training_mode": kind, "start_time": EARLIEST})["id"]
        if kind == "centralized":
            metrics = [
                {"metric_name": name, "metric_value": value, "step": step}
                for step in range(3)
                for name, value in (
                    ("train_loss", 0.9 - step / 10),
                    ("val_loss", 0.8 - step / 10),
                    ("val_acc", 0.6 + step / 10),
                    ("val_cm_tp", 40.0 + step),
                    ("val_cm_tn", 30.0),
                    ("val_cm_fp", 5.0),
                    ("val_cm_fn", 8.0),
                )
            ]
            post(f"/api/runs/{run_id}/metrics", {"metrics": metrics})
        else:
            post(f"/api/runs/backfill/{run_id}/server-evaluations", RESULTS_DOCUMENT)
            post(f"/api/runs/{run_id}/clients", {"clients": [{"client_identifier": "client-1"}]})
            # The file the body-less backfill reads.
            self.results_dir.mkdir(parents=True, exist_ok=True)
            (self.results_dir / f"results_{run_id}.json").write_text(json.dumps(RESULTS_DOCUMENT))
        return run_id

    def steer(self, case) -> None:
        """Point three generated run ids in four at a seeded run, keep the rest as drawn."""
        run_id = (case.path_parameters or {}).get("run_id")
        if isinstance(run_id, bool) or not isinstance(run_id, int) or not 1 <= run_id < 2**31:
            return
        choice = run_id % 4
        if choice == 3:
            return
        self.ensure()
        kind = "centralized" if choice == 0 else "federated"
        case.path_parameters["run_id"] = self.ids[kind]


def follow_rules_json_schema_cannot_state(case) -> None:
    """Keep positive cases positive where the service has rules JSON Schema cannot express.

    These rules are in the OpenAPI text, and breaking them is a tested 422: a timestamp
    must exist in UTC (years 1 to 9999 after applying its offset), a run's end_time is
    not before its start_time, a PATCH back to in_progress sends no end_time (it clears
    it), a batch names each item once, a confusion matrix's four counts add up to at most
    2^31-1, /list's sort_metric and sort_stat come with sort_by=metric (which needs
    sort_metric), and a legacy metrics string is a Python literal (a
    grammar JSON Schema cannot hold: a drawn string becomes a valid one;
    tests/unit/test_properties.py fuzzes the parser itself). Seeded runs start at the
    earliest UTC instant, so any end_time a PATCH draws is after it. Negative cases are
    left exactly as drawn.
    """
    if case.meta is None or case.meta.generation.mode is not GenerationMode.POSITIVE:
        return
    if isinstance(case.query, dict):
        case.query = representable_times(case.query)
        series_query_in_order(case.query)
        metric_sort_together(case.query)
    if isinstance(case.body, dict | list):
        case.body = representable_times(case.body)
    body = case.body
    if isinstance(body, dict) and isinstance(body.get(RESULTS_SECTION), dict):
        body[RESULTS_SECTION] = {
            round_key: LEGACY_ROUND if isinstance(metrics, str) else metrics
            for round_key, metrics in body[RESULTS_SECTION].items()
        }
    if isinstance(body, dict):
        for collection, key in BATCH_KEYS.items():
            if isinstance(body.get(collection), list):
                body[collection] = once_per_key(body[collection], key)
        for evaluation in body.get("evaluations") or []:
            matrix_within_total(evaluation, COUNTS)
        if isinstance(body.get(RESULTS_SECTION), dict):
            for metrics in body[RESULTS_SECTION].values():
                matrix_within_total(metrics, FILE_COUNTS)
    if isinstance(body, dict) and case.method == "PATCH" and body.get("status") == "in_progress":
        body.pop("end_time", None)
    if isinstance(body, dict) and {"start_time", "end_time"} <= body.keys():
        start, end = (parse_timestamp(body[name]) for name in ("start_time", "end_time"))
        if start is not None and end is not None and end < start:
            body["start_time"], body["end_time"] = body["end_time"], body["start_time"]


def series_query_in_order(query: dict) -> None:
    """A step range not reversed, comma lists without repeats, run ids within 2^31-1."""
    start, end = (as_integer(query.get(name)) for name in ("start_step", "end_step"))
    if start is not None and end is not None and end < start:
        query["start_step"], query["end_step"] = query["end_step"], query["start_step"]
    for name in ("names", "run_ids"):
        if isinstance(query.get(name), str):
            items = query[name].split(",")
            if name == "run_ids":
                items = [
                    str(min(int(item), 2**31 - 1)) if item.isdigit() else item for item in items
                ]
            query[name] = ",".join(dict.fromkeys(items))


def metric_sort_together(query: dict) -> None:
    """/list: sort_metric and sort_stat go with sort_by=metric, which needs sort_metric."""
    if "sort_metric" in query or "sort_stat" in query:
        query["sort_by"] = "metric"
    if query.get("sort_by") == "metric":
        query.setdefault("sort_metric", "val_acc")


def as_integer(value: Any) -> int | None:
    """A query value as the integer it spells, or None."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def once_per_key(items: list, key: tuple[str, ...]) -> list:
    """The batch without items that repeat an earlier item's key (the first one stays)."""
    seen: set = set()
    kept = []
    for item in items:
        identity = (
            repr([as_key(item.get(name)) for name in key]) if isinstance(item, dict) else None
        )
        if identity is None or identity not in seen:
            kept.append(item)
            seen.add(identity)
    return kept


def matrix_within_total(evaluation: Any, names: tuple[str, ...]) -> None:
    """Shrink four counts whose total is over 2^31-1 (they fill one int column)."""
    if not isinstance(evaluation, dict):
        return
    counts = [evaluation.get(name) for name in names]
    if all(isinstance(count, int | float) for count in counts) and sum(counts) > 2**31 - 1:
        for name in names:
            evaluation[name] = int(evaluation[name]) // 4


def as_key(value: Any) -> Any:
    """The value as the service compares it: 3.0 and 3 are the same round or step."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def representable_times(value: Any) -> Any:
    """The value with every timestamp that does not exist in UTC moved to offset +00:00."""
    if isinstance(value, dict):
        return {key: representable_times(item) for key, item in value.items()}
    if isinstance(value, list):
        return [representable_times(item) for item in value]
    moment = parse_timestamp(value)
    if moment is None:
        return value
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return moment.replace(tzinfo=UTC).isoformat()
    return value


def parse_timestamp(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@pytest.fixture
def seeded_runs(app: Flask) -> Iterator[SeededRuns]:
    runs = SeededRuns(app, Path(app.config["RUNS_RESULTS_DIR"]))
    runs.ensure()
    yield runs


@schema.parametrize()
@hypothesis_seed(SEED)
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_honours_its_openapi_contract(case, app, seeded_runs):
    seeded_runs.steer(case)
    follow_rules_json_schema_cannot_state(case)
    # An admin token may call every operation, deletion included.
    case.call_and_validate(app=app, headers=ADMIN_AUTH)


# --- The README's "Bad input" table, row by row ------------------------------------------

README = Path(__file__).parent.parent / "README.md"


@dataclass
class Fixtures:
    """What the bad-input examples need: clients, runs and the results directory."""

    app: Flask
    app_with: Any
    centralized: int
    federated: int

    @property
    def client(self):
        return self.app.test_client()

    def post(self, path: str, body: Any, **kwargs: Any):
        return self.client.post(path, json=body, headers=AUTH, **kwargs)

    def results_file(self, run_id: int) -> Path:
        directory = Path(self.app.config["RUNS_RESULTS_DIR"])
        directory.mkdir(parents=True, exist_ok=True)
        return directory / f"results_{run_id}.json"


def point(**fields: Any) -> dict[str, Any]:
    return {"metric_name": "val_loss", "metric_value": 0.5, "step": 0, **fields}


def unknown_route(f: Fixtures):
    return [f.client.get("/api/nothing-here"), f.post("/api/runs/1/nothing", {})]


def run_id_out_of_range(f: Fixtures):
    return [f.client.get(f"/api/runs/{run_id}") for run_id in ("0", "-1", "2147483648", "abc")]


def missing_run(f: Fixtures):
    return [
        f.client.get("/api/runs/2147483647"),
        f.post("/api/runs/2147483647/metrics", {"metrics": [point()]}),
    ]


def wrong_method(f: Fixtures):
    return [f.client.put(f"/api/runs/{f.centralized}", json={}, headers=AUTH)]


def no_token_configured(f: Fixtures):
    app = f.app_with(RUNS_READ_TOKENS=(), RUNS_API_TOKENS=(), RUNS_ADMIN_TOKENS=())
    return [app.test_client().post("/api/runs", json={"training_mode": "federated"})]


def insufficient_scope(f: Fixtures):
    body = {"training_mode": "federated"}
    return [
        f.client.delete(f"/api/runs/{f.centralized}", headers=AUTH),
        f.client.post("/api/runs", json=body, headers=READER_AUTH),
        f.client.patch(f"/api/runs/{f.centralized}", json={}, headers=READER_AUTH),
    ]


def bad_token(f: Fixtures):
    body = {"training_mode": "federated"}
    return [
        f.client.post("/api/runs", json=body),
        f.client.post("/api/runs", json=body, headers={"Authorization": "Bearer wrong"}),
        f.client.post("/api/runs", json=body, headers={"Authorization": "Basic abc"}),
    ]


def read_without_token(f: Fixtures):
    app = f.app_with(RUNS_REQUIRE_AUTH_FOR_READS=True)
    return [app.test_client().get("/api/runs/list")]


def not_json(f: Fixtures):
    return [
        f.client.post(
            "/api/runs",
            data="training_mode=federated",
            headers=AUTH,
            content_type="application/x-www-form-urlencoded",
        ),
        f.client.post(
            "/api/runs",
            data='{"training_mode": "federated"}',
            headers=AUTH,
            content_type="text/plain",
        ),
    ]


def too_large(f: Fixtures):
    app = f.app_with(MAX_CONTENT_LENGTH=1024)
    body = {"training_mode": "centralized", "run_description": "x" * 2000}
    return [app.test_client().post("/api/runs", json=body, headers=AUTH)]


def malformed_json(f: Fixtures):
    def raw(text: str):
        return f.client.post("/api/runs", data=text, headers=AUTH, content_type="application/json")

    return [
        raw('{"training_mode": '),
        raw('{"training_mode": "centralized", "config": {"lr": NaN}}'),
        raw('{"training_mode": "centralized", "config": {"lr": -Infinity}}'),
        raw("[" * 100_000),
        raw(b"\xff\xfe".decode("latin-1")),
        raw('{"training_mode": "centralized", "run_description": "\\ud800"}'),
    ]


def nul_character(f: Fixtures):
    return [
        f.post("/api/runs", {"training_mode": "centralized", "run_description": "a\x00b"}),
        f.post("/api/runs", {"training_mode": "centralized", "config": {"k": ["\x00"]}}),
        f.post("/api/runs", {"training_mode": "centralized", "config": {"\x00": 1}}),
        f.post(f"/api/runs/{f.federated}/clients", {"clients": [{"client_identifier": "\x00"}]}),
        f.post(
            f"/api/runs/backfill/{f.federated}/server-evaluations",
            {"evaluate_metrics_serverapp": {"1": {"x\x00": 1}}},
        ),
    ]


def bad_query(f: Fixtures):
    get = f.client.get
    return [
        get("/api/runs/list?color=red"),
        get("/api/runs/list?limit=0"),
        get("/api/runs/list?limit=1001"),
        get("/api/runs/list?offset=1000000001"),
        get("/api/runs/list?sort_by=name"),
        get("/api/runs/list?status=done"),
        get("/api/runs/list?status=failed,done"),
        get("/api/runs/list?limit=5&limit=6"),
        get("/api/runs/list?tag=two%20words"),
        get("/api/runs/list?q=" + "x" * 101),
        get("/api/runs/analytics/summary?tag=a,"),
        get("/api/runs/analytics/summary?days=0"),
        get("/api/runs/analytics/summary?top_n=101"),
        get("/api/runs/analytics/summary?rank_by=loss"),
        f.client.post(
            f"/api/runs/backfill/{f.federated}/server-evaluations?dry_run=maybe", headers=AUTH
        ),
    ]


def unknown_field(f: Fixtures):
    return [
        f.post("/api/runs", {"training_mode": "centralized", "colour": "red"}),
        f.client.patch(
            f"/api/runs/{f.centralized}", json={"training_mode": "federated"}, headers=AUTH
        ),
        f.post(f"/api/runs/{f.centralized}/metrics", {"metrics": [point(unit="%")]}),
    ]


def wrong_type(f: Fixtures):
    metrics = f"/api/runs/{f.centralized}/metrics"
    return [
        f.post("/api/runs", {}),
        f.post(metrics, {"metrics": [point(dataset_type={})]}),
        f.post(metrics, {"metrics": [point(dataset_type="bogus")]}),
        f.post("/api/runs", {"training_mode": "both"}),
        f.post(metrics, {"metrics": [point(step="1")]}),
        f.post(metrics, {"metrics": [point(step=1.5)]}),
        f.post(metrics, {"metrics": [point(metric_value=True)]}),
        f.post(metrics, {"metrics": [point(metric_value="0.5")]}),
        f.post(metrics, {"metrics": "val_loss"}),
    ]


def not_finite(f: Fixtures):
    metrics = f"/api/runs/{f.centralized}/metrics"
    return [
        f.client.post(
            metrics,
            data='{"metrics": [{"metric_name": "val_loss", "metric_value": 1e400, "step": 0}]}',
            headers=AUTH,
            content_type="application/json",
        ),
        f.post(metrics, {"metrics": [point(metric_value=10**400)]}),
        f.client.post(
            "/api/runs",
            data='{"training_mode": "centralized", "config": {"lr": 1e400}}',
            headers=AUTH,
            content_type="application/json",
        ),
    ]


def out_of_range_value(f: Fixtures):
    metrics = f"/api/runs/{f.centralized}/metrics"
    evaluations = f"/api/runs/{f.federated}/server-evaluations"
    return [
        f.post(metrics, {"metrics": [point(metric_name="val_acc", metric_value=1.01)]}),
        f.post(metrics, {"metrics": [point(metric_name="val_auroc", metric_value=-0.1)]}),
        f.post(metrics, {"metrics": [point(metric_name="val_cm_tp", metric_value=-1)]}),
        f.post(metrics, {"metrics": [point(metric_name="val_cm_fn", metric_value=2.5)]}),
        f.post(evaluations, {"evaluations": [{"round_number": 1, "accuracy": 2}]}),
        f.post(evaluations, {"evaluations": [{"round_number": 1, "true_positives": -3}]}),
        f.post(evaluations, {"evaluations": [{"round_number": 1, "num_samples": 2**31}]}),
        f.post(evaluations, {"evaluations": [{"round_number": 1, "loss": 1e300}]}),
        f.post(evaluations, {"evaluations": [{"round_number": 1, **dict.fromkeys(COUNTS, 2**30)}]}),
    ]


def step_out_of_range(f: Fixtures):
    return [
        f.post(f"/api/runs/{f.centralized}/metrics", {"metrics": [point(step=-1)]}),
        f.post(f"/api/runs/{f.centralized}/metrics", {"metrics": [point(step=10**6 + 1)]}),
        f.post(
            f"/api/runs/{f.federated}/server-evaluations",
            {"evaluations": [{"round_number": 10**6 + 1}]},
        ),
    ]


def bad_timestamp(f: Fixtures):
    return [
        f.post("/api/runs", {"training_mode": "centralized", "start_time": "yesterday"}),
        f.post("/api/runs", {"training_mode": "centralized", "start_time": "2025-13-01"}),
        f.post(
            "/api/runs",
            {"training_mode": "centralized", "start_time": "0001-01-01T00:00:00+05:00"},
        ),
        f.client.get("/api/runs/list?started_after=9999-12-31T23:00:00-05:00"),
    ]


def end_before_start(f: Fixtures):
    return [
        f.post(
            "/api/runs",
            {
                "training_mode": "centralized",
                "start_time": "2025-01-02T00:00:00Z",
                "end_time": "2025-01-01T00:00:00Z",
            },
        ),
        f.client.patch(
            f"/api/runs/{f.centralized}",
            json={"end_time": "2000-01-01T00:00:00Z"},
            headers=AUTH,
        ),
    ]


def text_too_long(f: Fixtures):
    return [
        f.post("/api/runs", {"training_mode": "centralized", "run_description": "x" * 1025}),
        f.post("/api/runs", {"training_mode": "centralized", "external_id": "x" * 256}),
        f.post(f"/api/runs/{f.centralized}/metrics", {"metrics": [point(metric_name="")]}),
        f.post(f"/api/runs/{f.centralized}/metrics", {"metrics": [point(metric_name="m" * 129)]}),
        f.post(f"/api/runs/{f.federated}/clients", {"clients": [{"client_identifier": "c" * 256}]}),
    ]


def batch_size(f: Fixtures):
    return [
        f.post(f"/api/runs/{f.centralized}/metrics", {"metrics": []}),
        f.post(
            f"/api/runs/{f.centralized}/metrics",
            {
                "metrics": [
                    point(step=step % 1000, metric_name=f"m{step // 1000}")
                    for step in range(10_001)
                ]
            },
        ),
        f.post(
            f"/api/runs/{f.federated}/server-evaluations",
            {"evaluations": [{"round_number": n} for n in range(1_001)]},
        ),
        f.post(
            f"/api/runs/{f.federated}/clients",
            {"clients": [{"client_identifier": f"c{n}"} for n in range(1_001)]},
        ),
    ]


def repeated_item(f: Fixtures):
    return [
        f.post(f"/api/runs/{f.centralized}/metrics", {"metrics": [point(), point(metric_value=1)]}),
        f.post(
            f"/api/runs/{f.federated}/server-evaluations",
            {"evaluations": [{"round_number": 2}, {"round_number": 2.0}]},
        ),
        f.post(
            f"/api/runs/{f.federated}/clients",
            {"clients": [{"client_identifier": "a"}, {"client_identifier": "a"}]},
        ),
    ]


def bad_additional_metrics(f: Fixtures):
    def evaluation(additional: Any):
        return f.post(
            f"/api/runs/{f.federated}/server-evaluations",
            {"evaluations": [{"round_number": 1, "additional_metrics": additional}]},
        )

    return [
        evaluation({"note": "good"}),
        evaluation({"nested": {"a": 1}}),
        evaluation({"flag": True}),
        evaluation({f"k{n}": n for n in range(129)}),
        evaluation({"big": 2**53 + 1}),
        evaluation({"many": list(range(1_001))}),
    ]


def wrong_training_mode(f: Fixtures):
    return [
        f.post(
            f"/api/runs/{f.centralized}/server-evaluations", {"evaluations": [{"round_number": 1}]}
        ),
        f.post(f"/api/runs/{f.centralized}/clients", {"clients": [{"client_identifier": "a"}]}),
        f.post(f"/api/runs/{f.centralized}/metrics", {"metrics": [point(client_identifier="a")]}),
        f.client.post(f"/api/runs/backfill/{f.centralized}/server-evaluations", headers=AUTH),
    ]


def results_file_missing(f: Fixtures):
    return [f.client.post(f"/api/runs/backfill/{f.federated}/server-evaluations", headers=AUTH)]


def results_file_too_large(f: Fixtures):
    app = f.app_with(RUNS_MAX_RESULTS_FILE_BYTES=64)
    path = Path(app.config["RUNS_RESULTS_DIR"]) / f"results_{f.federated}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(RESULTS_DOCUMENT))
    url = f"/api/runs/backfill/{f.federated}/server-evaluations"
    return [app.test_client().post(url, headers=AUTH)]


def results_file_refused(f: Fixtures):
    url = f"/api/runs/backfill/{f.federated}/server-evaluations"
    path = f.results_file(f.federated)
    outside = path.parent.parent / "elsewhere.json"
    outside.write_text(json.dumps(RESULTS_DOCUMENT))
    path.symlink_to(outside)
    answers = [f.client.post(url, headers=AUTH)]
    path.unlink()
    path.mkdir()
    answers.append(f.client.post(url, headers=AUTH))
    path.rmdir()
    return answers


def bad_results_document(f: Fixtures):
    url = f"/api/runs/backfill/{f.federated}/server-evaluations"
    answers = []
    for content in ("{not json", '{"evaluate_metrics_serverapp": {"1": {"x": NaN}}}', "{}"):
        f.results_file(f.federated).write_text(content)
        answers.append(f.client.post(url, headers=AUTH))
    for document in (
        {},
        {"evaluate_metrics_serverapp": {}},
        {"evaluate_metrics_serverapp": {"01": {}}},
        {"evaluate_metrics_serverapp": {"1": {"server_accuracy": 1.5}}},
        {"evaluate_metrics_serverapp": {"1": "{'server_loss': __import__('os')}"}},
        {"evaluate_metrics_serverapp": {"1": "{'nested': {'a': 1}}"}},
    ):
        answers.append(f.post(url, document))
    return answers


# Keyed by the first column of the README table; the test below checks both agree.
BAD_INPUTS = dict(
    [
        ("Unknown route", unknown_route),
        ("Run id that is not an integer in 1..2^31−1", run_id_out_of_range),
        ("Run that does not exist", missing_run),
        ("Method the route does not have", wrong_method),
        ("Write while no token is configured", no_token_configured),
        ("Token without the scope the operation needs", insufficient_scope),
        ("Write without a bearer token, or with a wrong one", bad_token),
        ("Read without a token when `RUNS_REQUIRE_AUTH_FOR_READS` is on", read_without_token),
        ("Body that is not `application/json`", not_json),
        ("Body over `RUNS_MAX_CONTENT_LENGTH`", too_large),
        (
            "Malformed JSON, `NaN`/`Infinity` literals, nesting too deep, unpaired surrogates",
            malformed_json,
        ),
        ("Text holding a NUL character, anywhere in a body", nul_character),
        ("Unknown query parameter, or a value outside its list or range", bad_query),
        ("Unknown field in a body (`training_mode` in a PATCH included)", unknown_field),
        ("Missing required field, or a value of the wrong type", wrong_type),
        ("Number too large to be finite (`1e400`)", not_finite),
        (
            "Score outside [0, 1]; count negative, fractional or too large; loss beyond ±2^53",
            out_of_range_value,
        ),
        ("`step` or `round_number` outside 0..10^6", step_out_of_range),
        ("Timestamp that is not ISO 8601, or not within years 1–9999 in UTC", bad_timestamp),
        ("`end_time` before the run's `start_time`", end_before_start),
        ("Text empty where a name is needed, or longer than its limit", text_too_long),
        ("Empty batch, or one over its limit (10,000 / 1,000 / 1,000)", batch_size),
        ("Batch that names the same item twice", repeated_item),
        (
            "`additional_metrics` not numbers, over 128 keys, beyond ±2^53, lists over 1,000",
            bad_additional_metrics,
        ),
        (
            "Server evaluations, clients, client-local metrics or a backfill for a centralized run",
            wrong_training_mode,
        ),
        (
            "Backfill whose `results_{run_id}.json` is not in the results directory",
            results_file_missing,
        ),
        ("Results file over `RUNS_MAX_RESULTS_FILE_BYTES`", results_file_too_large),
        (
            "Results file that resolves outside the results directory, or is not a regular file",
            results_file_refused,
        ),
        (
            "Results document that is not JSON, has no server section, or has an invalid round",
            bad_results_document,
        ),
    ]
)


def readme_bad_input_table() -> dict[str, int]:
    """Rows of the README's "Bad input" table: class of bad input → status code."""
    text = README.read_text()
    section = text.split("\n## Bad input\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[1].isdigit():
            rows[cells[0]] = int(cells[1])
    return rows


def test_readme_table_lists_exactly_the_checked_classes_of_bad_input():
    assert set(readme_bad_input_table()) == set(BAD_INPUTS)


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_each_class_of_bad_input_gets_its_status_and_changes_nothing(
    name, app, app_with, create_run, row_counts
):
    expected = readme_bad_input_table()[name]
    fixtures = Fixtures(
        app, app_with, create_run("centralized")["id"], create_run("federated")["id"]
    )
    before = row_counts()
    responses = BAD_INPUTS[name](fixtures)
    assert responses
    for response in responses:
        body = response.get_json()
        assert response.status_code == expected, (name, response.status_code, body)
        assert body["code"] == expected and body["message"], body
    assert row_counts() == before
