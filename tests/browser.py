"""Real-browser tests: Debian's chromium, headless, driven by Selenium and chromium-driver.

Fixtures: ``browser`` — a ``Browser`` (a fresh headless chromium per test) with the
driver as ``.driver`` and the helpers tests need: ``open(url)``, ``login(url, key,
password)`` through the desk's real login form, ``console_errors()`` (what the page
logged at SEVERE: script errors, blocked content, Content-Security-Policy
violations), ``requests_made()`` (every URL the browser asked for, from Chrome's
performance log) and ``screenshot(name)``. ``desk_in_browser`` — ``mailgate serve``
(``serve_in_thread``) with the desk on ``127.0.0.1:0`` and the URL it is on.

Screenshots go to ``$MAILGATE_SCREENSHOTS`` or ``build/screenshots/`` (not committed),
so a reviewer can look at the pages. Without chromium or chromedriver the tests skip
locally and fail under ``CI=true`` (``tests.support.service_missing``), like the other
real-service tests. Tests using these fixtures are marked ``@pytest.mark.browser``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support import service_missing

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS_ENV = "MAILGATE_SCREENSHOTS"
ROOT = Path(__file__).resolve().parents[1]


def screenshot_dir() -> Path:
    where = Path(os.environ.get(SCREENSHOTS_ENV) or ROOT / "build" / "screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where


@dataclass
class Browser:
    driver: Any  # selenium.webdriver.Chrome
    name: str  # the test's name: screenshots are named after it
    _logs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def open(self, url: str) -> None:
        self.driver.get(url)

    def find(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        found: list[Any] = self.driver.find_elements(By.CSS_SELECTOR, css)
        return found

    def submit(self, form_css: str, **fields: str) -> None:
        """Fill the named fields of a form and press its submit button, as a person would;
        returns once the next page has replaced this one."""
        from selenium.webdriver.common.by import By

        form = self.find(form_css)
        for name, value in fields.items():
            box = form.find_element(By.NAME, name)
            box.clear()
            box.send_keys(value)
        self.click_and_wait(form.find_element(By.CSS_SELECTOR, "button[type=submit]"))

    def click_and_wait(self, element: Any, timeout: float = 30) -> None:
        """Click something that loads a page (a link, a form's button) and wait for it."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.wait import WebDriverWait

        old = self.driver.find_element(By.TAG_NAME, "html")
        element.click()

        def replaced(_driver: Any) -> bool:
            # Not only StaleElementReference: while the next page replaces this one,
            # chromium may answer "Node with given id does not belong to the document".
            try:
                old.is_enabled()
            except WebDriverException:
                return True
            return False

        wait = WebDriverWait(self.driver, timeout)
        wait.until(replaced)
        wait.until(lambda d: d.execute_script("return document.readyState") == "complete")

    def login(self, base_url: str, key: str, password: str) -> None:
        """Log in through the desk's login form; the queue (or wherever it leads) is open after."""
        self.open(base_url.rstrip("/") + "/login")
        self.submit("form[action$='/login']", account=key, password=password)
        if "/login" in self.driver.current_url:
            errors = [e.text for e in self.find_all(".error")]
            raise AssertionError(f"login as {key} failed: {errors}")

    @property
    def path(self) -> str:
        from urllib.parse import urlsplit

        return urlsplit(self.driver.current_url).path

    def _read(self, kind: str) -> list[dict[str, Any]]:
        """A log since the browser started (Chrome hands each entry out once: keep them)."""
        self._logs.setdefault(kind, []).extend(self.driver.get_log(kind))
        return self._logs[kind]

    def forget_logs(self) -> None:
        """Start the console and network logs afresh (what came before is not asserted on)."""
        self._read("browser")
        self._read("performance")
        self._logs.clear()

    def console(self) -> list[dict[str, Any]]:
        """Every entry of the browser's console log (level, message, source)."""
        return list(self._read("browser"))

    def console_errors(self) -> list[str]:
        """What the pages logged as errors: failed loads, script errors, CSP violations."""
        return [e["message"] for e in self._read("browser") if e.get("level") == "SEVERE"]

    def requests_made(self, *, inline: bool = False) -> list[str]:
        """Every URL the browser requested (documents, styles, images, frames, fetches).

        ``data:`` and ``blob:`` URLs reach no server (chromium "requests" some for its own
        widgets, e.g. a date field's icon): left out unless ``inline``."""
        urls = []
        for entry in self._read("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                url = message["params"]["request"]["url"]
                if inline or not url.startswith(("data:", "blob:")):
                    urls.append(url)
        return urls

    def screenshot(self, name: str) -> Path:
        """A PNG of the whole visible page, named after the test and ``name``."""
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.name}-{name}")
        where = screenshot_dir() / f"{safe}.png"
        self.driver.set_window_size(1280, 800)  # measure the page, not the last window
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1280, max(800, min(int(height or 800), 6000)))
        assert self.driver.save_screenshot(str(where)), where
        return where


def _chrome(download_dir: Path) -> Any:
    for program in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(program):
            service_missing(
                f"real-browser tests need {program} (apt-get install chromium chromium-driver)"
            )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # chromium refuses to run as root with its sandbox
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(download_dir), "download.prompt_for_download": False},
    )
    service = Service(executable_path=CHROMEDRIVER, log_output=str(download_dir / "driver.log"))
    try:
        return webdriver.Chrome(service=service, options=options)
    except Exception as exc:  # the driver's errors are many classes; each means "no browser"
        service_missing(f"chromium did not start through chromedriver: {str(exc).splitlines()[0]}")
        raise


@pytest.fixture
def browser(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Browser]:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = _chrome(downloads)
    driver.set_page_load_timeout(30)
    try:
        yield Browser(driver, request.node.name)
    finally:
        driver.quit()


@dataclass
class DeskInBrowser:
    url: str  # the desk's base URL, ending in "/"
    gateway: Any  # the RunningGateway of tests.conftest


@pytest.fixture
def desk_in_browser(ctx: Any, serve_in_thread: Callable[..., Any]) -> DeskInBrowser:
    """``mailgate serve`` with the desk (``[web] listen`` must be set, e.g. on port 0)."""
    if not ctx.config.web.listen:
        raise AssertionError(
            'desk_in_browser needs @pytest.mark.config({"web": {"listen": "127.0.0.1:0"}})'
        )
    running = serve_in_thread(ctx, smtp=False, imap=False)
    assert running.gateway.web is not None, "serve did not start the desk"
    return DeskInBrowser(running.gateway.web.url, running)
