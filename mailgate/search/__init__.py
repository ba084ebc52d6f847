"""Find tickets: filters, full-text search, sort and paging — for the CLI and the web desk.

The front door is ``find(config, Options(...)) -> Page``: it checks every value
an admin typed against what exists (one line naming what does, never a
traceback), turns dates into UTC instants in ``gateway.timezone``, parses the
``--text`` language (``search.query``) and asks ``store.search`` for one page and
the count of all matches (so no list is ever silently cut). Imports the store's
read functions, config and errors; never the edge.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from mailgate.config import PRIORITIES, STATUSES, Config
from mailgate.errors import UsageError
from mailgate.search.dates import day_start, instant, parse_day
from mailgate.search.query import Term, TextQuery, parse
from mailgate.store import utcnow
from mailgate.store.search import SEARCHED_MATCHES, SORTS, Filter, Page, TextTerm, page
from mailgate.store.textsearch import SCANNED

__all__ = [
    "SCANNED",
    "SEARCHED_MATCHES",
    "SORTS",
    "Options",
    "Page",
    "Term",
    "TextQuery",
    "day_start",
    "find",
    "instant",
    "parse",
    "parse_day",
]


@dataclass(frozen=True, slots=True)
class Options:
    """What ``tickets list`` takes, as typed (strings); empty = no condition."""

    status: str = ""  # comma list
    priority: str = ""  # comma list
    team: str = ""  # comma list; "none" = no team
    assignee: str = ""  # agent key, "me" (with acting_as) or "none"
    acting_as: str = ""
    requester: str = ""
    mailbox: str = ""
    category: str = ""
    tag: str = ""
    created_after: str = ""
    created_before: str = ""
    updated_after: str = ""
    updated_before: str = ""
    breached: bool = False
    due_before: str = ""
    text: str = ""
    sort: str = ""  # default: best match first with --text, else -updated
    limit: int | None = 50
    offset: int = 0
    # A text search ranks the newest this many matching messages (see store.search).
    searched: int = SEARCHED_MATCHES
    # Who is looking (the web desk, mailgate.web.access): None = may see every ticket;
    # a tuple = only tickets of these team keys or assigned to ``visible_to_agent`` (a key).
    visible_to_teams: tuple[str, ...] | None = None
    visible_to_agent: str = ""
    # A list without text counts this many tickets at most (None: all, as the CLI does);
    # when more match, Page.total is this number and Page.complete false ("at least").
    count_up_to: int | None = None


def find(config: Config, options: Options, now: dt.datetime | None = None) -> Page:
    """One page of the tickets ``options`` select, and how many match in all."""
    if options.limit is not None and options.limit < 1:
        raise UsageError("--limit: give a number of at least 1 (or --all)")
    if options.offset < 0:
        raise UsageError("--offset: give a number of at least 0")
    zone = config.gateway.timezone
    query = parse(options.text) if options.text.strip() else None
    sort = options.sort or ("rank" if query else "-updated")
    if sort.lstrip("-") not in SORTS:
        raise UsageError(
            f"--sort: unknown field {sort!r}; one of {', '.join(SORTS)} (-FIELD: descending)"
        )
    where = Filter(
        statuses=_choices("--status", options.status, STATUSES),
        priorities=_choices("--priority", options.priority, PRIORITIES),
        teams=_named("--team", options.team, [t.key for t in config.teams]),
        assignees=_named("--assignee", _me(options), [a.key for a in config.agents]),
        requester=options.requester.strip(),
        mailbox=_one_of("--mailbox", options.mailbox, [b.name for b in config.mailboxes]),
        category=_category(config, options.category),
        tag=options.tag.strip(),
        created_after=_when("--created-after", options.created_after, zone),
        created_before=_when("--created-before", options.created_before, zone),
        updated_after=_when("--updated-after", options.updated_after, zone),
        updated_before=_when("--updated-before", options.updated_before, zone),
        breached=options.breached,
        due_before=_when("--due-before", options.due_before, zone),
        now=now or utcnow(),
        terms=tuple(TextTerm(t.words, t.prefix, t.cjk) for t in query.terms) if query else (),
        number=query.number if query else None,
        message_id=query.message_id if query else None,
        visible_teams=options.visible_to_teams,
        visible_agent=options.visible_to_agent,
    )
    return page(
        config, where, sort, options.limit, options.offset, options.searched, options.count_up_to
    )


def _category(config: Config, given: str) -> str:
    """A category in any case; one the config does not list is a usage error."""
    given = given.strip()
    known = config.tickets.categories
    if given and known and config.category(given) is None:
        raise UsageError(f"--category: unknown category {given!r}; one of {', '.join(known)}")
    return given


def _me(options: Options) -> str:
    if options.assignee.strip() != "me":
        return options.assignee
    if not options.acting_as:
        raise UsageError("--assignee me: say who you are with --as AGENT")
    return options.acting_as


def _values(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _choices(option: str, text: str, known: tuple[str, ...]) -> tuple[str, ...]:
    values = _values(text)
    for value in values:
        if value not in known:
            raise UsageError(f"{option}: unknown value {value!r}; one of {', '.join(known)}")
    return tuple(values)


def _named(option: str, text: str, known: list[str]) -> tuple[str, ...]:
    """Keys of teams or agents; ``none`` means "nobody" and is kept as ''."""
    found = []
    for value in _values(text):
        if value == "none":
            found.append("")
        elif value in known:
            found.append(value)
        else:
            existing = ", ".join(known) or "(none configured)"
            raise UsageError(f"{option}: no such {option[2:]} {value!r}; known: {existing}, none")
    return tuple(found)


def _one_of(option: str, text: str, known: list[str]) -> str:
    value = text.strip()
    if value and value not in known:
        raise UsageError(f"{option}: no mailbox {value!r}; known: {', '.join(known)}")
    return value


def _when(option: str, text: str, zone: str) -> dt.datetime | None:
    if not text.strip():
        return None
    try:
        return instant(text, zone)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None
