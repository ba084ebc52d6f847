"""The session cookie and the middleware that reads it on every request.

The cookie ``mailgate_session`` holds a random 32-byte token and its HMAC with the
gateway's secret key (a forged or mangled cookie is refused without a query); the
database keeps only the token's SHA-256, with the agent's key and the session's
CSRF token. ``Sessions`` looks the session up once per request (one query by
primary key, in a worker thread) and refreshes ``seen_at`` at most once a minute.
A session that ended, that was idle longer than ``[web] session_hours``, or whose
agent is no longer in the config, logs nobody in.

Before logging in, a visitor's forms (login, login link) carry a CSRF token tied
to the cookie ``mailgate_login`` (random, set by the login page).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailgate.config import Agent
from mailgate.context import Context
from mailgate.store import utcnow, weblogins

COOKIE = "mailgate_session"
LOGIN_COOKIE = "mailgate_login"
TOUCH_EVERY = dt.timedelta(minutes=1)


def _mac(secret: bytes, purpose: str, value: str) -> str:
    mac = hmac.new(secret, f"{purpose}:{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode().rstrip("=")


def _token_of(secret: bytes, cookie: str | None) -> str | None:
    """The session token of a cookie whose signature is right."""
    if not cookie or "." not in cookie:
        return None
    token, _, mac = cookie.rpartition(".")
    return token if hmac.compare_digest(mac, _mac(secret, "session", token)) else None


def cookie_path(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/") or "/"


def _set(request: Request, response: Response, name: str, value: str) -> None:
    ctx: Context = request.app.state.ctx
    response.set_cookie(
        name,
        value,
        path=cookie_path(request),
        httponly=True,
        samesite="lax",
        secure=ctx.config.web.secure_cookies,
    )


@dataclass(frozen=True)
class Found:
    agent: Agent
    session: weblogins.Session


def find(ctx: Context, token: str) -> Found | None:
    """The live session of ``token`` and its agent (None: nobody is logged in with it)."""
    found = weblogins.session(weblogins.digest(token))
    if found is None or found.ended_at is not None:
        return None
    now = utcnow()
    if now - found.seen_at > dt.timedelta(hours=ctx.config.web.session_hours):
        return None
    agent = ctx.config.agent(found.agent_key)
    if agent is None:
        return None  # removed from the config: logged out
    if now - found.seen_at >= TOUCH_EVERY:
        weblogins.touch(found.id_hash, now)
    return Found(agent, found)


def begin(request: Request, response: Response, agent: Agent) -> None:
    """Log ``agent`` in: a new session (any old one of this browser ends), its cookie set."""
    ctx: Context = request.app.state.ctx
    old = getattr(request.state, "session", None)
    if isinstance(old, weblogins.Session):
        weblogins.end_session(old.id_hash)
    token = secrets.token_urlsafe(32)
    weblogins.start_session(weblogins.digest(token), agent.key, secrets.token_urlsafe(32))
    _set(request, response, COOKIE, f"{token}.{_mac(ctx.secret, 'session', token)}")


def end(request: Request, response: Response) -> None:
    """Log out: the session ends server-side, the cookie is cleared."""
    found = getattr(request.state, "session", None)
    if isinstance(found, weblogins.Session):
        weblogins.end_session(found.id_hash)
    response.delete_cookie(COOKIE, path=cookie_path(request), httponly=True, samesite="lax")


def login_csrf(request: Request, response: Response | None = None) -> str:
    """The CSRF token of a visitor not logged in; sets ``mailgate_login`` when missing."""
    ctx: Context = request.app.state.ctx
    value = request.cookies.get(LOGIN_COOKIE)
    if not value:
        value = secrets.token_urlsafe(32)
        if response is not None:
            _set(request, response, LOGIN_COOKIE, value)
    return _mac(ctx.secret, "login", value)


class Sessions:
    """Sets ``request.state.agent``, ``.csrf`` and ``.session`` from the session cookie."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        ctx: Context = scope["app"].state.ctx
        token = _token_of(ctx.secret, request.cookies.get(COOKIE))
        found = await anyio.to_thread.run_sync(find, ctx, token) if token else None
        state = scope.setdefault("state", {})
        if found is not None:
            state.update(agent=found.agent, csrf=found.session.csrf, session=found.session)
        else:
            login = request.cookies.get(LOGIN_COOKIE)
            csrf = _mac(ctx.secret, "login", login) if login else ""
            state.update(agent=None, csrf=csrf, session=None)
        await self.app(scope, receive, _not_stored(send))


def _not_stored(send: Send) -> Send:
    """Pages and JSON (an agent's, or a form's CSRF token) are never kept by a cache."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = message.get("headers", [])
            names = {name.lower(): value for name, value in headers}
            kind = names.get(b"content-type", b"")
            if b"cache-control" not in names and kind.startswith(
                (b"text/html", b"application/json")
            ):
                message["headers"] = [*headers, (b"cache-control", b"no-store")]
        await send(message)

    return sending
