"""The queue of the web desk (``GET /``): who sees what, search, sort, saved views, pages.

Mail comes in through ``ingest`` as the pipe hands it over; agents log in through
the login form (``tests.webdesk``) and read the queue as a browser would. Runs on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import logging
import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from mailgate import intake, store
from mailgate.admin import tickets as admin
from mailgate.context import Context
from mailgate.store import models as m
from mailgate.store import sla as sla_rows
from tests.support import compose
from tests.webdesk import client_for, login

SLA: dict[str, Any] = {
    "sla": [
        {"key": "normal", "name": "Normal", "priorities": ["low", "normal", "high", "emergency"],
         "first_response": "2h", "resolution": "8h"},
    ],
}  # fmt: skip


def ingest(ctx: Context, **mail: Any) -> int:
    outcome = intake.ingest(ctx, compose(**mail), source="pipe")
    assert outcome.ticket is not None, outcome
    return int(outcome.ticket)


def agent(ctx: Context, key: str) -> TestClient:
    client = client_for(ctx)
    login(client, key)
    return client


def numbers(html: str) -> list[int]:
    """The ticket numbers of the queue's rows, in the order shown."""
    body = html.split("<tbody>", 1)[1] if "<tbody>" in html else ""
    found = re.findall(r'<td class="num"><a href="/tickets/(\d+)">', body)
    return [int(n) for n in found]


def count_line(html: str) -> str:
    found = re.search(r'<p class="count">\s*(.*?)\s*</p>', html, re.S)
    assert found, html
    return " ".join(re.sub(r"<[^>]+>", "", found.group(1)).split())


@pytest.fixture
def queue(ctx: Context) -> dict[str, int]:
    """Three tickets of level1 (alice, bob), two of online-banking (bob, carol; handed out
    round robin to bob and carol)."""
    return {
        "terminal": ingest(ctx, subject="Card terminal broken", body="The terminal shows E42.\n"),
        "password": ingest(ctx, subject="Password reset", body="I forgot my password.\n"),
        "invoice": ingest(ctx, subject="Invoice question", body="Where is my invoice?\n"),
        "login": ingest(
            ctx, to="banking@example.org", subject="Banking login fails", body="Terminal too.\n"
        ),
        "transfer": ingest(
            ctx, to="banking@example.org", subject="Transfer stuck", body="Since Monday.\n"
        ),
    }


def test_the_queue_needs_a_login(ctx: Context) -> None:
    answer = client_for(ctx).get("/")
    assert answer.status_code == 303 and answer.headers["location"] == "/login"


def test_an_agent_sees_the_tickets_of_their_teams_and_those_assigned_to_them(
    ctx: Context, queue: dict[str, int]
) -> None:
    alice, carol, jane = agent(ctx, "alice"), agent(ctx, "carol"), agent(ctx, "jane")
    page = alice.get("/")
    assert page.status_code == 200
    level1 = {queue["terminal"], queue["password"], queue["invoice"]}
    assert set(numbers(page.text)) == level1
    assert count_line(page.text) == "3 tickets match"
    # Assigned to her, a ticket of another team is hers to see too (and counted).
    admin.assign(ctx, queue["transfer"], "alice", "admin:cli")
    page = alice.get("/")
    assert set(numbers(page.text)) == level1 | {queue["transfer"]}
    assert count_line(page.text) == "4 tickets match"
    # An admin sees everything; an agent of a team without tickets sees nothing.
    assert set(numbers(carol.get("/").text)) == set(queue.values())
    empty = jane.get("/")
    assert numbers(empty.text) == [] and count_line(empty.text) == "No tickets match."
    # Filters cannot widen it: asking for the other team's tickets shows none of them.
    assert numbers(jane.get("/?team=online-banking&status=all").text) == []


def test_search_finds_by_words_within_what_the_agent_may_see(
    ctx: Context, queue: dict[str, int]
) -> None:
    alice, carol = agent(ctx, "alice"), agent(ctx, "carol")
    assert set(numbers(carol.get("/?q=terminal").text)) == {queue["terminal"], queue["login"]}
    found = alice.get("/?q=terminal")
    assert numbers(found.text) == [queue["terminal"]]
    assert count_line(found.text) == "1 ticket matches"
    assert numbers(alice.get("/?q=invoice").text) == [queue["invoice"]]
    assert numbers(alice.get("/?q=nowhere+written").text) == []
    # A number finds its ticket, unless the agent may not see it.
    assert numbers(alice.get(f"/?q={queue['password']}").text) == [queue["password"]]
    assert numbers(alice.get(f"/?q={queue['login']}").text) == []


def test_columns_sort_both_ways(ctx: Context, queue: dict[str, int]) -> None:
    carol = agent(ctx, "carol")
    every = sorted(queue.values())
    assert numbers(carol.get("/?sort=number").text) == every
    assert numbers(carol.get("/?sort=-number").text) == every[::-1]
    subjects = sorted(queue, key=lambda k: {"terminal": "Card", "password": "Password",
                                             "invoice": "Invoice", "login": "Banking",
                                             "transfer": "Transfer"}[k])  # fmt: skip
    assert numbers(carol.get("/?sort=subject").text) == [queue[k] for k in subjects]
    by_team = numbers(carol.get("/?sort=team").text)
    assert set(by_team[:3]) == {queue["terminal"], queue["password"], queue["invoice"]}
    for column in ("requester", "assignee", "priority", "status", "due", "updated"):
        for sort in (column, f"-{column}"):
            page = carol.get(f"/?sort={sort}")
            assert page.status_code == 200 and len(numbers(page.text)) == 5, sort
    # The heading of the sorted column links to the other direction.
    assert 'href="/?sort=-number"' in carol.get("/?sort=number").text


@pytest.mark.config(SLA)
def test_saved_views_mine_unassigned_and_overdue(ctx: Context, queue: dict[str, int]) -> None:
    alice, bob = agent(ctx, "alice"), agent(ctx, "bob")
    admin.assign(ctx, queue["password"], "alice", "admin:cli")
    assert numbers(alice.get("/?view=mine").text) == [queue["password"]]
    assert set(numbers(alice.get("/?view=unassigned").text)) == {
        queue["terminal"],
        queue["invoice"],
    }
    # bob is in both teams: the banking tickets were handed out, so are not unassigned.
    banking = {m.Ticket.get(m.Ticket.number == queue[k]).assignee_id for k in ("login", "transfer")}
    assert None not in banking
    assert set(numbers(bob.get("/?view=unassigned").text)) == {queue["terminal"], queue["invoice"]}
    assert numbers(alice.get("/?view=overdue").text) == []
    # The terminal ticket's first response was due an hour ago.
    ticket_id = m.Ticket.get(m.Ticket.number == queue["terminal"]).id
    past = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=1)
    # Through the clocks' one writer, which keeps the ticket's next due time with them.
    clocks = sla_rows.clocks_of(ticket_id)
    with store.write_transaction():
        sla_rows.replace_clocks(
            ticket_id,
            [dataclasses.replace(c, due_at=past) if c.name == "first_response" else c
             for c in clocks],
        )  # fmt: skip
    page = alice.get("/?view=overdue")
    assert numbers(page.text) == [queue["terminal"]]
    assert "(overdue)" in page.text
    assert numbers(bob.get("/?view=overdue&q=password").text) == []


def test_pages_and_the_count_of_what_matches(ctx: Context, queue: dict[str, int]) -> None:
    carol = agent(ctx, "carol")
    first = carol.get("/?per=2&sort=number")
    assert count_line(first.text) == "5 tickets match, showing 1–2"
    assert "Page 1 of 3" in first.text and 'href="/?sort=number&amp;per=2&amp;page=2"' in first.text
    last = carol.get("/?per=2&sort=number&page=3")
    assert numbers(last.text) == [max(queue.values())]
    assert count_line(last.text) == "5 tickets match, showing 5–5"
    seen = [n for p in (1, 2, 3) for n in numbers(carol.get(f"/?per=2&sort=number&page={p}").text)]
    assert seen == sorted(queue.values())


def test_the_count_stops_at_count_up_to_and_the_pages_go_on(
    ctx: Context, queue: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counting 200,000 tickets for every page cost more than the page: the count stops
    (10,000 on the desk; 3 here) and says "3+"; a full page still links to the next."""
    from mailgate.web import queue as queue_page

    assert queue_page.COUNT_UP_TO == 10_000
    monkeypatch.setattr(queue_page, "COUNT_UP_TO", 3)
    carol = agent(ctx, "carol")
    first = carol.get("/?per=2&sort=number")
    assert count_line(first.text).startswith("3+ tickets match, showing 1–2 (counting stopped")
    assert "Page 1 of 2+" in first.text
    assert 'href="/?sort=number&amp;per=2&amp;page=2" rel="next"' in first.text
    second = carol.get("/?per=2&sort=number&page=2")  # past where counting stops
    assert count_line(second.text).startswith("4+ tickets match, showing 3–4")
    assert 'href="/?sort=number&amp;per=2&amp;page=3" rel="next"' in second.text
    last = carol.get("/?per=2&sort=number&page=3")  # the last page knows the total
    assert count_line(last.text) == "5 tickets match, showing 5–5"
    assert 'rel="next"' not in last.text
    seen = [n for p in (1, 2, 3) for n in numbers(carol.get(f"/?per=2&sort=number&page={p}").text)]
    assert seen == sorted(queue.values())
    monkeypatch.setattr(queue_page, "COUNT_UP_TO", 5)  # exactly as many: no "+"
    assert count_line(carol.get("/?per=2&sort=number").text) == "5 tickets match, showing 1–2"


@pytest.mark.parametrize(
    ("query", "line"),
    [
        (
            "status=bogus",
            "status: unknown value 'bogus'; one of new, open, pending, resolved, closed",
        ),
        ("created_after=yesterday", "created-after: 'yesterday' is not a date or time"),
        ("sort=colour", "sort: unknown field 'colour'"),
        ("team=nobody", "team: no such team 'nobody'"),
        ("page=0", "page: give a number of at least 1, not '0'"),
        ("per=x", "per: give a number of at least 1 and at most 200, not 'x'"),
        ("view=weekend", "view: no saved view 'weekend'"),
        ("q=%22", 'text: a phrase is not closed (missing ")'),
        ("q=invoice", ""),
    ],
)
def test_a_bad_filter_value_is_one_line_never_a_traceback(
    ctx: Context, queue: dict[str, int], query: str, line: str
) -> None:
    page = agent(ctx, "alice").get(f"/?{query}")
    errors = re.findall(r'<p class="error" role="alert">(.*?)</p>', page.text, re.S)
    if not line:
        assert page.status_code == 200 and errors == []
        return
    assert page.status_code == 400
    (shown,) = errors
    assert html.unescape(shown).startswith(line)
    assert "Traceback" not in page.text and "\n" not in shown


def test_a_queue_page_costs_the_same_few_queries_however_many_rows_it_shows(
    ctx: Context, queue: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    carol = agent(ctx, "carol")

    def queries(url: str) -> int:
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="peewee"):
            assert carol.get(url).status_code == 200
        return len([r for r in caplog.records if r.name == "peewee"])

    one, five = queries("/?per=1"), queries("/?per=5")
    # The session's lookup, the page (with each row's next due time) and the count.
    assert one == five and five <= 4, (one, five)
    assert queries("/?per=1&q=terminal") == queries("/?per=5&q=terminal")


def test_a_cut_search_says_how_it_was_cut(
    ctx: Context, queue: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent must know when a search did not look at everything: words without spaces
    are looked for in the newest messages only."""
    from mailgate.store import textsearch

    found = intake.ingest(ctx, compose(subject="端末が動きません"), source="smtp").ticket
    carol = agent(ctx, "carol")
    page = carol.get("/?status=all&q=" + "端末")
    assert numbers(page.text) == [found] and "looked for in the newest" not in page.text
    monkeypatch.setattr(textsearch, "SCANNED", 1)  # older messages than the newest one exist
    page = carol.get("/?status=all&q=" + "端末")
    assert "words without spaces are looked for in the newest" in html.unescape(page.text)
