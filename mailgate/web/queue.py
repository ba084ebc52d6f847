"""The queue (``GET /``): filters, full-text search, sort, saved views, pages.

The same query as ``mailgate tickets list`` (``search.find``), with the agent's
visibility in the query itself (``access.scope``): the count and the pages are of
what this agent may see. One page costs a bounded number of queries (the page with
its rows, the count), however many rows it shows. A filter value that is wrong is
one line above an empty list (400), never a traceback.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailgate import search
from mailgate.config import PRIORITIES, STATUSES, Agent, Config
from mailgate.errors import UsageError
from mailgate.web import access, display
from mailgate.web.render import ctx_of, page
from mailgate.web.session import require_agent

PER_PAGE = 50
OPEN_STATUSES = "new,open,pending"
# Query parameters that are filters of `tickets list` (name → Options field).
TEXT_FILTERS = (
    "status", "priority", "team", "assignee", "requester", "mailbox", "category", "tag",
    "created_after", "created_before", "updated_after", "updated_before",
)  # fmt: skip
KEPT = (*TEXT_FILTERS, "q", "breached", "sort", "view", "per")
MAX_PER_PAGE = 200
# The count stops here ("10,000+ tickets match"): counting 200,000 tickets of all history
# for every page cost more than the page itself (issue 15); the API stops at the same.
COUNT_UP_TO = 10_000
# The columns one can sort by, as (sort key, heading).
COLUMNS = (
    ("number", "Ticket"),
    ("subject", "Subject"),
    ("requester", "Requester"),
    ("team", "Team"),
    ("assignee", "Assignee"),
    ("priority", "Priority"),
    ("status", "Status"),
    ("due", "Due"),
    ("updated", "Updated"),
)
VIEWS = {
    "": "Open tickets",
    "mine": "Mine",
    "unassigned": "Unassigned in my teams",
    "overdue": "Overdue",
}


def queue(request: Request) -> Response:
    agent = require_agent(request)
    ctx = ctx_of(request)
    params = {key: request.query_params.get(key, "").strip() for key in KEPT}
    if not params["status"]:
        # Several ?status= (checkboxes) mean the same as one comma list.
        params["status"] = ",".join(v for v in request.query_params.getlist("status") if v)
    error = ""
    found = search.Page([], 0)
    number, per = 1, PER_PAGE
    try:
        number = _number("page", request.query_params.get("page", ""), 1, None)
        per = _number("per", params["per"], PER_PAGE, MAX_PER_PAGE)
        options = options_for(ctx.config, agent, params, number, per)
        found = search.find(ctx.config, options)
    except UsageError as exc:
        error = str(exc).removeprefix("--")
    now = dt.datetime.now(dt.UTC)
    # Objects, not dicts: the template's ``t.subject`` on a dict is a failed attribute
    # lookup and then an index — 600 exceptions a page, a sixth of rendering it.
    rows = [
        SimpleNamespace(
            **row,
            updated=display.local(ctx.config, row["updated_at"]),
            due=display.local(ctx.config, row["due_at"]),
            overdue=display.is_past(row["due_at"], now),
        )
        for row in found.rows
    ]
    pages = max(1, -(-found.total // per))
    # When the count stopped, a full page may have more after it: there is a next page.
    more = number < pages or (not found.complete and len(rows) == per)
    current = params["sort"] or ("rank" if params["q"] else "-updated")
    return page(
        request,
        "queue.html",
        status_code=400 if error else 200,
        rows=rows,
        total=found.total,
        complete=found.complete,
        cut=found.cut,
        searched=search.SEARCHED_MATCHES,
        scanned=search.SCANNED,
        counted=not params["q"],
        more=more,
        error=error,
        params=params,
        page_number=number,
        pages=pages,
        first=(number - 1) * per + 1 if rows else 0,
        last=(number - 1) * per + len(rows),
        columns=COLUMNS,
        views=VIEWS,
        link=lambda **changes: display.query(params, **changes),
        sort_link=lambda key: display.query(params, page=None, sort=_toggled(current, key)),
        sort_mark=lambda key: _mark(current, key),
        statuses=STATUSES,
        priorities=PRIORITIES,
        teams=ctx.config.teams,
        agents=ctx.config.agents,
        mailboxes=ctx.config.mailboxes,
        categories=ctx.config.tickets.categories,
    )


def options_for(
    config: Config, agent: Agent, params: dict[str, str], number: int, per: int = PER_PAGE
) -> Any:
    """``search.Options`` of the query parameters, the saved view and the agent's scope."""
    fields: dict[str, Any] = {name: params[name] for name in TEXT_FILTERS}
    status = fields["status"]
    fields["status"] = "" if status == "all" else (status or OPEN_STATUSES)
    view = params["view"]
    if view == "mine":
        fields["assignee"] = agent.key
    elif view == "unassigned":
        fields["assignee"] = "none"
        fields["team"] = ",".join(access.teams_of(config, agent)) or fields["team"]
    elif view == "overdue":
        now = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
        fields["due_before"] = now.isoformat() + "Z"
    elif view:
        raise UsageError(f"view: no saved view {view!r}; one of mine, unassigned, overdue")
    return search.Options(
        **fields,
        acting_as=agent.key,
        breached=params["breached"] in ("1", "on", "true", "yes"),
        text=params["q"],
        sort=params["sort"],
        limit=per,
        offset=(number - 1) * per,
        count_up_to=COUNT_UP_TO,
        **access.scope(config, agent),
    )


def _number(name: str, text: str, default: int, most: int | None) -> int:
    """``?page=``/``?per=`` as a number in its range; one line when it is not."""
    if not text.strip():
        return default
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1 or (most is not None and number > most):
        upto = f" and at most {most}" if most else ""
        raise UsageError(f"{name}: give a number of at least 1{upto}, not {text!r}")
    return number


def _toggled(current: str, key: str) -> str:
    """The sort a column heading asks for: its own ascending, then descending; time and
    priority columns start with the most recent / the highest."""
    starts_descending = key in ("updated", "priority")
    if current.lstrip("-") != key:
        return f"-{key}" if starts_descending else key
    return key if current.startswith("-") else f"-{key}"


def _mark(current: str, key: str) -> str:
    if current.lstrip("-") != key:
        return ""
    return "▼" if current.startswith("-") else "▲"


routes: list[BaseRoute] = [Route("/", queue, methods=["GET"], name="queue")]
