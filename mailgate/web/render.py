"""Render a page: the template with what every page needs (agent, CSRF token, root path)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from mailgate.context import Context
from mailgate.web.session import csrf_token, current_agent


def ctx_of(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def page(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    env = request.app.state.templates
    html = env.get_template(template).render(
        request=request,
        agent=current_agent(request),
        csrf=csrf_token(request),
        root=request.scope.get("root_path", "").rstrip("/"),
        **values,
    )
    return HTMLResponse(html, status_code=status_code)
