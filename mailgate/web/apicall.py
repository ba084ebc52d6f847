"""The plumbing of every JSON API call: the bearer token, the JSON body, errors as JSON.

``endpoint(handler)`` makes a Starlette endpoint of ``handler(call) -> Reply``:
it reads the body (JSON objects only, at most ``MAX_BODY`` bytes), then, in the
thread pool (the database is blocking), finds the agent of the
``Authorization: Bearer`` token and runs the handler. Every failure is one
sentence as ``{"error": ...}`` with its status — never a traceback:

* no token, or one that is unknown, revoked or of an agent no longer in the
  config: 401 with ``WWW-Authenticate: Bearer``;
* a body that is not a JSON object, a field of the wrong type: 400;
* what ``UsageError`` says (an unknown team, an empty reply): 422;
* the database unavailable: 503 with ``Retry-After``; a bug of ours: 500, logged.

The session cookie is never looked at: the API is authenticated by its token
only, so a page a browser has open cannot act through it (and no CSRF token is
needed: a browser never adds a bearer token by itself).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mailgate import store
from mailgate.admin import apitokens
from mailgate.config import Agent
from mailgate.context import Context
from mailgate.errors import MailgateError, TemporaryFailure, UsageError
from mailgate.web.render import ctx_of

log = logging.getLogger("mailgate.web.api")

MAX_BODY = 1_000_000  # bytes of JSON a call may send (a reply's text is far smaller)
REALM = 'Bearer realm="mailgate"'
UNAVAILABLE: tuple[type[Exception], ...] = (TemporaryFailure, *store.UNAVAILABLE)


class ApiError(Exception):
    """An answer other than success: ``status`` and one sentence."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


@dataclass(frozen=True)
class Call:
    """What a handler gets: the request, the Context, the token's agent, the JSON body."""

    request: Request
    ctx: Context
    agent: Agent
    body: dict[str, Any] = field(default_factory=dict)

    def path(self, name: str) -> Any:
        return self.request.path_params[name]

    def url(self, path: str) -> str:
        """``path`` under the root path the desk is served at (behind a proxy: its prefix)."""
        root: str = self.request.scope.get("root_path", "")
        return root.rstrip("/") + path


@dataclass(frozen=True)
class Reply:
    data: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Call], Reply]


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        try:
            body = await _body(request) if request.method in ("POST", "PUT", "PATCH") else {}
            reply = await run_in_threadpool(_authenticated, handler, request, body)
        except ApiError as exc:
            return error(exc.status, exc.message, exc.headers)
        except UsageError as exc:
            return error(422, _one_line(str(exc)))
        except UNAVAILABLE as exc:
            log.warning("API call %s %s: %s", request.method, request.url.path, exc)
            return error(503, "the database is not available; try again", {"Retry-After": "5"})
        except MailgateError as exc:
            return error(422, _one_line(str(exc)))
        except Exception:
            log.exception("API call %s %s failed", request.method, request.url.path)
            return error(500, "internal error; the server's log has the details")
        return JSONResponse(reply.data, status_code=reply.status, headers=reply.headers)

    run.__name__ = handler.__name__
    return run


def _authenticated(handler: Handler, request: Request, body: dict[str, Any]) -> Reply:
    ctx = ctx_of(request)
    return handler(Call(request, ctx, bearer_agent(request, ctx), body))


def bearer_agent(request: Request, ctx: Context) -> Agent:
    """The agent of the request's bearer token; 401 for none or one that is not valid."""
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "this needs an API token: send 'Authorization: Bearer <token>'"
            " (an admin makes one with `mailgate agents token KEY`)",
            {"WWW-Authenticate": REALM},
        )
    agent = apitokens.authenticate(ctx.config, token.strip())
    if agent is None:
        raise ApiError(
            401,
            "the API token is not valid (unknown, revoked, or its agent is no longer configured)",
            {"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
        )
    return agent


async def _body(request: Request) -> dict[str, Any]:
    """The JSON object the request carries ({} for none); 400/413 for anything else."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise ApiError(413, f"the body is larger than {MAX_BODY:,} bytes")
    if not raw.strip():
        return {}
    try:
        data = json.loads(bytes(raw))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {_one_line(str(exc))}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    return data


def fields(
    body: dict[str, Any], *, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()
) -> dict[str, str | None]:
    """The body's fields, each a string (or null for an optional one); 400 otherwise."""
    unknown = sorted(set(body) - set(required) - set(optional))
    if unknown:
        known = ", ".join((*required, *optional))
        raise ApiError(400, f"unknown field {unknown[0]!r}; this call takes: {known}")
    for name in required:
        if body.get(name) is None:
            raise ApiError(400, f"the field {name!r} is required")
    found: dict[str, str | None] = {}
    for name, value in body.items():
        if value is not None and not isinstance(value, str):
            raise ApiError(400, f"the field {name!r} must be a string")
        found[name] = value
    return found


def _one_line(text: str) -> str:
    return " ".join(text.split())
