"""The queue and a ticket in a real browser (headless Debian chromium, Selenium), on a real serve.

An agent logs in, finds a ticket by full-text search, opens it, downloads its attachment
(bytes identical), and answers — the customer's mail arrives at the real aiosmtpd relay.
The customer's HTML has a ``<script>``, an ``onerror=``, a ``javascript:`` link and a
remote image: the browser's console and network log show that nothing ran and nothing
was loaded, until the agent clicks "Load images" (which then loads the image: the check
can see a load). Screenshots of the queue and the ticket go to ``build/screenshots/``
(``MAILGATE_SCREENSHOTS`` to choose; not committed).
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailgate import intake, outbox
from mailgate.admin import logins
from tests.conftest import open_gateway
from tests.relay import Relay
from tests.support import compose, config_data, load_config, service_missing, wait_for, write_config

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SHOTS = Path(
    os.environ.get("MAILGATE_SCREENSHOTS", Path(__file__).parents[1] / "build" / "screenshots")
)
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 64


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        service_missing("the browser tests need Debian's chromium and chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1300,1400"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.set_page_load_timeout(30)
    driver.downloads = downloads
    yield driver
    driver.quit()


def hostile(tracker: str) -> str:
    """A customer's HTML that would reach ``tracker`` (host:port) if anything of it ran."""
    return (
        "<p>Hello <b>desk</b>, the card terminal is broken again.</p>"
        f"<script>console.log('PWNED script'); fetch('http://{tracker}/script')</script>"
        f'<img src="http://{tracker}/pixel.png" onerror="console.log(\'PWNED onerror\')">'
        f"<a href=\"javascript:fetch('http://{tracker}/link')\">click me</a>"
        f'<p style="background:url(http://{tracker}/bg.png)">styled</p>'
    )


@pytest.fixture
def tracker() -> Iterator[tuple[str, list[str]]]:
    """A web server that records every path asked of it: (host:port, the paths)."""
    seen: list[str] = []

    class Record(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Record)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


def requested(browser: Any) -> list[str]:
    """Every URL the browser asked for since the last call (its network log)."""
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_an_agent_finds_reads_downloads_and_answers_in_a_real_browser(
    tmp_path: Path,
    database_url: str,
    serve_in_thread: Any,
    relay: Relay,
    browser: Any,
    tracker: tuple[str, list[str]],
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    data = config_data(tmp_path, database_url, {
        "listener": {"port": 0}, "web": {"listen": "127.0.0.1:0"},
        "jobs": {"outbox_seconds": 3600, "due_seconds": 3600},
        "outbound": {"transport": "smtp", "smtp": {"host": relay.host, "port": relay.port,
                                                   "security": "none", "timeout": 5}},
    })  # fmt: skip
    ctx = open_gateway(load_config(write_config(tmp_path / "mailgate.toml", data)))
    logins.set_password(ctx.config, "alice", "pw")
    for n in range(3):
        intake.ingest(
            ctx, compose(subject=f"Password reset {n}", body="I forgot it.\n"), source="pipe"
        )
    outcome = intake.ingest(
        ctx,
        compose(subject="Card terminal broken", body="The card terminal is broken again.\n",
                html=hostile(tracker[0]), attachments=[("Kassenbeleg Mai.pdf", "application/pdf", PDF)]),
        source="pipe",
    )  # fmt: skip
    number = outcome.ticket
    running = serve_in_thread(ctx, imap=False)
    base = running.gateway.web.url.rstrip("/")
    wait = WebDriverWait(browser, 20)

    browser.get(base + "/login")
    browser.find_element(By.NAME, "account").send_keys("alice")
    browser.find_element(By.NAME, "password").send_keys("pw")
    browser.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
    wait.until(lambda b: b.current_url == base + "/")
    assert len(browser.find_elements(By.CSS_SELECTOR, "table.tickets tbody tr")) == 4
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "queue.png"))

    # Find it by full-text search.
    box = browser.find_element(By.NAME, "q")
    box.send_keys("terminal")
    box.submit()
    wait.until(lambda b: "q=terminal" in b.current_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "table.tickets tbody tr")
    assert len(rows) == 1 and f"#{number}" in rows[0].text
    requested(browser)  # what came before does not count
    rows[0].find_element(By.CSS_SELECTOR, "td.num a").click()
    wait.until(lambda b: b.current_url == f"{base}/tickets/{number}")

    # The mail's HTML, in its sandboxed frame: shown, but nothing ran and nothing loaded.
    frame = browser.find_element(By.CSS_SELECTOR, "iframe.mail-html")
    browser.switch_to.frame(frame)
    wait.until(lambda b: "Hello" in b.find_element(By.TAG_NAME, "body").text)
    browser.find_element(By.LINK_TEXT, "click me").click()  # was a javascript: link
    browser.switch_to.default_content()
    time.sleep(0.5)
    browser.save_screenshot(str(SHOTS / "ticket.png"))
    loaded = requested(browser)
    assert any(u.endswith("/html") for u in loaded), loaded
    assert not [u for u in loaded if tracker[0] in u], loaded
    assert tracker[1] == []  # nothing reached the tracker: no script, no image, no style
    console = [e["message"] for e in browser.get_log("browser")]
    assert not [m for m in console if "PWNED" in m], console

    # The attachment: the exact bytes.
    browser.find_element(By.PARTIAL_LINK_TEXT, "Kassenbeleg").click()
    saved = wait_for(lambda: [p for p in browser.downloads.iterdir() if p.suffix == ".pdf"])
    wait_for(lambda: saved[0].stat().st_size == len(PDF))
    assert saved[0].read_bytes() == PDF

    # Answer; the customer's mail arrives at the relay.
    browser.find_element(By.CSS_SELECTOR, "form#reply textarea").send_keys(
        "Hello Carla,\n\na new terminal is on its way.\n\nAlice"
    )
    browser.find_element(By.CSS_SELECTOR, "form#reply button[type=submit]").click()
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, ".done"))
    assert "Your reply was sent" in browser.find_element(By.CSS_SELECTOR, ".done").text

    def arrived() -> list[Any]:
        outbox.deliver(ctx.config)
        return [r for r in relay.received if "carla@customer.example" in r.rcpt_tos
                and "new terminal" in (r.message.get_body(("plain",)).get_content())]  # type: ignore[union-attr]  # fmt: skip

    (mail,) = wait_for(arrived)
    assert mail.message["Subject"].startswith("Re: [EB#")

    # "Load images": now the remote image is fetched — the network log does see loads.
    requested(browser)
    browser.find_element(By.LINK_TEXT, "Load images").click()
    assert wait_for(lambda: tracker[1]) == ["/pixel.png"]
    assert not [m for m in browser.get_log("browser") if "PWNED" in m["message"]]
    running.stop()
