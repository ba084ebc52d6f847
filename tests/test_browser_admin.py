"""The reports and admin pages in a real browser (issue 15): chromium against ``serve``.

An admin logs in through the login form, reads the report (its charts drawn under
the desk's Content-Security-Policy: the console shows no violation), then walks the
admin pages and retries a quarantined mail with the button. Nothing is requested
from anywhere but the desk. Screenshots land in build/screenshots/ (or
``$MAILGATE_SCREENSHOTS``) for a reviewer.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from mailgate import intake
from mailgate.admin import logins, quarantine
from mailgate.context import Context
from tests.browser import Browser, DeskInBrowser
from tests.support import compose
from tests.test_web_admin import crashed, suspended_mail

PASSWORD = "correct horse battery staple"


@pytest.mark.browser
@pytest.mark.config({"web": {"listen": "127.0.0.1:0"}})
def test_an_admin_reads_the_report_and_retries_a_quarantined_mail_in_chromium(
    ctx: Context, desk_in_browser: DeskInBrowser, browser: Browser
) -> None:
    for i in range(3):
        intake.ingest(ctx, compose(sender=f"c{i}@customer.example", subject=f"Q{i}"), source="smtp")
    receipt = crashed(ctx, compose(subject="Stuck <b>mail</b>"))
    suspended_mail(ctx)
    logins.set_password(ctx.config, "carol", PASSWORD)
    base = desk_in_browser.url.rstrip("/")

    browser.login(base, "carol", PASSWORD)
    browser.forget_logs()  # the login leads to the queue, which is not what this test is about
    browser.open(f"{base}/reports?by=team")
    assert browser.find("h1").text == "Reports"
    charts = browser.find_all(".report svg")
    assert len(charts) == 4 and all(c.size["width"] > 100 for c in charts)
    # desk.css styles the chart labels: the stylesheet applied, no inline style needed.
    label = browser.find(".report svg text")
    assert label.value_of_css_property("fill") in ("rgb(51, 51, 51)", "#333333")
    browser.screenshot("reports")
    assert browser.console_errors() == []

    browser.open(f"{base}/admin")
    assert "quarantine: 1 mail(s)" in browser.find("main").text
    browser.screenshot("admin")
    for page in ("suspended", "outbox", "limits", "config"):
        browser.open(f"{base}/admin/{page}")
        assert browser.path == f"/admin/{page}"
        browser.screenshot(f"admin-{page}")
    assert "correct horse" not in browser.driver.page_source

    browser.open(f"{base}/admin/quarantine/{receipt}")
    assert "Subject: Stuck <b>mail</b>" in browser.find("pre.raw").text  # shown, not rendered
    browser.screenshot("quarantined-mail")
    browser.open(f"{base}/admin/quarantine")
    browser.click_and_wait(
        browser.find(f"form[action$='/admin/quarantine/{receipt}/retry'] button")
    )
    assert browser.path == "/admin/quarantine"
    assert browser.find(".message").text.startswith(f"Mail {receipt} processed again: created")
    browser.screenshot("quarantine-after-retry")
    assert quarantine.listing() == []

    assert browser.console_errors() == []
    desk = urlsplit(base).netloc
    made = browser.requests_made()
    assert made and all(urlsplit(url).netloc == desk for url in made), made
