"""The docs site in a real browser: headless Chromium against ``featuresql docs serve`` on the example project.

Chromium and its driver are Debian's packages (``chromium``, ``chromium-driver``), driven
with Selenium; nothing is downloaded (the driver's path is given and SE_OFFLINE is set,
so Selenium Manager never runs). Without them the tests fail, saying how to install them.
Screenshots of the feature page and of a model page at 1280 and 1920 px are saved as
test artifacts (their paths are printed; with FEATURESQL_TEST_ARTIFACTS set they are also
copied into that folder).
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from projects import SMALL_VARS_ARG, copy_example

from featuresql.cli.main import cli as featuresql_cli

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = "apt-get install -y chromium chromium-driver"
NOW = "2026-06-30"
WAIT = 15  # seconds for the page to react


def _require_browser() -> None:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        pytest.fail(
            f"headless Chromium is needed for the docs site tests ({', '.join(missing)} missing): "
            f"install Debian's packages with `{INSTALL}` (ci/test.sh does)",
            pytrace=False,
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.fail("selenium is needed for the docs site tests: pip install -e '.[dev]'", pytrace=False)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example project, built, tested and documented."""
    folder = copy_example(tmp_path_factory.mktemp("docs_browser") / "project")
    for command in (["run", "--now", NOW], ["test", "--now", NOW], ["docs", "generate"]):
        result = CliRunner().invoke(featuresql_cli, ["--project-dir", str(folder), "--vars", SMALL_VARS_ARG, *command])
        assert result.exit_code == 0, (command, result.output)
    return folder


def _pump(stream: Any, lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


@pytest.fixture(scope="module")
def server(project: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``featuresql docs serve --port 0`` as a subprocess, and the URL it printed."""
    process = subprocess.Popen(
        [sys.executable, "-c", "from featuresql.cli.main import main; main()", "docs", "serve", "--port", "0"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    try:
        first = lines.get(timeout=30)
    except queue.Empty:
        process.kill()
        pytest.fail(f"docs serve printed nothing: {process.stderr.read() if process.stderr else ''}")
    found = re.search(r"http://127\.0\.0\.1:\d+/", first)
    assert found, first
    yield process, found.group(0)
    if process.poll() is None:
        process.kill()
        process.wait(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never download a browser or driver
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1800"):
        options.add_argument(argument)
    options.binary_location = str(CHROMIUM)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, condition: Any) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT).until(condition)


def _errors(driver: Any) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def _open(driver: Any, url: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url)
    _wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")


def _save_screenshot(driver: Any, path: Path) -> None:
    """A screenshot of the window as a test artifact: its path printed, copied to FEATURESQL_TEST_ARTIFACTS if set."""
    assert driver.save_screenshot(str(path)) and path.stat().st_size > 10_000
    print(f"\nscreenshot of the docs site: {path}")
    if os.environ.get("FEATURESQL_TEST_ARTIFACTS"):
        folder = Path(os.environ["FEATURESQL_TEST_ARTIFACTS"])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / path.name)


def _highlighted(driver: Any) -> set[str]:
    from selenium.webdriver.common.by import By

    return {node.get_attribute("data-node") for node in driver.find_elements(By.CSS_SELECTOR, "#lineage-graph .col.hl")}


def test_the_page_loads_without_console_errors(browser: Any, server: tuple[subprocess.Popen[str], str]) -> None:
    from selenium.webdriver.common.by import By

    _open(browser, server[1])
    assert browser.title == "overview · cash_advance docs"
    navigation = browser.find_element(By.ID, "nav").text
    assert "user_transactions" in navigation and "bank.transactions" in navigation
    models = browser.find_elements(By.CSS_SELECTOR, "#overview-models tbody tr")
    assert len(models) == 8  # advance_request, on demand, too
    pages = (
        "#/lineage",
        "#/model/user_transactions",
        "#/source/bank.transactions/amount",
        "#/model/advance_training",
        "#/model/advance_request",
        "#/model/advance_request/above_max_spend_7d",
    )
    for page in pages:
        browser.get(server[1] + page)
        _wait(browser, lambda d, page=page: d.find_element(By.ID, "main").get_attribute("data-page") == page[2:])
    assert _errors(browser) == []


def test_search_finds_a_feature(browser: Any, server: tuple[subprocess.Popen[str], str]) -> None:
    from selenium.webdriver.common.by import By

    _open(browser, server[1])
    browser.find_element(By.ID, "search").send_keys("amount_sum_7d")
    _wait(browser, lambda d: d.find_element(By.ID, "search-results").is_displayed())
    results = browser.find_elements(By.CSS_SELECTOR, "#search-results .search-result")
    found = [(r.get_attribute("data-model"), r.get_attribute("data-name")) for r in results]
    assert found[:2] == [("merchant_transactions", "amount_sum_7d"), ("user_transactions", "amount_sum_7d")], found
    assert "amount_sum_7d" in browser.find_element(By.ID, "search-results").text
    results[1].click()
    _wait(browser, lambda d: d.current_url.endswith("#/model/user_transactions/amount_sum_7d"))
    _wait(browser, lambda d: d.find_element(By.ID, "feature-name").text == "amount_sum_7d")
    # by description and by tag
    search = browser.find_element(By.ID, "search")
    search.send_keys("settled spend")
    _wait(browser, lambda d: "amount_sum_30d" in d.find_element(By.ID, "search-results").text)
    search.clear()
    search.send_keys("tag:merchant")
    first = (By.CSS_SELECTOR, "#search-results .search-result")
    _wait(browser, lambda d: d.find_element(*first).get_attribute("data-name") == "merchant_transactions")
    assert _errors(browser) == []


def test_clicking_a_feature_shows_its_lineage_path_and_sql(
    browser: Any, server: tuple[subprocess.Popen[str], str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    from selenium.webdriver.common.by import By

    _open(browser, server[1] + "#/model/user_spend_ratios")
    browser.find_element(By.CSS_SELECTOR, 'a.feature-link[href$="/spend_share_1d_of_30d"]').click()
    _wait(browser, lambda d: d.find_element(By.ID, "feature-name").text == "spend_share_1d_of_30d")
    assert _highlighted(browser) == {
        "model:user_spend_ratios.spend_share_1d_of_30d",
        "model:user_transactions.amount_sum_1d",
        "model:user_transactions.amount_sum_30d",
        "source:bank.transactions.amount",
    }
    downstream = {
        n.get_attribute("data-node") for n in browser.find_elements(By.CSS_SELECTOR, "#lineage-graph .col.hl-down")
    }
    assert downstream == {"online:user_spend_ratios.spend_share_1d_of_30d"}  # the online feature a service reads
    edges = browser.find_elements(By.CSS_SELECTOR, "#lineage-graph .col-edge.hl")
    assert len(edges) == 4  # amount -> the two sums, each sum -> the ratio
    assert browser.find_element(By.ID, "source-columns").text == "bank.transactions.amount"
    sql = browser.find_element(By.ID, "feature-sql")
    assert "amount_sum_1d / NULLIF(amount_sum_30d, 0)" in sql.text  # the feature's expression, shown
    assert "{{ ref('user_transactions') }}" in sql.text  # the model's source SQL, shown
    create = "CREATE OR REPLACE TABLE main.user_spend_ratios"
    assert create not in sql.text and create in sql.get_attribute("textContent")  # compiled: one tab away
    browser.find_element(By.XPATH, "//section[@id='feature-sql']//button[starts-with(., 'Compiled for dev')]").click()
    _wait(browser, lambda d: create in d.find_element(By.ID, "feature-sql").text)

    browser.execute_script("window.scrollTo(0, 0)")
    _save_screenshot(browser, tmp_path_factory.mktemp("artifacts") / "docs-feature-lineage.png")

    # a column clicked in the graph opens its page, with its own path
    browser.find_element(By.CSS_SELECTOR, '#lineage-graph [data-node="model:user_transactions.amount_last_7d"]').click()
    _wait(browser, lambda d: d.find_element(By.ID, "feature-name").text == "amount_last_7d")
    assert {"source:bank.transactions.amount", "source:bank.transactions.transaction_id"} <= _highlighted(browser)
    assert browser.find_element(By.ID, "source-columns").text.split("\n") == [
        "bank.transactions.amount",
        "bank.transactions.transaction_id",
        "bank.transactions.ts",
    ]
    assert _errors(browser) == []


def test_the_page_works_from_a_file_without_a_server(browser: Any, project: Path) -> None:
    from selenium.webdriver.common.by import By

    _open(browser, (project / "target" / "docs" / "index.html").as_uri() + "#/model/user_transactions")
    assert "Card spend per user" in browser.find_element(By.ID, "model-description").text
    assert "featuresql read user_id=42 -f user_transactions" in browser.find_element(By.ID, "model-online").text
    assert _errors(browser) == []


# What overflows on the page: its width against the window's, every table whose card does not
# contain it, and the lineage labels (per box: the rendered text of each column, and whether it fits).
LAYOUT = """
const card = (table) => table.closest(".card").getBoundingClientRect();
const boxes = {};
for (const box of document.querySelectorAll("#lineage-graph .box")) {
  const width = Number(box.querySelector(".box-bg").getAttribute("width"));
  boxes[box.dataset.box] = [...box.querySelectorAll(".col")].map((col) => {
    const text = col.querySelector("text");
    return [col.dataset.node, text.textContent, Number(text.getAttribute("x")) + text.getComputedTextLength() <= width];
  });
}
return {
  scrollWidth: document.documentElement.scrollWidth,
  innerWidth: window.innerWidth,
  height: document.documentElement.scrollHeight,
  tables: document.querySelectorAll("#main table").length,
  overflowing: [...document.querySelectorAll("#main table")].filter((table) => {
    const outer = card(table), inner = table.getBoundingClientRect();
    return inner.left < outer.left - 0.5 || inner.right > outer.right + 0.5;
  }).map((table) => table.closest(".card").querySelector("h2").textContent),
  boxes,
};
"""


@pytest.mark.parametrize("width", [1280, 1920])
def test_a_model_page_fits_the_window(
    browser: Any, server: tuple[subprocess.Popen[str], str], tmp_path: Path, width: int
) -> None:
    """Nothing is wider than the page; tables stay in their cards; lineage labels tell 1d, 7d and 30d apart."""
    from selenium.webdriver.common.by import By

    browser.set_window_size(width, 1000)
    try:
        _open(browser, server[1] + "#/model/user_transactions")
        _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#lineage-graph .box.hl-box"))
        layout = browser.execute_script(LAYOUT)
        assert layout["innerWidth"] == width
        assert layout["scrollWidth"] <= layout["innerWidth"], "the page scrolls sideways"
        assert layout["tables"] >= 4 and layout["overflowing"] == []  # columns, online, tests, run history
        for box, columns in layout["boxes"].items():
            labels = [label for _, label, _ in columns]
            assert len(set(labels)) == len(labels), (box, labels)
            assert all(fits for _, _, fits in columns), (box, columns)
        labels = {node: label for node, label, _ in layout["boxes"]["model:advance_training"]}
        sums = [labels[f"model:advance_training.user_transactions__amount_sum_{w}"] for w in ("1d", "7d", "30d")]
        assert len(set(sums)) == 3 and [label[-4:] for label in sums] == ["m_1d", "m_7d", "_30d"], sums
        browser.set_window_size(width, min(layout["height"] + 200, 8000))  # the whole page in the screenshot
        _save_screenshot(browser, tmp_path / f"docs-model-page-{width}.png")
        assert _errors(browser) == []
    finally:
        browser.set_window_size(1400, 1800)


ADVANCE_RISK = [  # the example's service: (output, model, feature)
    ("user_transactions__count_7d", "user_transactions", "count_7d"),
    ("user_transactions__amount_sum_30d", "user_transactions", "amount_sum_30d"),
    ("avg_spend_30d", "user_transactions", "amount_avg_30d"),
    ("user_spend_ratios__spend_share_1d_of_30d", "user_spend_ratios", "spend_share_1d_of_30d"),
    ("user_spend_ratios__transactions_per_day_7d", "user_spend_ratios", "transactions_per_day_7d"),
    ("user_spend_ratios__max_to_avg_amount", "user_spend_ratios", "max_to_avg_amount"),
    ("advance_request__amount_vs_avg_spend_30d", "advance_request", "amount_vs_avg_spend_30d"),  # on demand
    ("advance_request__above_max_spend_7d", "advance_request", "above_max_spend_7d"),
]


def test_a_service_page_shows_its_features_calls_and_lineage(
    browser: Any, server: tuple[subprocess.Popen[str], str], tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    browser.set_window_size(1280, 1000)
    try:
        _open(browser, server[1] + "#/service/advance_risk")
        _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#lineage-graph .col.focus"))
        assert browser.title == "advance_risk · cash_advance docs"
        rows = browser.find_elements(By.CSS_SELECTOR, "#service-features tbody tr")
        cells = [[td.get_attribute("textContent") for td in row.find_elements(By.TAG_NAME, "td")] for row in rows]
        links = [[a.get_attribute("textContent") for a in row.find_elements(By.TAG_NAME, "a")] for row in rows]
        assert [(row[0], *names) for row, names in zip(cells, links, strict=True)] == ADVANCE_RISK
        assert cells[1][3:] == ["DECIMAL(38,2)", "Settled spend over the last 30 days."]  # from the model's entry
        marked = [
            row.get_attribute("data-output") for row in rows if row.find_elements(By.CSS_SELECTOR, ".badge.on_demand")
        ]
        assert marked == [output for output, model, _ in ADVANCE_RISK if model == "advance_request"]
        alias = rows[2].find_element(By.CSS_SELECTOR, "a.feature-link")
        assert alias.get_attribute("href").endswith("#/model/user_transactions/amount_avg_30d")
        assert browser.find_element(By.ID, "service-declared").text == "features/services.yml:3"
        calls = browser.find_element(By.ID, "service-calls").text
        for snippet in (
            "featuresql extract --spine labels.parquet --service advance_risk --out training.parquet",
            'featuresql.extract("labels.parquet", service="advance_risk")',
            '{"service": "advance_risk", "entities": [{"user_id": 42, "advance_amount": 150.00}]}',
            "featuresql read user_id=42 advance_amount=150.00 --service advance_risk",
            "It must also carry the request columns of the on-demand features (advance_amount DECIMAL(12, 2))",
            "featuresql package-lambda --service advance_risk",
        ):
            assert snippet in calls, snippet
        assert "curl -s http://127.0.0.1:8080/features" in browser.find_element(By.ID, "service-calls").get_attribute(
            "textContent"
        )  # in a code block that scrolls sideways
        focus = {
            n.get_attribute("data-node") for n in browser.find_elements(By.CSS_SELECTOR, "#lineage-graph .col.focus")
        }
        assert focus == {f"online:{model}.{feature}" for _, model, feature in ADVANCE_RISK}  # what the reader serves
        assert {"source:bank.transactions.amount", "source:bank.transactions.ts"} <= _highlighted(browser)
        assert "model:user_transactions.amount_sum_1d" in _highlighted(browser)  # through the ratio's inputs
        layout = browser.execute_script(LAYOUT)
        assert layout["innerWidth"] == 1280
        assert layout["scrollWidth"] <= layout["innerWidth"], "the page scrolls sideways"
        assert layout["tables"] >= 3 and layout["overflowing"] == []  # source columns, features, response
        browser.set_window_size(1280, min(layout["height"] + 200, 8000))
        _save_screenshot(browser, tmp_path / "docs-service-page-1280.png")
        assert _errors(browser) == []
    finally:
        browser.set_window_size(1400, 1800)


def _search_hits(driver: Any) -> list[tuple[str, str]]:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, "#search-results .search-result")
    return [(hit.get_attribute("data-name"), hit.get_attribute("data-type")) for hit in found]


TAGGED_LENDING = [  # models first, then services, then features
    ("advance_request", "model"),
    ("advance_risk", "service"),
    ("above_max_spend_7d", "feature"),
    ("amount_vs_avg_spend_30d", "feature"),
]


def test_services_are_listed_and_searchable(browser: Any, server: tuple[subprocess.Popen[str], str]) -> None:
    from selenium.webdriver.common.by import By

    _open(browser, server[1])
    listed = browser.find_elements(By.CSS_SELECTOR, "#overview-services tbody tr")
    assert [row.find_element(By.TAG_NAME, "a").text for row in listed] == ["advance_risk"]
    assert "advance_risk" in browser.find_element(By.ID, "nav").text
    search = browser.find_element(By.ID, "search")
    first = (By.CSS_SELECTOR, "#search-results .search-result")
    for query in ("advance_risk", "approval model"):  # by name and description
        search.clear()
        search.send_keys(query)
        _wait(browser, lambda d: d.find_element(*first).get_attribute("data-name") == "advance_risk")
        assert browser.find_element(*first).get_attribute("data-type") == "service"
    search.clear()
    search.send_keys("tag:lending")  # by tag: the on-demand model and its features carry it too
    _wait(browser, lambda d: _search_hits(d) == TAGGED_LENDING)
    search.clear()
    search.send_keys("advance_risk")
    _wait(browser, lambda d: d.find_element(*first).get_attribute("data-name") == "advance_risk")
    browser.find_element(*first).click()
    _wait(browser, lambda d: d.find_element(By.ID, "main").get_attribute("data-page") == "service/advance_risk")
    assert _errors(browser) == []


def test_an_on_demand_model_page_shows_its_request_expressions_and_lineage(
    browser: Any, server: tuple[subprocess.Popen[str], str], tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    browser.set_window_size(1280, 1000)
    try:
        _open(browser, server[1] + "#/model/advance_request")
        _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#lineage-graph .box.hl-box"))
        assert "on demand" in browser.find_element(By.CSS_SELECTOR, "h1 .badge.on_demand").text
        request = browser.find_element(By.ID, "on-demand-request").text
        assert "advance_amount DECIMAL(12, 2)" in request and "amount_vs_avg_spend_30d" in request
        rows = browser.find_elements(By.CSS_SELECTOR, "#model-columns tbody tr")
        cells = [[td.get_attribute("textContent") for td in row.find_elements(By.TAG_NAME, "td")] for row in rows]
        assert cells[0][:4] == [
            "amount_vs_avg_spend_30d",
            "request.advance_amount / NULLIF(user_transactions.amount_avg_30d, 0)",
            "user_transactions.amount_avg_30d",
            "DOUBLE",
        ]
        computed = browser.find_element(By.ID, "on-demand-computed").text
        assert "the spine's columns are the request (it must carry advance_amount)" in computed
        assert "featuresql extract --spine labels.parquet -f advance_request" in computed
        online = browser.find_element(By.ID, "model-online").text
        assert "featuresql read user_id=42 advance_amount=150.00 -f advance_request" in online
        assert "computed per request" in online  # no missing value of its own
        assert "from main.user_transactions" in browser.find_element(By.ID, "model-sql").get_attribute("textContent")
        kinds = {
            box.get_attribute("data-box"): box.get_attribute("class")
            for box in browser.find_elements(By.CSS_SELECTOR, "#lineage-graph .box.hl-box")
        }
        assert kinds["model:advance_request"] == "box on_demand hl-box" and "model:user_transactions" in kinds
        assert kinds["request:advance_request"] == "box request hl-box"  # its request, an input like a source
        layout = browser.execute_script(LAYOUT)
        assert layout["scrollWidth"] <= layout["innerWidth"] and layout["overflowing"] == []
        browser.set_window_size(1280, min(layout["height"] + 200, 8000))
        _save_screenshot(browser, tmp_path / "docs-on-demand-page-1280.png")
        browser.set_window_size(1280, 1000)
        # a feature's page: its path to the request column and, through the model features it reads, the sources
        browser.find_element(By.CSS_SELECTOR, 'a.feature-link[href$="/amount_vs_avg_spend_30d"]').click()
        _wait(browser, lambda d: d.find_element(By.ID, "feature-name").text == "amount_vs_avg_spend_30d")
        assert {
            "model:advance_request.amount_vs_avg_spend_30d",
            "model:user_transactions.amount_avg_30d",
            "request:advance_request.advance_amount",
            "source:bank.transactions.amount",
        } <= _highlighted(browser)
        downstream = {
            n.get_attribute("data-node") for n in browser.find_elements(By.CSS_SELECTOR, "#lineage-graph .col.hl-down")
        }
        assert downstream == {"online:advance_request.amount_vs_avg_spend_30d"}
        props = browser.find_element(By.ID, "feature-props").text
        assert "user_transactions.amount_avg_30d" in props and "advance_amount" in props
        assert _errors(browser) == []
    finally:
        browser.set_window_size(1400, 1800)


def test_ctrl_c_stops_the_server(server: tuple[subprocess.Popen[str], str]) -> None:
    process = server[0]
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=10) == 130
