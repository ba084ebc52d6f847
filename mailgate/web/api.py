"""The JSON API (``/api/v1/...``) with per-agent bearer tokens, and its OpenAPI schema.

Every call acts as the agent whose token it carries (``apicall``), sees what
that agent may see (``access``: in the SQL of a list, checked for one ticket —
a ticket the agent may not see is answered 404 exactly like one that does not
exist) and changes tickets through the same functions as the CLI and the mail
commands (``mailgate.admin.tickets``), with the actor ``agent:KEY`` a mail
command of that agent leaves, so events and notices are the same.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from mailgate import search
from mailgate.admin import tickets
from mailgate.config import PRIORITIES, STATUSES
from mailgate.errors import UsageError
from mailgate.mail.subject import format_tag
from mailgate.store.rows import TicketRow
from mailgate.web import access, openapi
from mailgate.web.apicall import ApiError, Call, Reply, endpoint, fields

BASE = "/api/v1"
MAX_LIMIT = 500  # tickets one list call returns at most (page with offset for more)
# A list counts this many matches at most ("exact": false beyond): counting every ticket
# an agent may see is a scan of the table (an OR of team and assignee), 40 ms at 100,000.
COUNT_UP_TO = 10_000

# Query parameters of GET /tickets and the search.Options field each sets.
LIST_PARAMETERS = {
    "status": "status",
    "priority": "priority",
    "team": "team",
    "assignee": "assignee",
    "requester": "requester",
    "mailbox": "mailbox",
    "category": "category",
    "tag": "tag",
    "created_after": "created_after",
    "created_before": "created_before",
    "updated_after": "updated_after",
    "updated_before": "updated_before",
    "due_before": "due_before",
    "q": "text",
    "sort": "sort",
}
CREATE_FIELDS = ("mailbox", "priority", "team")
PATCH_FIELDS = ("team", "assignee", "priority", "status")  # applied in this order


def list_tickets(call: Call) -> Reply:
    """GET /tickets: the filters of ``tickets list``, ``q`` for full text, sort and paging."""
    params = call.request.query_params
    allowed = {*LIST_PARAMETERS, "breached", "limit", "offset"}
    for name in params:
        if name not in allowed:
            raise ApiError(400, f"unknown parameter {name!r}; one of {', '.join(sorted(allowed))}")
    values: dict[str, Any] = {
        field: params.get(name, "") for name, field in LIST_PARAMETERS.items()
    }
    limit = _integer(params, "limit", 50)
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, f"limit: from 1 to {MAX_LIMIT}; page with offset for more")
    options = search.Options(
        **values,
        acting_as=call.agent.key,  # assignee=me
        breached=_boolean(params, "breached"),
        limit=limit,
        offset=_integer(params, "offset", 0),
        count_up_to=COUNT_UP_TO,
        **access.scope(call.ctx.config, call.agent),
    )
    try:
        found = search.find(call.ctx.config, options)
    except UsageError as exc:
        raise ApiError(400, _parameter_names(str(exc))) from None
    return Reply(
        {
            "tickets": found.rows,
            "total": found.total,
            "exact": found.complete,
            "limit": options.limit,
            "offset": options.offset,
        }
    )


def show_ticket(call: Call) -> Reply:
    """GET /tickets/{number}: the ticket with its thread, as ``tickets show --json``."""
    row = _visible(call)
    return Reply(tickets.detail(call.ctx.config, row.number))


def create_ticket(call: Call) -> Reply:
    """POST /tickets: as ``tickets create --as AGENT``; 201 with its number and Location."""
    given = fields(call.body, required=("requester", "subject", "text"), optional=CREATE_FIELDS)
    priority = given.get("priority") or ""
    if priority and priority not in PRIORITIES:
        raise ApiError(422, f"priority: one of {', '.join(PRIORITIES)}, not {priority!r}")
    number = tickets.create(
        call.ctx,
        requester=given["requester"] or "",
        subject=given["subject"] or "",
        text=given["text"] or "",
        agent_key=call.agent.key,
        mailbox=given.get("mailbox") or "",
        priority=priority,
        team=given.get("team") or "",
    )
    location = call.url(f"{BASE}/tickets/{number}")
    return Reply(
        {"number": number, "tag": _tag(call, number), "url": location},
        status=201,
        headers={"Location": location},
    )


def reply_ticket(call: Call) -> Reply:
    """POST /tickets/{number}/reply: the agent's answer, mailed to the customer."""
    row = _visible(call)
    text = fields(call.body, required=("text",))["text"] or ""
    tickets.reply(call.ctx, row.number, call.agent.key, text)
    return Reply({"number": row.number, "tag": _tag(call, row.number), "result": "reply queued"})


def note_ticket(call: Call) -> Reply:
    """POST /tickets/{number}/note: an internal note (never sent to the customer)."""
    row = _visible(call)
    text = fields(call.body, required=("text",))["text"] or ""
    tickets.note(call.ctx, row.number, call.agent.key, text)
    return Reply({"number": row.number, "tag": _tag(call, row.number), "result": "note added"})


def patch_ticket(call: Call) -> Reply:
    """PATCH /tickets/{number}: team, assignee, priority, status — each as the mail command."""
    row = _visible(call)
    given = fields(call.body, optional=PATCH_FIELDS)
    if not given:
        raise ApiError(400, f"nothing to change; give any of: {', '.join(PATCH_FIELDS)}")
    for name in ("team", "priority", "status"):
        if name in given and not given[name]:
            raise ApiError(400, f"the field {name!r} needs a value")
    _check_values(call, given)
    actor = f"agent:{call.agent.key}"
    changed: dict[str, bool] = {}
    ctx, number = call.ctx, row.number
    for name in PATCH_FIELDS:  # one transaction each, the order a person would use
        if name not in given:
            continue
        value = given[name]
        if name == "team":
            tickets.set_team(ctx, number, value or "", actor)
            changed[name] = True
        elif name == "assignee":
            who = None if value in (None, "", "none") else value
            changed[name] = tickets.assign(ctx, number, who, actor)
        elif name == "priority":
            changed[name] = tickets.set_priority(ctx, number, value or "", actor)
        else:
            changed[name] = tickets.set_status(ctx, number, value or "", actor)
    found = tickets.detail(ctx.config, number)
    summary = {k: v for k, v in found.items() if k not in ("messages", "events")}
    return Reply({"number": number, "changed": changed, "ticket": summary})


def schema(request: Request) -> JSONResponse:
    """GET /openapi.json: the OpenAPI 3.1 description of this API (no token needed)."""
    root = request.scope.get("root_path", "").rstrip("/")
    return JSONResponse(openapi.document(root))


def _check_values(call: Call, given: dict[str, str | None]) -> None:
    """Every value known before anything changes: a PATCH is not applied by halves."""
    config = call.ctx.config
    if given.get("status") and given["status"] not in STATUSES:
        raise ApiError(422, f"status: one of {', '.join(STATUSES)}, not {given['status']!r}")
    if given.get("priority") and given["priority"] not in PRIORITIES:
        raise ApiError(422, f"priority: one of {', '.join(PRIORITIES)}, not {given['priority']!r}")
    team = given.get("team")
    if team and config.team(team) is None:
        known = ", ".join(t.key for t in config.teams)
        raise ApiError(422, f"team: no team {team!r} in the config; known: {known}")
    assignee = given.get("assignee")
    if assignee and assignee != "none" and config.agent(assignee) is None:
        known = ", ".join(a.key for a in config.agents)
        raise ApiError(422, f"assignee: no agent {assignee!r} in the config; known: {known}")


def _visible(call: Call) -> TicketRow:
    """The ticket of the path if the agent may see it; 404 (the same) if not or if none."""
    number = call.path("number")
    row = access.visible_ticket(call.ctx.config, call.agent, number)
    if row is None:
        raise ApiError(404, f"no ticket #{number}")
    return row


def _tag(call: Call, number: int) -> str:
    return format_tag(call.ctx.config.gateway.ticket_prefix, number)


def _integer(params: Any, name: str, default: int) -> int:
    text = params.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise ApiError(400, f"{name}: give a whole number, not {text!r}") from None


def _boolean(params: Any, name: str) -> bool:
    text = (params.get(name) or "false").lower()
    if text not in ("true", "false", "1", "0", "yes", "no"):
        raise ApiError(400, f"{name}: give true or false, not {text!r}")
    return text in ("true", "1", "yes")


def _parameter_names(message: str) -> str:
    """search's messages name CLI options (``--text``); the API's parameters are named so."""
    if not message.startswith("--"):
        return message
    option, _, rest = message[2:].partition(":")
    name = {"text": "q"}.get(option, option.replace("-", "_"))
    return f"{name}:{rest}"


routes: list[BaseRoute] = [
    Route(f"{BASE}/openapi.json", schema, methods=["GET"]),
    Route(f"{BASE}/tickets", endpoint(list_tickets), methods=["GET"]),
    Route(f"{BASE}/tickets", endpoint(create_ticket), methods=["POST"]),
    Route(f"{BASE}/tickets/{{number:int}}", endpoint(show_ticket), methods=["GET"]),
    Route(f"{BASE}/tickets/{{number:int}}", endpoint(patch_ticket), methods=["PATCH"]),
    Route(f"{BASE}/tickets/{{number:int}}/reply", endpoint(reply_ticket), methods=["POST"]),
    Route(f"{BASE}/tickets/{{number:int}}/note", endpoint(note_ticket), methods=["POST"]),
]
