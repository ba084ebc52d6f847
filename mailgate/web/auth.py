"""Logins: password (Argon2) or a one-time link by mail, sessions, logout, rate limits.

Owner: the auth work of issue 15. ``middleware(ctx)`` returns the session
middleware that sets ``request.state.agent`` and ``request.state.csrf`` (see
``session.py``); ``routes`` has ``/login``, ``/login/link``, ``/logout``.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from mailgate.context import Context

routes: list[BaseRoute] = []


def middleware(ctx: Context) -> list[Middleware]:
    return []
