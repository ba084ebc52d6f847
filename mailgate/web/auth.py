"""Logins: password (Argon2) or a one-time link by mail, sessions, logout, rate limits.

``middleware(ctx)`` returns the session middleware (``cookies.Sessions``) that sets
``request.state.agent`` and ``request.state.csrf`` (see ``session.py``);
``routes`` has ``/login``, ``/login/link``, ``/logout``. The checks themselves
(passwords, rate limits, links) are ``mailgate.admin.logins``, shared with the CLI.
"""

from __future__ import annotations

import anyio.to_thread
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from mailgate.admin import logins
from mailgate.context import Context
from mailgate.web import cookies
from mailgate.web.render import ctx_of, page
from mailgate.web.session import checked_form, current_agent

WRONG = "That account and password do not match."
LOCKED = "Too many failed logins. Try again in 15 minutes."


def middleware(ctx: Context) -> list[Middleware]:
    return [Middleware(cookies.Sessions)]


def root_of(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def client_of(request: Request) -> str:
    return request.client.host if request.client else ""


def _login_page(request: Request, status_code: int = 200, **values: object) -> Response:
    response = Response()  # collects the cookie the form's CSRF token is tied to
    if current_agent(request) is None:
        request.state.csrf = cookies.login_csrf(request, response)
    values.setdefault("error", "")
    values.setdefault("notice", "")
    values.setdefault("account", "")
    html = page(request, "login.html", status_code=status_code, **values)
    html.raw_headers.extend(h for h in response.raw_headers if h[0] == b"set-cookie")
    return html


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
        return _login_page(request, 429, error=LOCKED, account=account)
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


routes: list[BaseRoute] = [
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
