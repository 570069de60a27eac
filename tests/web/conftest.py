"""Fixtures of the dashboard tests: a real HTTP server on demo data and headless Chromium.

The browser is Debian's chromium with its chromium-driver; nothing is downloaded at run
time. Without them the browser tests skip, unless RUNS_TEST_REQUIRE_BROWSER=1 (set by
.ci/run after installing both), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from runs_service.extensions import db
from tests.helpers import AUTH, empty_tables, make_app

SCREENSHOTS = Path(__file__).parent / "screenshots"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
)
LONG_RUN_EPOCHS = 1_000
LONG_RUN_METRICS = ("train_loss", "val_loss", "train_acc", "val_acc", "val_recall", "val_auroc")


def executable(name: str, *places: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    return next((place for place in places if os.access(place, os.X_OK)), None)


def browser_binaries() -> tuple[str, str] | None:
    chromium = executable("chromium", "/usr/bin/chromium")
    driver = executable("chromedriver", "/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
    return (chromium, driver) if chromium and driver else None


@dataclass
class LiveServer:
    url: str
    app: Flask
    long_run_id: int
    first_demo_id: int

    def demo_id(self, number: int) -> int:
        """The id of the number-th demo run (run `number` on a fresh database).

        PostgreSQL does not reuse the ids of earlier tests' deleted runs, so the demo runs
        are numbered from wherever its sequence stands.
        """
        return self.first_demo_id + number - 1


def load_long_run(app: Flask) -> int:
    """A centralized run of 1,000 epochs (six metrics each), for the run page's timing."""
    client = app.test_client()
    created = client.post(
        "/api/runs",
        json={"training_mode": "centralized", "run_description": "1,000-epoch timing run"},
        headers=AUTH,
    ).get_json()
    points = [
        {"metric_name": name, "metric_value": round(0.5 + 0.4 * (step % 97) / 97, 4), "step": step}
        for step in range(LONG_RUN_EPOCHS)
        for name in LONG_RUN_METRICS
    ]
    for start in range(0, len(points), 5_000):
        answer = client.post(
            f"/api/runs/{created['id']}/metrics",
            json={"metrics": points[start : start + 5_000]},
            headers=AUTH,
        )
        assert answer.status_code == 200, answer.get_json()
    return created["id"]


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        with app.app_context():
            db.engine.dispose()


@pytest.fixture(scope="module")
def live_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The app on `flask demo-data` plus a 1,000-epoch run, served over real HTTP."""
    app = make_app(database_url, tmp_path_factory.mktemp("web"))
    result = app.test_cli_runner().invoke(args=["demo-data"])
    assert result.exit_code == 0, result.output
    first = app.test_client().get("/api/runs/list?sort_by=id&sort_order=asc&limit=1")
    first_demo_id = first.get_json()["runs"][0]["id"]
    long_run_id = load_long_run(app)
    try:
        with serving(app) as url:
            yield LiveServer(url, app, long_run_id, first_demo_id)
    finally:
        empty_tables(app)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through chromedriver, with the browser console captured."""
    binaries = browser_binaries()
    if binaries is None:
        message = "Debian's chromium and chromium-driver are not installed"
        if os.environ.get("RUNS_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail(message + " (RUNS_TEST_REQUIRE_BROWSER=1)")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = binaries
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(chromedriver))
    driver.set_window_size(1280, 900)
    SCREENSHOTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
