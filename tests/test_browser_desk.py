"""An agent's day in a real browser (issue 15): chromium against ``serve`` with the desk.

An agent logs in through the login form, finds a ticket by full-text search, opens
it, downloads the customer's PDF (the same bytes), and answers: the answer reaches
the customer at a real SMTP relay. A customer's hostile HTML mail (``<script>``,
``onerror=``, a ``javascript:`` link, a remote image) executes nothing and loads
nothing, until the agent asks for the images. Screenshots of the queue and the
ticket land in build/screenshots/ (or ``$MAILGATE_SCREENSHOTS``).
"""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from mailgate import intake
from mailgate.admin import logins
from mailgate.context import Context
from tests.browser import Browser
from tests.relay import Relay
from tests.support import compose, wait_for

PASSWORD = "a long desk password"
WEB = {"web": {"listen": "127.0.0.1:0"}, "jobs": {"outbox_seconds": 1}}


def customer_mail(ctx: Context, **fields: Any) -> int:
    outcome = intake.ingest(ctx, compose(**fields), source="smtp")
    assert outcome.ticket_number is not None, outcome
    return int(outcome.ticket_number)


def same_origin(browser: Browser, base: str) -> None:
    desk = urlsplit(base).netloc
    made = browser.requests_made()
    assert made and all(urlsplit(url).netloc == desk for url in made), made


@pytest.mark.browser
@pytest.mark.config(WEB)
def test_an_agent_finds_downloads_and_answers_a_ticket_in_chromium(
    smtp_ctx: Context,
    relay: Relay,
    serve_in_thread: Callable[..., Any],
    browser: Browser,
    tmp_path: Path,
) -> None:
    ctx = smtp_ctx
    pdf = b"%PDF-1.4\n" + os.urandom(30_000) + b"\n%%EOF\n"
    number = customer_mail(
        ctx,
        subject="Kartenterminal zeigt Fehler 0x42",
        body="Hello,\n\nthe Kartenterminal in our shop shows error 0x42. Receipt attached.\n",
        attachments=[("application/pdf", "beleg.pdf", pdf)],
    )
    for i in range(3):
        customer_mail(ctx, sender=f"other{i}@customer.example", subject=f"Password reset {i}")
    running = serve_in_thread(ctx, smtp=False, imap=False)
    base = running.gateway.web.url.rstrip("/")
    logins.set_password(ctx.config, "alice", PASSWORD)

    browser.login(base, "alice", PASSWORD)
    assert browser.path == "/"
    assert len(browser.find_all("table.tickets tbody tr")) == 4
    browser.screenshot("queue")
    browser.submit("form.search", q="kartenterminal")
    rows = browser.find_all("table.tickets tbody tr")
    assert len(rows) == 1 and "Kartenterminal zeigt Fehler 0x42" in rows[0].text
    browser.click_and_wait(rows[0].find_element("css selector", "td.num a"))
    assert browser.path == f"/tickets/{number}"
    assert "the Kartenterminal in our shop shows error 0x42" in browser.find("main").text
    browser.screenshot("ticket")

    browser.find("a[download]").click()  # the browser saves it, as for a person
    saved = tmp_path / "downloads" / "beleg.pdf"
    wait_for(lambda: saved.exists() and saved.read_bytes() == pdf, timeout=30)

    answer = "Dear customer,\n\nplease restart the terminal; error 0x42 is a network timeout."
    browser.submit("form#reply", text=answer)
    assert browser.path == f"/tickets/{number}"

    def answered() -> list[Any]:
        return [
            r for r in relay.received
            if "carla@customer.example" in r.rcpt_tos and b"error 0x42 is a network" in r.content
        ]  # fmt: skip

    (mail,) = wait_for(answered, timeout=30)
    assert f"[EB#{number}]" in mail.message["Subject"]
    assert "please restart the terminal" in mail.message.get_body(("plain",)).get_content()
    browser.open(f"{base}/tickets/{number}")
    assert "please restart the terminal" in browser.find("main").text
    assert browser.console_errors() == []
    same_origin(browser, base)


class _Tracker(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []  # noqa: RUF012 (one server per test, reset by the fixture)

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/gif")
        self.end_headers()
        self.wfile.write(b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04"
                         b"\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")  # fmt: skip

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def tracker() -> Iterator[tuple[str, list[str]]]:
    """A web server on another origin, as a sender's tracking pixel would be."""
    _Tracker.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Tracker)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Tracker.hits
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.browser
@pytest.mark.config(WEB)
def test_hostile_customer_html_executes_nothing_and_loads_nothing_in_chromium(
    ctx: Context,
    serve_in_thread: Callable[..., Any],
    browser: Browser,
    tracker: tuple[str, list[str]],
) -> None:
    remote, hits = tracker
    html = (
        "<p>Hello, <b>see below</b>.</p>"
        "<script>console.error('xss-script'); document.title = 'owned'</script>"
        "<img src=\"nothing.png\" onerror=\"console.error('xss-onerror')\">"
        "<a id=\"js\" href=\"javascript:console.error('xss-link')\">click me</a>"
        f'<img alt="pixel" src="{remote}/pixel.gif">'
        "<svg onload=\"console.error('xss-svg')\"></svg>"
        f"<iframe src=\"{remote}/frame\"></iframe>"
    )
    number = customer_mail(ctx, subject="Look at this", body="Hello, see below.", html=html)
    running = serve_in_thread(ctx, smtp=False, imap=False)
    base = running.gateway.web.url.rstrip("/")
    logins.set_password(ctx.config, "alice", PASSWORD)
    browser.login(base, "alice", PASSWORD)

    browser.open(f"{base}/tickets/{number}")
    frame = browser.find("iframe.mail-html")
    assert frame.get_attribute("sandbox") is not None
    browser.driver.switch_to.frame(frame)
    assert "see below" in browser.driver.find_element("tag name", "body").text
    for link in browser.driver.find_elements("css selector", "a"):
        link.click()  # a javascript: link (if it survived at all) must not run
    browser.driver.switch_to.default_content()
    browser.screenshot("hostile-html")
    assert browser.driver.title != "owned"
    console = " ".join(e["message"] for e in browser.console())
    assert "xss-" not in console, console
    assert hits == []
    assert not [u for u in browser.requests_made() if u.startswith(remote)]

    # The control: asked for, the images do load (the test can see a remote request).
    browser.find(".frame-tools a").click()  # targets the frame: the page stays
    wait_for(lambda: hits, timeout=15)
    assert set(hits) == {"/pixel.gif"}  # the image; never the remote frame
    console = " ".join(e["message"] for e in browser.console())
    assert "xss-" not in console, console
