"""Login links, rate limits, session expiry and CSRF on the web desk (issue 15)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re

import pytest
from starlette.testclient import TestClient

from mailgate.admin import logins
from mailgate.context import Context
from mailgate.store import models as m
from mailgate.store import utcnow
from tests.relay import Relay
from tests.webdesk import client_for, csrf, form_csrf, login

SENT = "If this is an agent&#39;s address, a link is on its way."


def logged_in(client: TestClient) -> bool:
    return client.get("/login").status_code == 303


def try_login(client: TestClient, account: str, password: str) -> object:
    page = client.get("/login")
    return client.post(
        "/login", data={"account": account, "password": password, "csrf": form_csrf(page.text)}
    )


def ask_link(client: TestClient, address: str) -> str:
    page = client.get("/login")
    answer = client.post("/login/link", data={"address": address, "csrf": form_csrf(page.text)})
    assert answer.status_code == 200
    return answer.text


def mailed_links() -> list[tuple[list[str], str]]:
    """(recipients, link) of every login-link mail in the outbox, oldest first."""
    found = []
    for item in (
        m.OutboxItem.select().where(m.OutboxItem.notice == "login_link").order_by(m.OutboxItem.id)
    ):
        mail = email.message_from_bytes(bytes(item.content), policy=email.policy.default)
        body = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        link = re.search(r"https?://\S+", body)
        assert link, body
        found.append((list(item.recipients), link.group(0)))
    return found


def test_a_login_link_is_mailed_confirmed_with_a_button_and_works_once(
    ctx: Context, web_client: TestClient
) -> None:
    for address in ("nobody@example.org", "Alice@Example.org", "carla@customer.example", "bob"):
        assert SENT in ask_link(web_client, address)  # the same answer whatever the address
    links = mailed_links()
    assert [to for to, _ in links] == [["alice@example.org"]]
    url = links[0][1]
    assert url.startswith("http://testserver/login/link/")
    path = url.removeprefix("http://testserver")
    # Fetching the link (as a mail scanner does) only shows the button.
    for _ in range(2):
        shown = web_client.get(path)
        assert shown.status_code == 200 and "Log in with your link" in shown.text
    assert not logged_in(web_client)
    assert web_client.post(path, data={"csrf": "forged"}).status_code == 403
    answer = web_client.post(path, data={"csrf": form_csrf(shown.text)})
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    assert logged_in(web_client)
    again = client_for(ctx)
    used = again.get(path)
    assert used.status_code == 410 and "was used already" in used.text
    assert again.post(path, data={"csrf": form_csrf(used.text)}).status_code == 410
    assert not logged_in(again)
    forged = again.get(path[:-3] + "abc")
    assert forged.status_code == 410 and "not valid" in forged.text


def test_a_login_link_expires_after_15_minutes_and_uses_public_url(ctx: Context) -> None:
    import dataclasses

    web = dataclasses.replace(ctx.config.web, public_url="https://desk.example.org/help/")
    client = client_for(dataclasses.replace(ctx, config=dataclasses.replace(ctx.config, web=web)))
    ask_link(client, "jane.doe@example.org")
    ((to, url),) = mailed_links()
    assert to == ["jane.doe@example.org"] and url.startswith(
        "https://desk.example.org/help/login/link/"
    )
    path = url.removeprefix("https://desk.example.org/help")
    page = client.get(path)
    m.WebLoginLink.update(expires_at=utcnow() - dt.timedelta(seconds=1)).execute()
    gone = client.post(path, data={"csrf": form_csrf(page.text)})
    assert gone.status_code == 410 and "has expired" in gone.text
    assert not logged_in(client)


def test_asking_for_links_too_often_sends_no_more(web_client: TestClient) -> None:
    for _ in range(logins.LINKS_PER_WINDOW + 3):
        assert SENT in ask_link(web_client, "bob@example.org")
    assert len(mailed_links()) == logins.LINKS_PER_WINDOW


def test_five_failures_for_one_account_lock_it_even_for_the_right_password(
    ctx: Context,
) -> None:
    logins.set_password(ctx.config, "alice", "right")
    for i in range(logins.ACCOUNT_LIMIT):  # from five addresses: the account is what counts
        wrong = try_login(client_for(ctx, client=(f"192.0.2.{i + 1}", 1)), "alice", "wrong")
        assert wrong.status_code == 200  # type: ignore[attr-defined]
    fresh = client_for(ctx, client=("192.0.2.99", 1))
    locked = try_login(fresh, "alice@example.org", "right")
    assert locked.status_code == 429  # type: ignore[attr-defined]
    assert "Too many failed logins" in locked.text  # type: ignore[attr-defined]
    assert 890 <= int(locked.headers["retry-after"]) <= 900  # type: ignore[attr-defined]
    assert not logged_in(fresh)
    assert try_login(fresh, "bob", "wrong").status_code == 200  # type: ignore[attr-defined]
    # 15 minutes after the lock began, the right password works again.
    for attempt in m.WebLoginAttempt.select():
        attempt.at -= dt.timedelta(minutes=15, seconds=1)
        attempt.save()
    assert try_login(fresh, "alice", "right").status_code == 303  # type: ignore[attr-defined]


def test_twenty_failures_from_one_address_lock_that_address(ctx: Context) -> None:
    logins.set_password(ctx.config, "bob", "right")
    noisy = client_for(ctx, client=("198.51.100.7", 1))
    for i in range(logins.CLIENT_LIMIT):
        assert try_login(noisy, f"guess{i}", "x").status_code == 200  # type: ignore[attr-defined]
    assert try_login(noisy, "bob", "right").status_code == 429  # type: ignore[attr-defined]
    other = client_for(ctx, client=("198.51.100.8", 1))
    assert try_login(other, "bob", "right").status_code == 303  # type: ignore[attr-defined]


def test_a_session_idle_longer_than_session_hours_ends(ctx: Context, web_client: TestClient) -> None:
    login(web_client, "alice")
    hours = ctx.config.web.session_hours
    m.WebSession.update(seen_at=utcnow() - dt.timedelta(hours=hours, minutes=-1)).execute()
    assert logged_in(web_client)  # still inside: and the request moved seen_at
    assert m.WebSession.get().seen_at > utcnow() - dt.timedelta(minutes=1)
    m.WebSession.update(seen_at=utcnow() - dt.timedelta(hours=hours, minutes=1)).execute()
    assert not logged_in(web_client)


@pytest.mark.parametrize("token", [None, "", "not-the-token"])
def test_a_post_without_a_valid_csrf_token_is_403_and_changes_nothing(
    ctx: Context, web_client: TestClient, token: str | None
) -> None:
    logins.set_password(ctx.config, "alice", "right")
    data = {"account": "alice", "password": "right"}
    if token is not None:
        data["csrf"] = token
    web_client.get("/login")
    assert web_client.post("/login", data=data).status_code == 403
    assert not logged_in(web_client)
    assert m.WebLoginAttempt.select().count() == 0 and m.WebSession.select().count() == 0
    link = {"address": "alice@example.org"} | ({"csrf": token} if token is not None else {})
    assert web_client.post("/login/link", data=link).status_code == 403
    assert m.OutboxItem.select().count() == 0
    login(web_client, "alice", "right")
    own = csrf(web_client)
    other = client_for(ctx)
    login(other, "bob")
    # The token of another session does not work either.
    assert other.post("/logout", data={"csrf": own}).status_code == 403
    assert logged_in(other)


def test_the_login_link_reaches_the_agent_through_the_relay_and_logs_in(
    smtp_ctx: Context, relay: Relay
) -> None:
    from mailgate import outbox

    client = client_for(smtp_ctx)
    ask_link(client, "carol@example.org")
    outbox.deliver(smtp_ctx.config)
    (mail,) = [r for r in relay.received if "carol@example.org" in r.rcpt_tos]
    assert mail.message["Auto-Submitted"] == "auto-generated"
    body = mail.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    link = re.search(r"http://testserver(/login/link/\S+)", body)
    assert link and "works once" in body
    page = client.get(link.group(1))
    answer = client.post(link.group(1), data={"csrf": form_csrf(page.text)})
    assert answer.status_code == 303 and logged_in(client)
