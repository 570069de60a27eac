"""The dashboard in headless Chromium on demo data, served over real HTTP.

For each page: no console error, every chart canvas has drawn coloured pixels, every
request stays on the service's origin (Performance API), keyboard focus reaches the main
controls, and screenshots at 1280 and 390 px go to tests/web/screenshots/. Plus the XSS
test, the token flow, and the timing of a 1,000-epoch run's page (recorded, not asserted).
"""

from __future__ import annotations

import json
import statistics
import time

import pytest
from selenium.common.exceptions import (
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from runs_service.demo_data import generate_demo_runs
from tests.helpers import ADMIN_AUTH, AUTH, READER_TOKEN, make_app
from tests.web.conftest import SCREENSHOTS, serving

pytestmark = pytest.mark.browser

WAIT_SECONDS = 60
TAB_LIMIT = 80
DESKTOP, PHONE = (1280, 900), (390, 844)

CHARTS_DRAWN = """
const areas = Array.from(document.querySelectorAll('#charts, #analytics-chart, #client-charts'));
return areas.length > 0 && areas.every(area => area.dataset.drawn === 'true');
"""
# Pixels of each chart canvas that are clearly coloured (series strokes and bars; axes,
# grid and labels are grey), so a canvas with only its axes counts as blank.
COLOURED_PIXELS = """
return Array.from(document.querySelectorAll('.uplot canvas')).map(canvas => {
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let coloured = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] < 128) continue;
    const high = Math.max(data[i], data[i + 1], data[i + 2]);
    const low = Math.min(data[i], data[i + 1], data[i + 2]);
    if (high - low > 80) coloured++;
  }
  return coloured;
});
"""
RESOURCES = "return performance.getEntriesByType('resource').map(entry => entry.name);"
ACTIVE_ELEMENT = """
const e = document.activeElement;
return e ? [e.tagName.toLowerCase(), e.id || '', (e.getAttribute('href') || ''),
            (e.textContent || '').trim().slice(0, 40), e.className || ''] : null;
"""


def console_errors(driver, allowed: tuple[str, ...] = ()) -> list[str]:
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and not any(text in entry["message"] for text in allowed)
    ]


def wait_for_charts(driver) -> None:
    try:
        WebDriverWait(driver, WAIT_SECONDS).until(lambda d: d.execute_script(CHARTS_DRAWN))
    except TimeoutException:
        log = [entry["message"] for entry in driver.get_log("browser")]
        pytest.fail(f"charts of {driver.current_url} not drawn; browser console: {log}")


def screenshot(driver, name: str, size: tuple[int, int]) -> None:
    """A full-page screenshot at the given width."""
    driver.execute_script("document.activeElement && document.activeElement.blur();")
    driver.set_window_size(*size)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(size[0], min(height + 140, 6000))
    driver.save_screenshot(str(SCREENSHOTS / f"{name}-{size[0]}.png"))
    driver.set_window_size(*DESKTOP)


def focus_trail(driver) -> list[list[str]]:
    """Press Tab from the top of the page and record every element that takes focus."""
    driver.execute_script(
        "document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);"
    )
    body = driver.find_element(By.TAG_NAME, "body")
    body.click()
    trail = []
    for _ in range(TAB_LIMIT):
        driver.switch_to.active_element.send_keys(Keys.TAB)
        trail.append(driver.execute_script(ACTIVE_ELEMENT))
    return trail


def reached(trail, *, element_id: str = "", href_part: str = "", text: str = "") -> bool:
    for _tag, ident, href, content, _class in trail:
        if element_id and ident == element_id:
            return True
        if href_part and href_part in href:
            return True
        if text and content.startswith(text):
            return True
    return False


def check_page(driver, base: str, path: str, name: str, charts: bool) -> list[list[str]]:
    """Load a page and hold it to the rules every page keeps; returns its focus trail."""
    driver.get_log("browser")  # drop what earlier pages left
    driver.get(base + path)
    WebDriverWait(driver, WAIT_SECONDS).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )
    if charts:
        wait_for_charts(driver)
        coloured = driver.execute_script(COLOURED_PIXELS)
        assert coloured, f"{path}: no chart canvas"
        assert all(count > 20 for count in coloured), f"{path}: blank chart canvas {coloured}"
    resources = driver.execute_script(RESOURCES)
    assert resources, f"{path}: no resources loaded"
    foreign = [url for url in resources if not url.startswith(base + "/")]
    assert not foreign, f"{path}: requests left the service's origin: {foreign}"
    assert console_errors(driver) == [], path
    trail = focus_trail(driver)
    screenshot(driver, name, DESKTOP)
    screenshot(driver, name, PHONE)
    if charts:
        wait_for_charts(driver)
    assert console_errors(driver) == [], path
    return trail


def test_run_list_page(live_server, browser):
    trail = check_page(browser, live_server.url, "/", "run-list", charts=False)
    assert reached(trail, element_id="f-status")
    assert reached(trail, text="Apply")
    assert reached(trail, href_part="/runs/")
    assert reached(trail, href_part="sort_by=")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.runs tbody tr")
    assert len(rows) == 50
    browser.find_element(By.CSS_SELECTOR, "#f-mode option[value=federated]").click()
    browser.find_element(By.CSS_SELECTOR, ".filters button[type=submit]").click()
    WebDriverWait(browser, WAIT_SECONDS).until(lambda d: "training_mode=federated" in d.current_url)
    modes = {
        cell.text.split(" ")[0]
        for cell in browser.find_elements(By.CSS_SELECTOR, "table.runs tbody td:nth-child(4)")
    }
    assert modes == {"federated"}


def test_centralized_run_page(live_server, browser):
    run_id = live_server.demo_id(2)
    trail = check_page(browser, live_server.url, f"/runs/{run_id}", "run-centralized", charts=True)
    assert reached(trail, href_part=f"/api/runs/{run_id}/download/csv")
    assert reached(trail, href_part="/runs") or reached(trail, text="Runs")
    assert browser.title.startswith(f"Run {run_id}")
    cells = browser.find_elements(By.CSS_SELECTOR, "table.cm td .cm-count")
    assert len(cells) == 4
    assert "95 % Wilson interval" in browser.page_source


def test_federated_run_page_marks_round_zero(live_server, browser):
    path = f"/runs/{live_server.demo_id(4)}"
    check_page(browser, live_server.url, path, "run-federated", charts=True)
    first_round = browser.find_element(By.CSS_SELECTOR, "table.rounds tbody tr")
    assert "initial model" in first_round.text
    assert first_round.text.startswith("0")


def test_federated_run_without_evaluations_says_so(live_server, browser):
    """Demo run 1 waits for its results file (the README's backfill example)."""
    path = f"/runs/{live_server.demo_id(1)}"
    check_page(browser, live_server.url, path, "run-federated-empty", charts=False)
    wait_for_charts(browser)
    assert "No server evaluation yet" in browser.find_element(By.ID, "main").text


def test_compare_page(live_server, browser):
    run_ids = ",".join(str(live_server.demo_id(number)) for number in (2, 7, 4))
    trail = check_page(
        browser, live_server.url, f"/compare?run_ids={run_ids}", "compare", charts=True
    )
    assert reached(trail, element_id="c-ids")
    assert browser.find_elements(By.CSS_SELECTOR, "table.compare-summary td.best")


def test_analytics_page(live_server, browser):
    trail = check_page(browser, live_server.url, "/analytics", "analytics", charts=True)
    assert reached(trail, element_id="a-status")
    assert reached(trail, href_part="/runs/")


def test_missing_run_page_is_html(live_server, browser):
    browser.get(live_server.url + "/runs/999999")
    heading = browser.find_element(By.TAG_NAME, "h1")
    assert heading.text == "Not found"
    assert "Run 999999 not found" in browser.page_source
    screenshot(browser, "not-found", DESKTOP)
    assert console_errors(browser, allowed=("404",)) == []


def test_run_description_with_markup_is_shown_as_text(live_server, browser):
    hostile = '<script>window.__xss = 1</script><img src="/x" onerror="window.__xss = 2">'
    client = live_server.app.test_client()
    run = client.post(
        "/api/runs",
        json={"training_mode": "centralized", "run_description": hostile},
        headers=AUTH,
    ).get_json()
    try:
        for path in (f"/runs/{run['id']}", "/?sort_by=id", f"/compare?run_ids={run['id']}"):
            browser.get(live_server.url + path)
            WebDriverWait(browser, WAIT_SECONDS).until(
                lambda d: d.execute_script("return document.readyState") == "complete"
            )
            assert browser.execute_script("return window.__xss") is None, path
            assert hostile in browser.find_element(By.TAG_NAME, "main").text, path
            assert console_errors(browser) == [], path
    finally:
        client.delete(f"/api/runs/{run['id']}", headers=ADMIN_AUTH)


def test_token_flow_when_reads_need_a_token(live_server, browser, database_url, tmp_path):
    app = make_app(database_url, tmp_path, RUNS_REQUIRE_AUTH_FOR_READS=True)
    with serving(app) as base:
        run_id = live_server.demo_id(2)
        browser.get(base + f"/runs/{run_id}")
        panel = browser.find_element(By.ID, "token-panel")
        WebDriverWait(browser, WAIT_SECONDS).until(lambda d: panel.is_displayed())
        assert "needs a token" in browser.find_element(By.ID, "token-message").text
        assert browser.switch_to.active_element.get_attribute("id") == "token-input"
        screenshot(browser, "token-asked", DESKTOP)

        browser.find_element(By.ID, "token-input").send_keys("not-the-token", Keys.ENTER)
        WebDriverWait(browser, WAIT_SECONDS).until(
            lambda d: "refused" in d.find_element(By.ID, "token-message").text
        )
        assert "not valid" in browser.find_element(By.ID, "token-message").text
        screenshot(browser, "token-refused", DESKTOP)

        field = browser.find_element(By.ID, "token-input")
        field.clear()
        field.send_keys(READER_TOKEN, Keys.ENTER)
        WebDriverWait(browser, WAIT_SECONDS).until(lambda d: d.find_elements(By.ID, "run"))
        wait_for_charts(browser)
        assert not browser.find_element(By.ID, "token-panel").is_displayed()
        assert browser.title.startswith(f"Run {run_id} · centralized")
        assert all(count > 20 for count in browser.execute_script(COLOURED_PIXELS))
        browser.get_log("browser")  # the refused attempt logged its 401s

        # The tab keeps the token: other pages load without asking again.
        browser.get(base + "/analytics")
        wait_for_charts(browser)
        assert not browser.find_element(By.ID, "token-panel").is_displayed()
        assert console_errors(browser) == []
        browser.find_element(By.ID, "forget-token").click()
        WebDriverWait(browser, WAIT_SECONDS).until(
            lambda d: d.find_element(By.ID, "token-panel").is_displayed()
        )
        browser.get_log("browser")


def test_long_run_page_timing(live_server, browser):
    """The run page of a 1,000-epoch run: time until its charts are drawn, and HTML time."""
    path = f"/runs/{live_server.long_run_id}"
    ready, html = [], []
    for _ in range(7):
        browser.get(live_server.url + path)
        wait_for_charts(browser)
        ready.append(int(browser.execute_script("return document.body.dataset.chartsDrawnAt")))
        html.append(
            browser.execute_script(
                "const n = performance.getEntriesByType('navigation')[0];"
                "return n.responseEnd - n.requestStart;"
            )
        )
    assert all(count > 20 for count in browser.execute_script(COLOURED_PIXELS))
    assert console_errors(browser) == []
    timings = {
        "page": path,
        "epochs": 1000,
        "charts_drawn_ms_p50": statistics.median(ready),
        "html_ms_p50": round(statistics.median(html), 1),
        "charts_drawn_ms_all": ready,
    }
    (SCREENSHOTS / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    print(json.dumps(timings))


POINTS_DRAWN = "return document.querySelector('#charts .chart').uplot.data[0].length;"
DATA_REQUESTS = """
return performance.getEntriesByType('resource')
  .filter(entry => entry.initiatorType === 'fetch')
  .filter(entry => entry.name.includes('/api/runs/' + arguments[0]))
  .map(entry => entry.responseStatus);
"""


def test_in_progress_run_page_refreshes_with_conditional_requests(live_server, browser):
    client = live_server.app.test_client()
    run = client.post(
        "/api/runs", json={"training_mode": "centralized", "run_description": "live"}, headers=AUTH
    ).get_json()
    run_id = run["id"]

    def log(first: int, last: int) -> None:
        batch = [
            {"metric_name": "val_acc", "metric_value": 0.5 + step / 100, "step": step}
            for step in range(first, last)
        ]
        answer = client.post(f"/api/runs/{run_id}/metrics", json={"metrics": batch}, headers=AUTH)
        assert answer.status_code == 200

    try:
        log(0, 3)
        browser.get(f"{live_server.url}/runs/{run_id}")
        wait_for_charts(browser)
        assert browser.execute_script(POINTS_DRAWN) == 3
        # Nothing changed yet: the next polls are answered 304.
        WebDriverWait(browser, WAIT_SECONDS).until(
            lambda d: 304 in d.execute_script(DATA_REQUESTS, str(run_id))
        )
        log(3, 6)
        WebDriverWait(browser, WAIT_SECONDS).until(lambda d: d.execute_script(POINTS_DRAWN) == 6)
        client.patch(f"/api/runs/{run_id}", json={"status": "completed"}, headers=AUTH)
        WebDriverWait(browser, WAIT_SECONDS).until(
            lambda d: "has ended" in d.find_element(By.ID, "charts-status").text
        )
        polls = len(browser.execute_script(DATA_REQUESTS, str(run_id)))
        time.sleep(6)  # one refresh period and more: the page has stopped polling
        assert len(browser.execute_script(DATA_REQUESTS, str(run_id))) == polls
        assert console_errors(browser) == []
    finally:
        client.delete(f"/api/runs/{run_id}", headers=ADMIN_AUTH)


def demo_runs_where(live_server, keep) -> set[int]:
    """Ids of the demo runs whose POST /api/runs body `keep` accepts."""
    return {
        live_server.demo_id(number)
        for number, demo in enumerate(generate_demo_runs(), start=1)
        if keep(demo.run)
    }


def is_gone(element) -> bool:
    """Whether the page that held element was replaced (selenium's staleness_of, widened)."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        # Chromium 156 sometimes reports an element of the previous document this way
        # instead of as stale.
        if "does not belong to the document" in str(error):
            return True
        raise
    return False


def apply_filters(driver, form: str, **fields: str) -> None:
    """Type into or choose in the filter form's fields (by id), submit, wait for the page."""
    for element_id, value in fields.items():
        field = driver.find_element(By.ID, element_id)
        if field.tag_name == "select":
            field.find_element(By.CSS_SELECTOR, f"option[value='{value}']").click()
        else:
            field.clear()
            if value:
                field.send_keys(value)
    old = driver.find_element(By.TAG_NAME, "main")
    driver.find_element(By.CSS_SELECTOR, f"{form} button[type=submit]").click()
    WebDriverWait(driver, WAIT_SECONDS).until(
        lambda d: is_gone(old) and d.execute_script("return document.readyState") == "complete"
    )
    assert console_errors(driver) == [], driver.current_url


def listed_run_ids(driver) -> list[int]:
    cells = driver.find_elements(By.CSS_SELECTOR, "table.runs tbody td:nth-child(2) a")
    return [int(cell.text) for cell in cells]


def test_run_list_filters_by_experiment_tag_and_text(live_server, browser):
    browser.get_log("browser")
    browser.get(live_server.url + "/")
    everything = listed_run_ids(browser)

    apply_filters(browser, ".filters", **{"f-experiment": "densenet-pneumonia"})
    assert "experiment=densenet-pneumonia" in browser.current_url
    densenet = demo_runs_where(live_server, lambda run: run["experiment"] == "densenet-pneumonia")
    shown = listed_run_ids(browser)
    assert 0 < len(shown) < len(everything)
    assert set(shown) == densenet
    assert (
        browser.find_element(By.ID, "f-experiment").get_attribute("value") == "densenet-pneumonia"
    )

    # A tag narrows the experiment's runs further: both filters hold.
    apply_filters(browser, ".filters", **{"f-tag": "iid"})
    iid = demo_runs_where(live_server, lambda run: "iid" in run["tags"])
    shown = listed_run_ids(browser)
    assert shown and set(shown) == densenet & iid
    assert all(
        "DenseNet121" in row.text and " IID " in row.text
        for row in browser.find_elements(By.CSS_SELECTOR, "table.runs tbody tr")
    )

    # Text search, case-insensitive, over descriptions (and external ids).
    apply_filters(browser, ".filters", **{"f-experiment": "", "f-tag": "", "f-q": "fedprox"})
    fedprox = demo_runs_where(
        live_server,
        lambda run: (
            "fedprox" in run["run_description"].lower() or "fedprox" in (run["external_id"] or "")
        ),
    )
    shown = listed_run_ids(browser)
    assert shown and set(shown) == fedprox
    assert browser.find_element(By.ID, "f-q").get_attribute("value") == "fedprox"

    apply_filters(browser, ".filters", **{"f-q": "no run is called this"})
    assert listed_run_ids(browser) == []
    assert "No runs match these filters." in browser.find_element(By.ID, "main").text
    screenshot(browser, "run-list-no-match", DESKTOP)


def test_analytics_filters_change_the_summary(live_server, browser):
    browser.get_log("browser")
    browser.get(live_server.url + "/analytics")
    wait_for_charts(browser)
    apply_filters(
        browser, ".filters", **{"a-mode": "federated", "a-status": "all", "a-rank": "recall"}
    )
    assert "training_mode=federated" in browser.current_url
    wait_for_charts(browser)
    federated = demo_runs_where(live_server, lambda run: run["training_mode"] == "federated")
    counts = browser.find_element(By.CSS_SELECTOR, "#mode-averages tbody tr").text
    assert counts.split()[-2:] == ["0", str(len(federated))], counts
    assert "Top runs by recall" in browser.find_element(By.ID, "main").text
    top = browser.find_elements(By.CSS_SELECTOR, "#top-heading ~ .table-scroll tbody tr")
    assert top
    ids = [int(row.find_element(By.CSS_SELECTOR, "td:nth-child(2)").text) for row in top]
    assert set(ids) <= federated
    assert all(
        row.find_element(By.CSS_SELECTOR, "td:nth-child(3)").text == "federated" for row in top
    )
    answer = live_server.app.test_client().get(
        "/api/runs/analytics/summary?training_mode=federated&status=all&rank_by=recall"
    )
    assert ids == [entry["run_id"] for entry in answer.get_json()["top_runs"]]
    # The form shows what it applied.
    assert (
        browser.find_element(By.CSS_SELECTOR, "#a-status option:checked").get_attribute("value")
        == "all"
    )
