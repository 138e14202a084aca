"""The console in a real headless Chromium (Debian's `chromium` and `chromium-driver`, driven
by Selenium): click through the pages, approve an approval, and check that stored markup runs
nothing. Nothing is downloaded: without the system browser the tests skip, and fail when
`PIKKU_TEST_REQUIRE_BROWSER=1` (set by `.ci/run`; the plugin's `PIKKU_TEST_REQUIRE` accepts
only servers and backends). With `PIKKU_CONSOLE_SCREENSHOTS=DIR` the run and thread
pages are saved there as PNG files.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pikku_storage.storage import open_storage
from tests.console._seed import HOSTILE_THREAD, IMG, SCRIPT, seed_hostile

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
REQUIRE_ENV = "PIKKU_TEST_REQUIRE_BROWSER"


def _missing() -> str | None:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            return f"{path} not found: apt-get install -y {package}"
    try:
        import selenium  # noqa: F401
    except ModuleNotFoundError:
        return "selenium is not installed: pip install -e '.[dev]'"
    return None


def _require_browser() -> None:
    reason = _missing()
    if reason is None:
        return
    if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
        pytest.fail(f"browser tests required ({REQUIRE_ENV}) but {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_serving(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the console exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(base + "/runs", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise RuntimeError("the console did not start listening within 60 s")


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`pikku-storage console --demo --allow-actions` on an SQLite file that also holds the
    hostile strings, served by uvicorn on a free loopback port."""
    _require_browser()
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'console.db'}"

    async def seed() -> None:
        async with open_storage(url) as storage:
            await seed_hostile(storage)

    asyncio.run(seed())
    port = _free_port()
    code = "from pikku_storage._cli import entry; entry()"
    command = [sys.executable, "-c", code, "console", url, "--demo", "--allow-actions"]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--refresh", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(base, server)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(base_url: str) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1400"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def _css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    found: list[Any] = driver.find_elements(By.CSS_SELECTOR, selector)
    return found


def _click_through(driver: Any, element: Any) -> None:
    """Click a link or a form's button and wait until the next page has replaced this one:
    a click returns before a POST-and-redirect has finished, so reading right after it can
    see the old page."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    element.click()
    wait = WebDriverWait(driver, 30)
    wait.until(expected_conditions.staleness_of(element))
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")


def _no_dialog(driver: Any) -> bool:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        driver.switch_to.alert  # noqa: B018  # raises when no dialog is open
    except NoAlertPresentException:
        return True
    return False


def _problems(driver: Any) -> list[str]:
    """Console errors of the pages seen since the last call (CSP violations among them)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def _screenshot(driver: Any, name: str) -> None:
    folder = os.environ.get("PIKKU_CONSOLE_SCREENSHOTS")
    if folder:
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, min(max(int(height), 800), 2400))
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / name))
        driver.set_window_size(1280, 1400)


def test_browser_opens_every_page_without_errors(browser: Any, base_url: str) -> None:
    """Every page renders under the CSP with no console error (blocked inline code would be)."""
    for path in ("/runs", "/threads", "/deployments", "/channels?topic=orders.shipped"):
        browser.get(base_url + path)
        assert _css(browser, "header.top nav a.here"), path
    browser.get(base_url + "/deployments")
    states = [cell.text for cell in _css(browser, "#deployments td span.status")]
    assert states == ["live", "stale"]
    browser.get(base_url + "/channels?topic=orders.shipped")
    assert len(_css(browser, "#subscribers li")) == 2
    assert _problems(browser) == []


def test_browser_clicks_from_runs_to_a_run_and_draws_its_timeline(
    browser: Any, base_url: str
) -> None:
    browser.get(base_url + "/runs?workflow=order-fulfilment&status=completed")
    links = _css(browser, "#runs td.id a")
    assert len(links) == 2
    # the older one: the run whose steps took seconds, with a retry
    _click_through(browser, links[1])
    assert "/runs/" in browser.current_url
    bars = _css(browser, "svg#timeline rect.bar")
    kinds = [bar.get_attribute("class") for bar in bars]
    assert kinds == [
        "bar b-succeeded",
        "bar b-failed",
        "bar b-succeeded",
        "bar b-succeeded",
        "bar b-succeeded",
    ]
    assert all(float(bar.get_attribute("width")) >= 4 for bar in bars)
    assert bars[0].rect["width"] > 4  # drawn with a visible size, not collapsed
    assert len(_css(browser, "svg#graph g.node")) == 4
    labels = [text.text for text in _css(browser, "svg#timeline text.label")]
    assert labels[1:3] == ["charge-card #1", "charge-card #2"]
    assert "ord-7731" in browser.find_element("css selector", "main").text
    _screenshot(browser, "console-run.png")
    assert _problems(browser) == []


def test_browser_approves_a_pending_approval_from_the_thread_page(
    browser: Any, base_url: str
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(base_url + "/threads?resource=customer-4410")
    _click_through(browser, browser.find_element(By.CSS_SELECTOR, "#threads td.id a"))
    assert "Waiting for approval (1)" in browser.find_element(By.ID, "pending").text
    assert _css(browser, ".toolcall.is-pending")
    _screenshot(browser, "console-thread.png")
    _click_through(browser, browser.find_element(By.CSS_SELECTOR, "#pending button.approve"))
    assert "/threads/" in browser.current_url
    assert _css(browser, "#pending") == []
    decisions = browser.find_element(By.ID, "agent-runs").text
    assert "approved call-cancel" in decisions
    assert _problems(browser) == []


def test_browser_runs_no_stored_markup(browser: Any, base_url: str) -> None:
    """03 escaping: markup in ids, names and payloads shows as text; no dialog, no element."""
    from urllib.parse import quote

    browser.get(base_url + "/runs")
    browser.get(base_url + f"/runs?workflow={quote(SCRIPT)}")
    _click_through(browser, browser.find_element("css selector", "#runs td.id a"))
    pages = [browser.current_url, base_url + f"/threads/{quote(HOSTILE_THREAD, safe='')}"]
    pages += [base_url + "/threads", base_url + f"/channels?channel={quote('ws-' + SCRIPT)}"]
    for page in pages:
        browser.get(page)
        assert _no_dialog(browser), page
        assert _css(browser, "img") == [], page
        scripts = [s.get_attribute("src") for s in _css(browser, "script")]
        assert scripts == [base_url + "/static/console.js"], page
        assert SCRIPT in browser.find_element("css selector", "main").text, page
    browser.get(pages[1])
    assert IMG in browser.find_element("css selector", "#transcript").text
    assert _problems(browser) == []


def test_browser_list_pages_reload_themselves(browser: Any, base_url: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(base_url + "/runs")
    browser.execute_script("window.pikkuMarker = 1;")
    WebDriverWait(browser, 30).until(
        lambda driver: driver.execute_script("return window.pikkuMarker === undefined;")
    )
    browser.get(base_url + "/channels")
    assert _css(browser, "#auto-refresh") == []  # lookup pages do not reload
