"""Logging in and out of the desk in a real browser (headless Debian chromium, Selenium).

The cookies must work as a browser treats them (HttpOnly: no script sees the session;
the CSRF cookie of the login form comes back), against a real ``mailgate serve``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailgate.admin import logins
from tests.conftest import open_gateway
from tests.support import config_data, load_config, service_missing, write_config

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        service_missing("the browser tests need Debian's chromium and chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_an_agent_logs_in_and_out_in_a_real_browser(
    tmp_path: Path, database_url: str, serve_in_thread: Any, browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    data = config_data(
        tmp_path, database_url, {"listener": {"port": 0}, "web": {"listen": "127.0.0.1:0"}}
    )
    ctx = open_gateway(load_config(write_config(tmp_path / "mailgate.toml", data)))
    logins.set_password(ctx.config, "alice", "pässwörd with spaces")
    running = serve_in_thread(ctx, imap=False)
    base = running.gateway.web.url  # http://127.0.0.1:PORT/

    browser.get(base + "login")
    browser.find_element(By.NAME, "account").send_keys("alice@example.org")
    browser.find_element(By.NAME, "password").send_keys("wrong")
    browser.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
    wait = WebDriverWait(browser, 20)
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, ".error"))  # the answer's page
    assert "do not match" in browser.find_element(By.CSS_SELECTOR, ".error").text

    browser.find_element(By.NAME, "password").send_keys("pässwörd with spaces")
    browser.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
    wait.until(lambda b: b.current_url == base)
    assert browser.find_element(By.CSS_SELECTOR, ".who").text == "Alice Smith"
    assert "mailgate_session" not in browser.execute_script("return document.cookie")
    assert "mailgate_session" in {c["name"] for c in browser.get_cookies()}

    browser.find_element(By.CSS_SELECTOR, "form.logout button").click()
    wait.until(lambda b: b.current_url == base + "login")
    assert not browser.find_elements(By.CSS_SELECTOR, ".who")
    browser.get(base + "login")
    assert browser.current_url == base + "login"  # logged out: no redirect to the queue
    running.stop()
