"""The desk's reports page (issue 15): the figures of ``mailgate report`` in a browser.

The page and its CSV must say what the CLI says for the same range (it is the same
``reports.build``); a bad range is one line, not a 500; the charts live under the
desk's Content-Security-Policy (no inline style anywhere).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mailgate import intake
from mailgate.admin import tickets
from mailgate.context import Context
from mailgate.reports import VOLUME
from mailgate.search.dates import zone
from mailgate.store.db import utcnow
from tests.support import compose
from tests.webdesk import login


def mailgate(config_path: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(config_path), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=config_path.parent,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def some_work(ctx: Context) -> None:
    """Three tickets, one of them answered and resolved by an agent."""
    created = [
        intake.ingest(ctx, compose(sender=f"c{i}@customer.example", subject=f"Q{i}"), source="smtp")
        for i in range(3)
    ]
    tickets.reply(ctx, created[0].ticket, "alice", "We are on it.")
    tickets.set_status(ctx, created[0].ticket, "resolved", actor="agent:alice")


def today(ctx: Context) -> str:
    """Today in the gateway's time zone: the day the report counts the work of this test in."""
    local = utcnow().replace(tzinfo=dt.UTC).astimezone(zone(ctx.config.gateway.timezone))
    return local.date().isoformat()


def figures(html: str) -> dict[str, str]:
    """The first table of the report: figure → value."""
    return dict(re.findall(r"<tr><td>([^<]+)</td><td>([^<]*)</td></tr>", html))


def test_the_page_shows_the_same_totals_as_mailgate_report_json(
    ctx: Context, config_path: Path, web_client: TestClient
) -> None:
    some_work(ctx)
    day = today(ctx)
    login(web_client, "alice")  # every agent sees the reports
    page = web_client.get(f"/reports?from={day}&to={day}")
    assert page.status_code == 200, page.text
    cli = json.loads(mailgate(config_path, "report", "--from", day, "--to", day, "--json"))
    shown = figures(page.text)
    for name in VOLUME:
        assert shown[name.replace("_", " ")] == str(cli["volume"][name]), name
    assert cli["volume"]["opened"] == 3 and cli["volume"]["resolved"] == 1
    assert shown["open tickets"] == str(cli["open_age"]["count"])
    assert page.text.count("<svg") == 4  # volume, response times, backlog, workload


def test_the_csv_download_is_mailgate_report_csv(
    ctx: Context, config_path: Path, web_client: TestClient
) -> None:
    some_work(ctx)
    day = today(ctx)
    login(web_client, "bob")
    page = web_client.get(f"/reports?from={day}&to={day}&by=team")
    link = re.search(r'href="(/reports\.csv\?[^"]+)"', page.text)
    assert link, "the page links its CSV"
    answer = web_client.get(link.group(1).replace("&amp;", "&"))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"].startswith("attachment;")
    expected = mailgate(config_path, "report", "--from", day, "--to", day, "--by", "team", "--csv")
    assert answer.text == expected
    assert "\nlevel1," in answer.text


@pytest.mark.parametrize(
    ("query", "line"),
    [
        ("from=2026-02-30", "--from: '2026-02-30' is not a date; use YYYY-MM-DD"),
        ("from=2026-03-10&to=2026-03-01", "--to 2026-03-01 is before --from 2026-03-10"),
        ("by=colour", "by: unknown grouping 'colour'; one of team, agent"),
        ("from=1990-01-01&to=2026-01-01", "the range is longer than 732 days"),
    ],
)
def test_a_bad_range_is_the_page_with_one_line(web_client: TestClient, query: str, line: str) -> None:
    login(web_client, "alice")
    page = web_client.get(f"/reports?{query}")
    assert page.status_code == 400
    (error,) = re.findall(r'<p class="error" role="alert">([^<]*)</p>', page.text)
    assert error.replace("&#39;", "'").startswith(line)
    assert "<svg" not in page.text and "Traceback" not in page.text
    csv = web_client.get(f"/reports.csv?{query}")
    assert csv.status_code == 400 and csv.text.replace("&#39;", "'").startswith(line)


def test_the_charts_obey_the_desks_content_security_policy(ctx: Context, web_client: TestClient) -> None:
    some_work(ctx)
    login(web_client, "carol")
    page = web_client.get("/reports?by=agent")
    assert page.status_code == 200
    assert "style-src 'self'" in page.headers["content-security-policy"]
    assert "'unsafe-inline'" not in page.headers["content-security-policy"]
    # Inline styles would be blocked by style-src 'self': the charts have none.
    assert "<svg" in page.text
    assert not re.search(r"<style|\sstyle=", page.text, re.I)
    assert not re.search(r"<script|\son[a-z]+=", page.text, re.I)


def test_nobody_logged_in_is_sent_to_the_login(web_client: TestClient) -> None:
    for path in ("/reports", "/reports.csv"):
        answer = web_client.get(path)
        assert answer.status_code == 303 and answer.headers["location"].endswith("/login")
