"""Admin pages (``/admin/...``): quarantine, suspended mail, outbox, limits, the config.

Admins only: anyone else gets 404, exactly like a page that is not there
(``session.require_admin``). ``/admin`` counts what waits (``mailgate status``'s
figures and problems); ``/admin/outbox`` lists failed, uncertain and waiting mail and
retries one; ``/admin/limits`` shows and clears the circuit breaker;
``/admin/config`` is the effective configuration, read-only, secrets hidden
(``mailgate.admin.settings``). The quarantine and suspended pages live in
``admin_queues``. Every action: POST with the CSRF token, the same function as the
CLI, a redirect with a line saying what happened; a ``UsageError`` is the page again
with that line (400).
"""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailgate.admin import limits, outbox, settings, status
from mailgate.errors import UsageError
from mailgate.web import admin_queues
from mailgate.web.admin_queues import act, back, number
from mailgate.web.render import ctx_of, page
from mailgate.web.session import require_admin

# The outbox page's sections: (heading, statuses listed, may an admin retry them).
OUTBOX_SECTIONS = (
    ("Failed", ("failed",), True),
    ("Uncertain (the relay may or may not have taken them)", ("uncertain",), True),
    ("Waiting to leave", ("queued", "claimed", "sending"), False),
)


def index(request: Request) -> Response:
    require_admin(request)
    config = ctx_of(request).config
    found = status.status(config)
    held = len(limits.show(config)["held"])
    return page(request, "admin_index.html", data=found.data, problems=found.problems, held=held)


def outbox_page(request: Request, error: str = "") -> Response:
    require_admin(request)
    sections = [
        (
            title,
            [row for s in statuses for row in outbox.listing(s)],
            retry,
            sum(outbox.count(s) for s in statuses),  # in all: a section lists the newest
        )
        for title, statuses, retry in OUTBOX_SECTIONS
    ]
    item = number(request, "id")
    done = request.query_params.get("done", "")
    message = f"Outbox item {item} queued again, due now." if done == "retried" and item else ""
    return page(
        request,
        "admin_outbox.html",
        status_code=400 if error else 200,
        sections=sections,
        message=message,
        error=error,
    )


async def outbox_retry(request: Request) -> Response:
    item_id: int = request.path_params["id"]
    return await act(
        request,
        lambda _form: outbox.retry(item_id),
        lambda error: outbox_page(request, error),
        lambda _done: back(request, "/admin/outbox", done="retried", id=item_id),
    )


def limits_page(request: Request, error: str = "") -> Response:
    require_admin(request)
    message = ""
    forgotten, released = number(request, "forgotten"), number(request, "released")
    if request.query_params.get("done") == "reset" and forgotten is not None:
        message = (
            f"Breaker cleared: {forgotten} counted mails forgotten,"
            f" {released or 0} held mails due now."
        )
    return page(
        request,
        "admin_limits.html",
        status_code=400 if error else 200,
        found=limits.show(ctx_of(request).config),
        message=message,
        error=error,
    )


def _reset(form: FormData) -> tuple[int, int]:
    """``mailgate limits reset [--ticket N] [--recipient ADDRESS]`` from the form."""
    text = str(form.get("ticket", "")).strip()
    ticket = None
    if text:
        digits = text.rpartition("#")[2]  # "EB#12", "#12" or "12"
        if not digits.isdigit():
            raise UsageError(f"not a ticket number: {text!r}")
        ticket = int(digits)
    return limits.reset(ticket, str(form.get("recipient", "")).strip())


async def limits_reset(request: Request) -> Response:
    return await act(
        request,
        _reset,
        lambda error: limits_page(request, error),
        lambda cleared: back(
            request, "/admin/limits", done="reset", forgotten=cleared[0], released=cleared[1]
        ),
    )


def config_page(request: Request) -> Response:
    require_admin(request)
    config = ctx_of(request).config
    return page(request, "admin_config.html", path=str(config.path), rows=settings.settings(config))


routes: list[BaseRoute] = [
    Route("/admin", index, methods=["GET"]),
    Route("/admin/outbox", outbox_page, methods=["GET"]),
    Route("/admin/outbox/{id:int}/retry", outbox_retry, methods=["POST"]),
    Route("/admin/limits", limits_page, methods=["GET"]),
    Route("/admin/limits/reset", limits_reset, methods=["POST"]),
    Route("/admin/config", config_page, methods=["GET"]),
    *admin_queues.routes,
]
