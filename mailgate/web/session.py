"""Who is logged in, and the CSRF check every form passes — the contract the pages use.

The session middleware (``auth.middleware``) puts the logged-in agent on
``request.state.agent`` (None when nobody is) and the session's CSRF token on
``request.state.csrf``. Pages call ``require_agent`` (not logged in: to
``/login``), ``require_admin`` (not an admin: 404, like a page that is not there)
and ``checked_form`` (a POST whose ``csrf`` field is missing or wrong: 403,
nothing changed).
"""

from __future__ import annotations

import hmac

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request

from mailgate.config import Agent


class LoginRequired(Exception):
    """Raised by ``require_agent``; the app answers with a redirect to ``/login``."""


def current_agent(request: Request) -> Agent | None:
    agent: Agent | None = getattr(request.state, "agent", None)
    return agent


def require_agent(request: Request) -> Agent:
    agent = current_agent(request)
    if agent is None:
        raise LoginRequired(request.url.path)
    return agent


def require_admin(request: Request) -> Agent:
    agent = require_agent(request)
    if agent.role != "admin":
        raise HTTPException(404)
    return agent


def csrf_token(request: Request) -> str:
    token: str = getattr(request.state, "csrf", "")
    return token


async def checked_form(request: Request) -> FormData:
    """The POSTed form, once its CSRF token matched the session's; else 403."""
    form = await request.form()
    sent = form.get("csrf")
    expected = csrf_token(request)
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
        raise HTTPException(403, "the form has expired or did not come from the desk; reload it")
    return form
