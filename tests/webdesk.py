"""The web desk in tests: a Starlette TestClient of ``mailgate.web.create_app(ctx)``.

Fixtures: ``web_client`` (a client of the desk on the test's gateway, so on SQLite and
PostgreSQL). Helpers: ``login(client, agent_key, password="pw")`` sets the agent's
password through the function ``mailgate agents password`` uses and logs in with
the login form; ``csrf(client)`` is the CSRF token of the client's session (for
POSTing forms); ``client_for(ctx, root_path=..., client=...)`` builds another
client (behind a proxy path, from another address).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from mailgate.admin import logins
from mailgate.context import Context
from mailgate.store import weblogins
from mailgate.web import create_app
from mailgate.web.cookies import COOKIE

_HIDDEN_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


def client_for(
    ctx: Context, *, root_path: str = "", client: tuple[str, int] = ("127.0.0.1", 50000)
) -> TestClient:
    """A browser on the desk of ``ctx`` (not following redirects, so tests see them).

    With ``root_path`` (as a proxy serves it), ask for ``root_path + "/login"``.
    """
    return TestClient(
        create_app(ctx),
        root_path=root_path,
        client=client,
        follow_redirects=False,
    )


@pytest.fixture
def web_client(ctx: Context) -> Iterator[TestClient]:
    with client_for(ctx) as client:
        yield client


def form_csrf(html: str) -> str:
    """The CSRF token of the first form of a page."""
    found = _HIDDEN_CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def login(client: TestClient, agent_key: str, password: str = "pw") -> None:  # noqa: S107
    """Set ``agent_key``'s password (unless it is that already: a new password ends the
    agent's other sessions) and log in with it through ``POST /login``."""
    ctx: Context = client.app.state.ctx  # type: ignore[attr-defined]
    if not logins.password_matches(agent_key, password):
        logins.set_password(ctx.config, agent_key, password)
    page = client.get("/login")
    assert page.status_code == 200, page.text
    answer = client.post(
        "/login",
        data={"account": agent_key, "password": password, "csrf": form_csrf(page.text)},
    )
    assert answer.status_code == 303, answer.text


def csrf(client: TestClient) -> str:
    """The CSRF token of the client's session (what every form of the desk carries)."""
    cookie = client.cookies.get(COOKIE)
    assert cookie, "not logged in"
    token = cookie.strip('"').rpartition(".")[0]
    session = weblogins.session(weblogins.digest(token))
    assert session is not None, "no such session"
    return session.csrf
