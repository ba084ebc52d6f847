"""The desk's admin pages (issue 15): only admins see them, and each action is the CLI's.

Real mail makes the rows: a mail that kept killing the process is quarantined, spam
through the pipe is suspended, a relay refusing a recipient fails an outbox item,
strangers fill the circuit breaker. An admin then retries, releases, resets — and the
result is what ``mailgate quarantine retry`` & co. leave: a ticket, a sent mail.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import html
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mailgate import intake, outbox, store
from mailgate.admin import limits, logins, quarantine, settings, suspended
from mailgate.context import Context
from mailgate.envelope import Envelope
from mailgate.intake import receipts
from mailgate.store import receipts as receipt_rows
from mailgate.store import views
from mailgate.store.db import utcnow
from tests.relay import Relay
from tests.support import compose
from tests.webdesk import client_for, csrf, form_csrf, login

SPAM = {"X-Spam-Flag": "YES", "X-Spam-Status": "Yes, score=9.3"}


def crashed(ctx: Context, raw: bytes) -> int:
    """A mail whose processing killed the process MAX_ATTEMPTS times: quarantined unread
    (as serve's recovery job leaves it). Its receipt id."""
    sha256 = hashlib.sha256(raw).hexdigest()
    ctx.blobs.put(raw, sha256)
    message_id, sender = receipts.peek(raw, sha256)
    found, _ = receipts.receive(
        message_id, sha256, sender, len(raw), "smtp", "", Envelope(), receipts.fingerprint(raw)
    )
    when = utcnow()
    claimed: object = found
    while found.status != "quarantined":
        when += receipts.LEASE + dt.timedelta(seconds=1)  # the lease ran out: the process died
        with store.write_transaction():
            claimed = receipts.claim(found, when)
        assert claimed is not None
        again = receipt_rows.by_id(found.id)
        assert again is not None
        found = again
    return found.id


def suspended_mail(ctx: Context, body: str = "You have won a prize.\n") -> int:
    raw = compose(sender="Prize Office <winner@lottery.example>", headers=SPAM, body=body)
    assert intake.ingest(ctx, raw, source="pipe").action == "suspended"
    return int(suspended.listing()[0]["id"])  # newest first


def message(html: str) -> str:
    found = re.findall(r'class="(?:message|error)" role="(?:status|alert)">([^<]*)<', html)
    return " ".join(found).replace("&#39;", "'")


@pytest.fixture
def admin(web_client: TestClient) -> TestClient:
    login(web_client, "carol")
    return web_client


def test_an_agent_gets_404_on_every_admin_page_and_action(ctx: Context, web_client: TestClient) -> None:
    receipt = crashed(ctx, compose())
    spam = suspended_mail(ctx)
    login(web_client, "alice")
    token = csrf(web_client)
    for path in (
        "/admin",
        "/admin/quarantine",
        f"/admin/quarantine/{receipt}",
        "/admin/suspended",
        f"/admin/suspended/{spam}",
        "/admin/outbox",
        "/admin/limits",
        "/admin/config",
    ):
        answer = web_client.get(path)
        assert answer.status_code == 404, path
        assert "Admin" not in answer.text.split("<main>")[0], "the menu offers no admin link"
    for path in (
        f"/admin/quarantine/{receipt}/retry",
        f"/admin/quarantine/{receipt}/delete",
        f"/admin/suspended/{spam}/release",
        f"/admin/suspended/{spam}/delete",
        "/admin/outbox/1/retry",
        "/admin/limits/reset",
    ):
        assert web_client.post(path, data={"csrf": token}).status_code == 404, path
    # Nothing changed: the mails wait where they were.
    assert [r["id"] for r in quarantine.listing()] == [receipt]
    assert [r["id"] for r in suspended.listing()] == [spam]


def test_nobody_logged_in_is_sent_to_the_login(web_client: TestClient) -> None:
    answer = web_client.get("/admin/quarantine")
    assert answer.status_code == 303 and answer.headers["location"].endswith("/login")


def test_an_admin_retries_a_quarantined_mail_and_it_becomes_a_ticket(
    ctx: Context, admin: TestClient
) -> None:
    receipt = crashed(ctx, compose(subject="Card blocked <b>now</b>"))
    listed = admin.get("/admin/quarantine")
    assert listed.status_code == 200
    assert f"/admin/quarantine/{receipt}" in listed.text
    assert "processing did not finish in 3 attempts" in listed.text

    shown = admin.get(f"/admin/quarantine/{receipt}")
    assert shown.status_code == 200
    # The raw mail is shown as text, escaped: its markup is not the page's.
    assert "Subject: Card blocked &lt;b&gt;now&lt;/b&gt;" in shown.text
    assert "the entire mobile online banking system is down" in shown.text

    done = admin.post(f"/admin/quarantine/{receipt}/retry", data={"csrf": csrf(admin)})
    assert done.status_code == 303
    assert done.headers["location"] == f"/admin/quarantine?done=retried&id={receipt}"
    after = admin.get(done.headers["location"])
    ticket = views.receipt_json(views.receipt(receipt))["ticket"]
    assert ticket, "the mail made a ticket"
    assert message(after.text) == f"Mail {receipt} processed again: created [EB#{ticket}]"
    assert quarantine.listing() == []
    assert views.ticket(ticket).subject == "Card blocked <b>now</b>"


def test_a_usage_error_is_the_page_with_one_line(ctx: Context, admin: TestClient) -> None:
    intake.ingest(ctx, compose(), source="smtp")  # its acknowledgement waits in the outbox
    (item, *_) = outbox_rows(ctx)
    answer = admin.post(f"/admin/outbox/{item}/retry", data={"csrf": csrf(admin)})
    assert answer.status_code == 400
    assert message(answer.text) == (
        f"outbox item {item} is queued; only failed or uncertain mail is retried"
    )
    assert "Traceback" not in answer.text
    gone = admin.post("/admin/quarantine/999/retry", data={"csrf": csrf(admin)})
    assert gone.status_code == 400 and message(gone.text) == "no received mail with id 999"
    assert admin.get("/admin/quarantine/999").status_code == 404
    bad = admin.post("/admin/limits/reset", data={"csrf": csrf(admin), "ticket": "soon"})
    assert bad.status_code == 400 and message(bad.text) == "not a ticket number: 'soon'"


def outbox_rows(ctx: Context, status: str | None = None) -> list[int]:
    return [int(r["id"]) for r in views.outbox(status)]


def test_an_admin_releases_a_suspended_mail_and_deletes_another(
    ctx: Context, admin: TestClient
) -> None:
    spam = suspended_mail(ctx)
    page = admin.get(f"/admin/suspended/{spam}")
    assert page.status_code == 200 and "X-Spam-Flag: YES" in page.text
    done = admin.post(f"/admin/suspended/{spam}/release", data={"csrf": csrf(admin)})
    assert done.status_code == 303
    after = admin.get(done.headers["location"])
    ticket = views.receipt_json(views.receipt(spam))["ticket"]
    assert ticket and message(after.text) == f"Mail {spam} released: created [EB#{ticket}]"
    assert suspended.listing() == []

    other = suspended_mail(ctx, body="You have won again.\n")
    done = admin.post(f"/admin/suspended/{other}/delete", data={"csrf": csrf(admin)})
    assert done.status_code == 303
    assert message(admin.get(done.headers["location"]).text) == f"Suspended mail {other} deleted."
    assert suspended.listing() == []


@pytest.fixture
def smtp_admin(smtp_ctx: Context) -> Iterator[TestClient]:
    with client_for(smtp_ctx) as client:
        login(client, "carol")
        yield client


def test_an_admin_retries_a_failed_outbox_item_and_it_is_sent(
    smtp_ctx: Context, smtp_admin: TestClient, relay: Relay
) -> None:
    intake.ingest(smtp_ctx, compose(), source="smtp")
    relay.handler.rcpt_answers["carla@customer.example"] = "550 5.1.1 no such user (yet)"
    outbox.deliver(smtp_ctx.config)
    (failed,) = views.outbox("failed")
    page = smtp_admin.get("/admin/outbox")
    assert "Failed (1)" in page.text and "550 5.1.1" in page.text
    assert f'action="/admin/outbox/{failed["id"]}/retry"' in page.text

    relay.handler.rcpt_answers.clear()  # the customer's mailbox exists now
    done = smtp_admin.post(f"/admin/outbox/{failed['id']}/retry", data={"csrf": csrf(smtp_admin)})
    assert done.status_code == 303
    after = smtp_admin.get(done.headers["location"])
    assert message(after.text) == f"Outbox item {failed['id']} queued again, due now."
    assert "Failed (0)" in after.text
    outbox.deliver(smtp_ctx.config)
    assert [r["status"] for r in views.outbox() if r["id"] == failed["id"]] == ["sent"]
    assert any("carla@customer.example" in r.rcpt_tos for r in relay.received)


def test_the_outbox_page_counts_every_item_and_says_when_it_shows_only_the_newest(
    ctx: Context, admin: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailgate.admin import outbox as admin_outbox

    intake.ingest(ctx, compose(), source="smtp")
    waiting = views.outbox_count("queued")
    assert waiting >= 2
    page = admin.get("/admin/outbox")
    assert f"Waiting to leave ({waiting})" in page.text and "Showing the newest" not in page.text
    monkeypatch.setattr(admin_outbox, "LIMIT", waiting - 1)  # a listing of the newest only
    page = admin.get("/admin/outbox")
    assert f"Waiting to leave ({waiting})" in page.text
    assert f"Showing the newest {waiting - 1} of {waiting};" in page.text


@pytest.mark.config({"outbound": {"limits": {"overall": ["5/1h"], "per_ticket": ["20/1h"]}}})
def test_an_admin_resets_the_circuit_breaker(ctx: Context, admin: TestClient) -> None:
    for i in range(6):
        raw = compose(sender=f"stranger{i}@outside.example", subject=f"Question {i}")
        assert intake.ingest(ctx, raw, source="smtp").action == "created"
    held = limits.show(ctx.config)["held"]
    assert len(held) == 4
    page = admin.get("/admin/limits")
    assert "Held (4)" in page.text and "acknowledgements are held first" in page.text

    done = admin.post("/admin/limits/reset", data={"csrf": csrf(admin), "ticket": ""})
    assert done.status_code == 303
    after = admin.get(done.headers["location"])
    assert message(after.text).endswith(", 4 held mails due now.")
    assert limits.show(ctx.config)["held"] == []
    assert "Held (0)" in after.text


def test_a_post_without_the_csrf_token_is_403_and_changes_nothing(
    ctx: Context, admin: TestClient
) -> None:
    receipt = crashed(ctx, compose())
    spam = suspended_mail(ctx)
    for path in (
        f"/admin/quarantine/{receipt}/retry",
        f"/admin/quarantine/{receipt}/delete",
        f"/admin/suspended/{spam}/release",
        f"/admin/suspended/{spam}/delete",
        "/admin/limits/reset",
    ):
        assert admin.post(path, data={}).status_code == 403, path
        assert admin.post(path, data={"csrf": "forged"}).status_code == 403, path
    assert [r["id"] for r in quarantine.listing()] == [receipt]
    assert [r["id"] for r in suspended.listing()] == [spam]


def test_the_index_counts_what_waits(ctx: Context, admin: TestClient) -> None:
    crashed(ctx, compose())
    suspended_mail(ctx)
    page = admin.get("/admin")
    assert page.status_code == 200
    cells = dict(re.findall(r"<tr><th>([^<]+)</th><td>(?:<a [^>]*>)?([^<]*)<", page.text))
    assert cells["Quarantined mail"] == "1" and cells["Suspended mail"] == "1"
    assert "quarantine: 1 mail(s) not retried or deleted" in page.text


@pytest.mark.config(
    {
        "outbound": {"smtp": {"username": "mailgate", "password_env": "TEST_RELAY_PASSWORD"}},
        "webhook": [
            {
                "url": "https://hooks.example.com/services/T0/B0/hooktoken123",
                "events": ["ticket.created"],
                "secret_env": "TEST_HOOK_SECRET",
            }
        ],
    }
)
def test_the_config_page_never_shows_a_secret(
    ctx: Context, admin: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_RELAY_PASSWORD", "relay-pass-Zq81")
    monkeypatch.setenv("TEST_HOOK_SECRET", "hook-secret-Wv27")
    page = admin.get("/admin/config")
    assert page.status_code == 200
    text = page.text
    assert "TEST_RELAY_PASSWORD" in text and "TEST_HOOK_SECRET" in text  # the names only
    for secret in ("relay-pass-Zq81", "hook-secret-Wv27", "hooktoken123"):
        assert secret not in text
    key = Path(ctx.config.gateway.secret_key_file).read_bytes()
    assert key.decode("latin-1").strip() not in text
    assert "outbound.smtp.username" in text and "gateway.domain" in text


def test_urls_lose_their_passwords_and_env_values_are_hidden_everywhere(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = (
        "postgresql://mailgate:db-pass-Kx3@db.example.org:5432/helpdesk?sslmode=require&password=p2"
    )
    config = dataclasses.replace(
        ctx.config, database=dataclasses.replace(ctx.config.database, url=url)
    )
    rows = dict(settings.settings(config))
    assert rows["database.url"] == (
        '"postgresql://mailgate:***@db.example.org:5432/helpdesk?sslmode=%2A%2A%2A&password=%2A%2A%2A"'
    )
    # A value that equals a named secret is hidden wherever it would appear.
    monkeypatch.setenv("MAILGATE_SECRET_KEY", "helpdesk.example.org")
    assert dict(settings.settings(config))["gateway.domain"] == settings.HIDDEN


def test_behind_a_proxy_path_forms_and_redirects_keep_the_prefix(ctx: Context) -> None:
    receipt = crashed(ctx, compose())
    logins.set_password(ctx.config, "carol", "pw")
    with client_for(ctx, root_path="/helpdesk") as client:
        form = client.get("/helpdesk/login")
        client.post(
            "/helpdesk/login",
            data={"account": "carol", "password": "pw", "csrf": form_csrf(form.text)},
        )
        page = client.get("/helpdesk/admin/quarantine")
        assert page.status_code == 200
        assert f'action="/helpdesk/admin/quarantine/{receipt}/retry"' in page.text
        done = client.post(
            f"/helpdesk/admin/quarantine/{receipt}/retry", data={"csrf": form_csrf(page.text)}
        )
        assert done.status_code == 303
        assert done.headers["location"] == f"/helpdesk/admin/quarantine?done=retried&id={receipt}"


@pytest.mark.config(
    {"outbound": {"smtp": {"username": "mailgate", "password_env": "TEST_RELAY_PASSWORD"}}}
)
def test_mailgate_config_show_prints_the_same_settings_without_secrets(
    ctx: Context, config_path: Path, admin: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_RELAY_PASSWORD", "relay-pass-Zq81")
    shown = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(config_path), "config", "show"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert 'outbound.smtp.password_env = "TEST_RELAY_PASSWORD"' in shown
    assert "relay-pass-Zq81" not in shown
    lines = shown.splitlines()[1:]
    page = admin.get("/admin/config").text
    cells = re.findall(r"<tr><td><code>([^<]+)</code></td><td><code>([^<]*)</code>", page)
    assert [f"{k} = {html.unescape(v)}" for k, v in cells] == lines
