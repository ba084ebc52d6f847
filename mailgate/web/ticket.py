"""One ticket (``/tickets/{number}``): the thread, attachments, and every action on it.

The page shows what ``tickets show --json`` holds (``admin.tickets.detail``): the
messages (customer, agent, notes, our notices) and the events, in one timeline. A
customer's HTML is never part of the page: it is served on its own URL, sanitised
again, with a CSP that allows no script and no remote image (unless the agent asks
for images), and shown in an ``<iframe sandbox>``. Attachments are downloads with
the stored type and ``nosniff``. The actions are in ``ticket_actions``.

A ticket the agent may not see is a 404 with the same body as one that does not
exist; a merged ticket redirects to the one it lives on now.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from mailgate import answers, attachments
from mailgate.admin import tickets
from mailgate.config import PRIORITIES, STATUSES, Agent
from mailgate.errors import UsageError
from mailgate.mail.html import sanitize_html
from mailgate.store import messages as message_rows
from mailgate.store import tickets as ticket_rows
from mailgate.store.rows import TicketRow
from mailgate.web import access, display
from mailgate.web.render import ctx_of, page
from mailgate.web.session import require_agent

# What an action left behind (``?done=KEY`` after the redirect): fixed sentences only.
DONE = {
    "reply": "Your reply was sent to the customer.",
    "note": "Your note was added.",
    "assign": "The assignee was changed.",
    "team": "The team was changed.",
    "priority": "The priority was changed.",
    "status": "The status was changed.",
    "merge": "The ticket was merged into this one.",
    "unchanged": "Nothing changed: it already was so.",
}
FRAME_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src {images}; sandbox; " + (
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
FRAME_STYLE = (
    "body{font:14px/1.45 system-ui,sans-serif;color:#1d2330;margin:.5rem;overflow-wrap:anywhere}"
    "img{max-width:100%;height:auto}blockquote{border-left:3px solid #d9dee5;margin-left:0;"
    "padding-left:.8rem;color:#5f6b7a}table{border-collapse:collapse}"
)
_TOKEN = re.compile(r"[A-Za-z0-9!#$&^_.+-]{1,100}/[A-Za-z0-9!#$&^_.+-]{1,100}")


NOT_FOUND = "no such ticket"


def visible(request: Request, agent: Agent, number: int) -> TicketRow:
    """Ticket ``number`` if ``agent`` may see it; else 404, the same as for no ticket."""
    found = access.visible_ticket(ctx_of(request).config, agent, number)
    if found is None:
        raise HTTPException(404, NOT_FOUND)
    return found


def ticket_page(request: Request) -> Response:
    agent = require_agent(request)
    number = request.path_params["number"]
    row = visible(request, agent, number)
    if row.merged_into_id:
        target = ticket_rows.final(row)
        return RedirectResponse(f"{_root(request)}/tickets/{target.number}", status_code=303)
    reply_text, error = "", ""
    wanted = request.query_params.get("answer", "").strip()
    if wanted:
        reply_text, error = answer_text(request, agent, row, wanted)
    done = DONE.get(request.query_params.get("done", ""), "")
    return render_ticket(request, agent, row, done=done, error=error, reply_text=reply_text)


def answer_text(request: Request, agent: Agent, row: TicketRow, name: str) -> tuple[str, str]:
    """The canned answer ``name`` rendered for this ticket (as ``#answer NAME`` in a reply
    by mail would be), or the line saying why not."""
    text, problems = answers.expand(ctx_of(request), row, agent, f"#answer {name}")
    return ("", problems[0]) if problems else (text, "")


def render_ticket(
    request: Request,
    agent: Agent,
    row: TicketRow,
    *,
    done: str = "",
    error: str = "",
    reply_text: str = "",
    note_text: str = "",
    status_code: int = 200,
) -> Response:
    ctx = ctx_of(request)
    config = ctx.config
    found = tickets.detail(config, row.number)
    html_ids = message_rows.with_html(row.id)
    try:
        canned = answers.answers(config)
    except UsageError:
        canned = []
    return page(
        request,
        "ticket.html",
        status_code=status_code,
        t=found,
        timeline=timeline(found, html_ids),
        sla=found.get("sla"),
        done=done,
        error=error,
        reply_text=reply_text,
        note_text=note_text,
        agents=config.agents,
        teams=config.teams,
        statuses=STATUSES,
        priorities=PRIORITIES,
        canned=canned,
        local=lambda text: display.local(config, text),
        overdue=display.is_past,
        base=f"{_root(request)}/tickets/{row.number}",
    )


def timeline(found: dict[str, Any], html_ids: set[int]) -> list[dict[str, Any]]:
    """Messages and events in the order they happened (within a second: the events first,
    since a message's notices and the change that caused them come after it)."""
    entries: list[tuple[str, int, int, dict[str, Any]]] = []
    for i, event in enumerate(found["events"]):
        entries.append((event["at"] or "", 0, i, {"type": "event", **event}))
    for i, message in enumerate(found["messages"]):
        at = message["created_at"] or ""
        entries.append((at, 1, i, {"type": "message", "html": message["id"] in html_ids,
                                    **message}))  # fmt: skip
    entries.sort(key=lambda e: (e[0], e[1], e[2]))
    return [entry for *_, entry in entries]


def message_html(request: Request) -> Response:
    """A message's HTML, sanitised, for the sandboxed frame: no script, no remote image
    unless ``?images=1``."""
    agent = require_agent(request)
    row = visible(request, agent, request.path_params["number"])
    stored = message_rows.html_in_ticket(row.id, request.path_params["message"])
    if stored is None:
        raise HTTPException(404, NOT_FOUND)
    images = "https: http: data:" if request.query_params.get("images") == "1" else "data: cid:"
    body = (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<style>{FRAME_STYLE}</style></head><body>{sanitize_html(stored)}</body></html>"
    )
    return Response(
        body,
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": FRAME_CSP.format(images=images),
            "X-Frame-Options": "SAMEORIGIN",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "private, no-store",
        },
    )


def attachment(request: Request) -> Response:
    """One attachment's exact bytes, as a download of its stored type."""
    agent = require_agent(request)
    ctx = ctx_of(request)
    row = visible(request, agent, request.path_params["number"])
    try:
        fetched = attachments.fetch(ctx, request.path_params["attachment"])
    except UsageError:
        raise HTTPException(404, "no such attachment") from None
    if fetched.row.ticket_id != row.id:
        raise HTTPException(404, "no such attachment")
    ctype = fetched.row.content_type.strip().lower()
    if not _TOKEN.fullmatch(ctype):
        ctype = "application/octet-stream"
    headers = {
        "Content-Disposition": content_disposition(fetched.row.filename),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-store",
    }
    local = fetched.path
    if local is not None:  # the folder store: the file as it lies
        return FileResponse(local, media_type=ctype, headers=headers)
    # PostgreSQL or S3 (storage.blob_url): streamed in parts, never whole in memory.
    return StreamingResponse(_chunks(fetched.open()), media_type=ctype, headers=headers)


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(1 << 16):
            yield chunk


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the real one (RFC 5987/6266)."""
    name = filename.replace("\r", "").replace("\n", "").strip() or "attachment.bin"
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_"
                       for c in name)  # fmt: skip
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _routes() -> list[BaseRoute]:
    from mailgate.web import ticket_actions

    return [
        Route("/tickets/{number:int}", ticket_page, methods=["GET"], name="ticket"),
        Route("/tickets/{number:int}/messages/{message:int}/html", message_html, methods=["GET"]),
        Route("/tickets/{number:int}/attachments/{attachment:int}", attachment, methods=["GET"]),
        *ticket_actions.routes,
    ]


routes: list[BaseRoute] = _routes()
