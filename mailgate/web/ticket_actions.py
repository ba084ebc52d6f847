"""The actions on a ticket page: reply, note, assign, team, priority, status, merge.

Each is a POST form, CSRF-checked (``session.checked_form``: 403, nothing changed),
for a ticket the agent may see (404 otherwise), and calls the SAME function as the
CLI and the mail commands (``mailgate.admin.tickets``) with the actor
``agent:<key>``, so events and notices are those of a change by mail. Then
post/redirect/get: 303 back to the ticket with ``?done=KIND``. A ``UsageError`` is
the ticket page again with that line, status 400, the typed text kept; nothing
changed (the functions check before they write, in one transaction).

A reply may carry files (``<input type=file multiple>``): they are written to a
temporary folder and passed as paths, as ``tickets reply --attach`` does, and
``#answer NAME`` lines in it are expanded as in a reply by mail.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from mailgate import answers
from mailgate.admin import tickets
from mailgate.config import Agent
from mailgate.errors import UsageError
from mailgate.mail.walk import safe_filename
from mailgate.web import access
from mailgate.web.render import ctx_of
from mailgate.web.session import checked_form, require_agent
from mailgate.web.ticket import render_ticket, visible


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _reply(request: Request, agent: Agent, number: int, form: FormData) -> str:
    ctx = ctx_of(request)
    text = _text(form, "text")
    row = visible(request, agent, number)
    text, problems = answers.expand(ctx, row, agent, text)
    if problems:
        raise UsageError(problems[0])
    uploads = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
    with tempfile.TemporaryDirectory(prefix="mailgate-upload-") as folder:
        paths = []
        for i, upload in enumerate(uploads):
            # One folder per file: two files of the same name both arrive.
            place = Path(folder) / str(i)
            place.mkdir()
            path = place / (safe_filename(upload.filename or "") or "attachment.bin")
            with path.open("wb") as out:
                upload.file.seek(0)
                shutil.copyfileobj(upload.file, out)
            paths.append(str(path))
        tickets.reply(ctx, number, agent.key, text, files=paths)
    return "reply"


def _note(request: Request, agent: Agent, number: int, form: FormData) -> str:
    tickets.note(ctx_of(request), number, agent.key, _text(form, "text"))
    return "note"


def _assign(request: Request, agent: Agent, number: int, form: FormData) -> str:
    key = _text(form, "assignee").strip()
    if key == "me":
        key = agent.key
    changed = tickets.assign(ctx_of(request), number, key or None, _actor(agent))
    return "assign" if changed else "unchanged"


def _team(request: Request, agent: Agent, number: int, form: FormData) -> str:
    tickets.set_team(ctx_of(request), number, _text(form, "team").strip(), _actor(agent))
    return "team"


def _priority(request: Request, agent: Agent, number: int, form: FormData) -> str:
    changed = tickets.set_priority(
        ctx_of(request), number, _text(form, "priority").strip(), _actor(agent)
    )
    return "priority" if changed else "unchanged"


def _status(request: Request, agent: Agent, number: int, form: FormData) -> str:
    changed = tickets.set_status(
        ctx_of(request), number, _text(form, "status").strip(), _actor(agent)
    )
    return "status" if changed else "unchanged"


def _merge(request: Request, agent: Agent, number: int, form: FormData) -> str:
    given = _text(form, "target").strip().lstrip("#")
    try:
        target = int(given)
    except ValueError:
        raise UsageError(f"merge: not a ticket number: {given!r}") from None
    if access.visible_ticket(ctx_of(request).config, agent, target) is None:
        raise UsageError(f"no ticket #{target}")  # one the agent may not see is not there
    tickets.merge(ctx_of(request), number, target, _actor(agent))
    return "merge"


def _actor(agent: Agent) -> str:
    return f"agent:{agent.key}"


Action = Callable[[Request, Agent, int, FormData], str]
ACTIONS: dict[str, Action] = {
    "reply": _reply,
    "note": _note,
    "assign": _assign,
    "team": _team,
    "priority": _priority,
    "status": _status,
    "merge": _merge,
}


async def act(request: Request) -> Response:
    agent = require_agent(request)
    name = request.path_params["action"]
    if name not in ACTIONS:
        raise HTTPException(404, "no such action")
    form = await checked_form(request)
    number = int(request.path_params["number"])
    try:
        return await run_in_threadpool(_run, request, agent, number, name, form)
    finally:
        await form.close()


def _run(request: Request, agent: Agent, number: int, name: str, form: FormData) -> Response:
    row = visible(request, agent, number)
    action = ACTIONS[name]
    try:
        done = action(request, agent, number, form)
    except UsageError as exc:
        kept: dict[str, Any] = {"reply_text": _text(form, "text")} if name == "reply" else {}
        if name == "note":
            kept = {"note_text": _text(form, "text")}
        return render_ticket(request, agent, row, error=str(exc), status_code=400, **kept)
    root = str(request.scope.get("root_path", "")).rstrip("/")
    shown = number
    if name == "merge":
        shown = int(_text(form, "target").strip().lstrip("#"))
    return RedirectResponse(f"{root}/tickets/{shown}?done={done}", status_code=303)


routes: list[BaseRoute] = [
    Route(
        "/tickets/{number:int}/{action:str}",
        act,
        methods=["POST"],
    )
]
