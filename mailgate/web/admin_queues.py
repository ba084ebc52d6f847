"""Admin pages for mail that made no ticket: the quarantine and the suspended queue.

``/admin/quarantine`` (list, one mail with its raw headers and text, retry, delete)
and ``/admin/suspended`` (list, one mail, release, delete). Each action is a POST
through ``session.checked_form`` (CSRF) calling the same function as ``mailgate
quarantine …`` / ``mailgate suspended …`` (``mailgate.admin``), then a redirect back
with a line saying what happened (post/redirect/get). A ``UsageError`` is the page
again with that line (400). Also the helpers the other admin pages share.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from mailgate.admin import quarantine, suspended
from mailgate.errors import UsageError
from mailgate.mail.subject import format_tag
from mailgate.web.render import ctx_of, page
from mailgate.web.session import checked_form, require_admin

# Enough of a raw mail to see what is wrong with it; the rest is cut (and said so).
RAW_SHOWN = 256 * 1024


# --- shared by the admin pages --------------------------------------------------------------


def back(request: Request, path: str, **params: str | int) -> RedirectResponse:
    """Post/redirect/get: to ``path`` with what happened as plain ids and codes.

    Only codes and numbers travel in the URL; the line shown is built from them and
    from the database, so a crafted link cannot put words on an admin's screen.
    """
    root = request.scope.get("root_path", "").rstrip("/")
    query = f"?{urlencode(params)}" if params else ""
    return RedirectResponse(f"{root}{path}{query}", status_code=303)


def number(request: Request, name: str) -> int | None:
    try:
        return int(request.query_params.get(name, ""))
    except ValueError:
        return None


async def act(
    request: Request,
    work: Callable[[FormData], Any],
    on_error: Callable[[str], Response],
    then: Callable[[Any], Response],
) -> Response:
    """An admin's action: check the admin and the CSRF token, run ``work(form)`` off the
    event loop, answer ``then(what it returned)`` — or, on a ``UsageError``, the page
    ``on_error`` draws with its line (status 400)."""
    require_admin(request)  # before the form: an agent learns nothing, not even "403"
    form = await checked_form(request)
    try:
        result = await run_in_threadpool(work, form)
    except UsageError as exc:
        failed: Response = await run_in_threadpool(on_error, str(exc))
        return failed
    return then(result)


def processed_line(request: Request, receipt_id: int, verb: str) -> str:
    """'Mail 7 retried: created EB#12' — from the receipt as it is now."""
    try:
        facts, _path = quarantine.show(ctx_of(request), receipt_id)
    except UsageError:
        return ""
    if facts["status"] == "quarantined":
        return f"Mail {receipt_id} {verb}: still quarantined — {facts['reason']}"
    tag = ""
    if facts["ticket"]:
        tag = " " + format_tag(ctx_of(request).config.gateway.ticket_prefix, facts["ticket"])
    return f"Mail {receipt_id} {verb}: {facts['action'] or facts['status']}{tag}"


def raw_text(raw: bytes) -> tuple[str, str, bool]:
    """(headers, text, cut): the raw mail split at its first blank line, decoded leniently."""
    cut = len(raw) > RAW_SHOWN
    shown = raw[:RAW_SHOWN].decode("utf-8", "replace")
    for sep in ("\r\n\r\n", "\n\n"):
        head, found, rest = shown.partition(sep)
        if found:
            return head, rest, cut
    return shown, "", cut


# --- the quarantine ---------------------------------------------------------------------------


def quarantine_page(request: Request, error: str = "") -> Response:
    require_admin(request)
    done, receipt_id = request.query_params.get("done", ""), number(request, "id")
    message = ""
    if receipt_id is not None and done == "retried":
        message = processed_line(request, receipt_id, "processed again")
    elif receipt_id is not None and done == "deleted":
        message = f"Mail {receipt_id} is out of the quarantine (its raw mail stays)."
    return page(
        request,
        "admin_quarantine.html",
        status_code=400 if error else 200,
        rows=quarantine.listing(),
        message=message,
        error=error,
    )


def quarantine_mail(request: Request) -> Response:
    require_admin(request)
    receipt_id: int = request.path_params["id"]
    ctx = ctx_of(request)
    try:
        facts, _path = quarantine.show(ctx, receipt_id)
        raw = quarantine.raw(ctx, receipt_id)
    except UsageError as exc:
        raise HTTPException(404, str(exc)) from None
    headers, text, cut = raw_text(raw)
    return page(
        request,
        "admin_mail.html",
        kind="quarantine",
        facts=facts,
        headers=headers,
        text=text,
        cut=cut,
        actions=[("retry", "Retry"), ("delete", "Delete")] if facts["status"] == "quarantined"
        else [],
    )  # fmt: skip


async def quarantine_retry(request: Request) -> Response:
    receipt_id: int = request.path_params["id"]
    ctx = ctx_of(request)
    return await act(
        request,
        lambda _form: quarantine.retry(ctx, receipt_id),
        lambda error: quarantine_page(request, error),
        lambda _done: back(request, "/admin/quarantine", done="retried", id=receipt_id),
    )


async def quarantine_delete(request: Request) -> Response:
    receipt_id: int = request.path_params["id"]
    return await act(
        request,
        lambda _form: quarantine.delete(receipt_id),
        lambda error: quarantine_page(request, error),
        lambda _done: back(request, "/admin/quarantine", done="deleted", id=receipt_id),
    )


# --- suspended mail ---------------------------------------------------------------------------


def suspended_page(request: Request, error: str = "") -> Response:
    require_admin(request)
    done, receipt_id = request.query_params.get("done", ""), number(request, "id")
    message = ""
    if receipt_id is not None and done == "released":
        message = processed_line(request, receipt_id, "released")
    elif receipt_id is not None and done == "deleted":
        message = f"Suspended mail {receipt_id} deleted."
    return page(
        request,
        "admin_suspended.html",
        status_code=400 if error else 200,
        rows=suspended.listing(),
        message=message,
        error=error,
    )


def suspended_mail(request: Request) -> Response:
    require_admin(request)
    receipt_id: int = request.path_params["id"]
    try:
        facts, raw = suspended.show(ctx_of(request), receipt_id)
    except UsageError as exc:
        raise HTTPException(404, str(exc)) from None
    facts.pop("raw", None)  # a path on the server: of no use in a browser
    headers, text, cut = raw_text(raw)
    return page(
        request,
        "admin_mail.html",
        kind="suspended",
        facts=facts,
        headers=headers,
        text=text,
        cut=cut,
        actions=[("release", "Release"), ("delete", "Delete")],
    )


async def suspended_release(request: Request) -> Response:
    receipt_id: int = request.path_params["id"]
    ctx = ctx_of(request)
    return await act(
        request,
        lambda _form: suspended.release(ctx, receipt_id),
        lambda error: suspended_page(request, error),
        lambda _done: back(request, "/admin/suspended", done="released", id=receipt_id),
    )


async def suspended_delete(request: Request) -> Response:
    receipt_id: int = request.path_params["id"]
    ctx = ctx_of(request)
    return await act(
        request,
        lambda _form: suspended.delete(ctx, receipt_id),
        lambda error: suspended_page(request, error),
        lambda _done: back(request, "/admin/suspended", done="deleted", id=receipt_id),
    )


routes: list[BaseRoute] = [
    Route("/admin/quarantine", quarantine_page, methods=["GET"]),
    Route("/admin/quarantine/{id:int}", quarantine_mail, methods=["GET"]),
    Route("/admin/quarantine/{id:int}/retry", quarantine_retry, methods=["POST"]),
    Route("/admin/quarantine/{id:int}/delete", quarantine_delete, methods=["POST"]),
    Route("/admin/suspended", suspended_page, methods=["GET"]),
    Route("/admin/suspended/{id:int}", suspended_mail, methods=["GET"]),
    Route("/admin/suspended/{id:int}/release", suspended_release, methods=["POST"]),
    Route("/admin/suspended/{id:int}/delete", suspended_delete, methods=["POST"]),
]
