"""The ASGI application: routes of every page module, templates, static files, headers.

Each page module (``auth``, ``queue``, ``ticket``, ``reports_page``, ``admin_pages``,
``api``) exports ``routes``; this module only puts them together, adds the
middleware (trusted proxies, sessions, security headers) and the Jinja
environment the pages render with. Handlers are plain functions: Starlette runs
them in its thread pool, so a database call never blocks the event loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from mailgate.context import Context
from mailgate.web import admin_pages, api, auth, monitoring, queue, reports_page, ticket
from mailgate.web.headers import SecurityHeaders, TrustedProxies
from mailgate.web.render import page
from mailgate.web.session import LoginRequired

HERE = Path(__file__).parent


def templates() -> jinja2.Environment:
    """The desk's templates (package data), escaped by default."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def create_app(ctx: Context, *, metrics: Any = None) -> Starlette:
    """The desk for ``ctx``; ``metrics`` (serve's ``Metrics``) is shown on ``/metrics``."""
    routes: list[BaseRoute] = [
        *auth.routes,
        *queue.routes,
        *ticket.routes,
        *reports_page.routes,
        *admin_pages.routes,
        *api.routes,
        *monitoring.routes,
        Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(TrustedProxies, proxies=ctx.config.web.trusted_proxies),
            Middleware(SecurityHeaders),
            *auth.middleware(ctx),
        ],
        exception_handlers={LoginRequired: _to_login, HTTPException: _error_page},
    )
    app.state.ctx = ctx
    app.state.metrics = metrics
    app.state.templates = templates()
    return app


async def _to_login(request: Request, exc: Exception) -> Response:
    root = request.scope.get("root_path", "").rstrip("/")
    return RedirectResponse(f"{root}/login", status_code=303)


async def _error_page(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith(("/api/", f"{request.scope.get('root_path', '')}/api/")):
        from starlette.responses import JSONResponse

        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
    return page(
        request,
        "error.html",
        status_code=exc.status_code,
        status=exc.status_code,
        detail=exc.detail,
    )
