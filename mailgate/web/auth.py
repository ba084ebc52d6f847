"""Logins: password (Argon2) or a one-time link by mail, sessions, logout, rate limits.

``middleware(ctx)`` returns the session middleware (``cookies.Sessions``) that sets
``request.state.agent`` and ``request.state.csrf`` (see ``session.py``);
``routes`` has ``/login``, ``/login/link``, ``/logout``. The checks themselves
(passwords, rate limits, links) are ``mailgate.admin.logins``, shared with the CLI.

A login link opens a page with a button: only the POST it sends uses the link, so
a mail scanner that fetches every link in a mail does not spend it.
"""

from __future__ import annotations

import math
from typing import Any

import anyio.to_thread
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from mailgate.admin import logins
from mailgate.context import Context
from mailgate.store import utcnow
from mailgate.web import cookies
from mailgate.web.render import ctx_of, page
from mailgate.web.session import checked_form, current_agent

WRONG = "That account and password do not match."
LOCKED = "Too many failed logins. Try again in 15 minutes."
LINK_SENT = "If this is an agent's address, a link is on its way. It works once, for 15 minutes."
LINK_GONE = {
    "used": "This login link was used already. Ask for a new one below.",
    "expired": "This login link has expired. Ask for a new one below.",
    "unknown": "This login link is not valid. Ask for a new one below.",
}


def middleware(ctx: Context) -> list[Middleware]:
    return [Middleware(cookies.Sessions)]


def root_of(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def client_of(request: Request) -> str:
    return request.client.host if request.client else ""


def desk_url(request: Request) -> str:
    """Where agents reach the desk: ``[web] public_url``, else ``listen`` + ``root_path``.

    A wildcard or port-0 ``listen`` names no reachable address: then the address
    this request came to.
    """
    web = ctx_of(request).config.web
    if web.public_url:
        return web.public_url.rstrip("/")
    host, _, port = web.listen.rpartition(":")
    if web.listen and port != "0" and host.strip("[]") not in ("", "0.0.0.0", "::"):  # noqa: S104
        return f"http://{web.listen}{web.root_path}"
    return str(request.base_url).rstrip("/")


def _anonymous_page(
    request: Request, template: str, status_code: int = 200, **values: Any
) -> Response:
    """A page with forms for a visitor not logged in (their CSRF cookie set if missing)."""
    response = Response()  # collects the cookie the forms' CSRF token is tied to
    if current_agent(request) is None:
        request.state.csrf = cookies.login_csrf(request, response)
    html = page(request, template, status_code=status_code, **values)
    html.raw_headers.extend(h for h in response.raw_headers if h[0] == b"set-cookie")
    return html


def _login_page(request: Request, status_code: int = 200, **values: Any) -> Response:
    for name in ("error", "notice", "account"):
        values.setdefault(name, "")
    return _anonymous_page(request, "login.html", status_code, **values)


def login_form(request: Request) -> Response:
    if current_agent(request) is not None:
        return RedirectResponse(f"{root_of(request)}/", status_code=303)
    return _login_page(request)


async def login(request: Request) -> Response:
    form = await checked_form(request)
    account = str(form.get("account") or "").strip()
    password = str(form.get("password") or "")
    ctx = ctx_of(request)
    outcome = await anyio.to_thread.run_sync(
        logins.log_in, ctx.config, account, password, client_of(request)
    )
    if outcome.locked_until is not None:
        locked = _login_page(request, 429, error=LOCKED, account=account)
        wait = (outcome.locked_until - utcnow()).total_seconds()
        locked.headers["retry-after"] = str(max(1, math.ceil(wait)))
        return locked
    if outcome.agent is None:
        return _login_page(request, error=WRONG, account=account)
    response = RedirectResponse(f"{root_of(request)}/", status_code=303)
    await anyio.to_thread.run_sync(cookies.begin, request, response, outcome.agent)
    return response


async def logout(request: Request) -> Response:
    await checked_form(request)
    response = RedirectResponse(f"{root_of(request)}/login", status_code=303)
    await anyio.to_thread.run_sync(cookies.end, request, response)
    return response


async def ask_for_link(request: Request) -> Response:
    form = await checked_form(request)
    address = str(form.get("address") or "")
    await anyio.to_thread.run_sync(logins.request_link, ctx_of(request), address, desk_url(request))
    return _login_page(request, notice=LINK_SENT)


def link_page(request: Request) -> Response:
    state = logins.link_state(ctx_of(request), request.path_params["token"])
    if state != "usable":
        return _login_page(request, 410, error=LINK_GONE[state])
    return _anonymous_page(request, "login_link.html", token=request.path_params["token"])


async def use_link(request: Request) -> Response:
    await checked_form(request)
    ctx = ctx_of(request)
    token = request.path_params["token"]
    agent = await anyio.to_thread.run_sync(logins.use_link, ctx, token)
    if agent is None:
        state = await anyio.to_thread.run_sync(logins.link_state, ctx, token)
        return _login_page(request, 410, error=LINK_GONE.get(state, LINK_GONE["used"]))
    response = RedirectResponse(f"{root_of(request)}/", status_code=303)
    await anyio.to_thread.run_sync(cookies.begin, request, response, agent)
    return response


routes: list[BaseRoute] = [
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/login/link", ask_for_link, methods=["POST"]),
    Route("/login/link/{token}", link_page, methods=["GET"]),
    Route("/login/link/{token}", use_link, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
