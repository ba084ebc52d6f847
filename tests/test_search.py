"""Finding tickets: `mailgate tickets list` filters, full-text search, sort and pages.

Mail arrives through ``ingest`` as the pipe hands it over; the list is the CLI an
admin runs (``mailgate.cli.main``), on a SQLite file and on the real PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailgate import intake
from mailgate.cli import main
from mailgate.context import Context
from tests.support import compose


def ingest(ctx: Context, **mail: Any) -> int:
    outcome = intake.ingest(ctx, compose(**mail), source="pipe")
    assert outcome.ticket is not None, outcome
    return int(outcome.ticket)


def listed(
    ctx: Context, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[list[int], str, str]:
    """Ticket numbers `tickets list --json ARGS` prints, and stdout/stderr as text."""
    code = main(["--config", str(ctx.config.path), "tickets", "list", "--json", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return [row["number"] for row in json.loads(out)], out, err


def failing(ctx: Context, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = main(["--config", str(ctx.config.path), "tickets", "list", *args])
    out, err = capsys.readouterr()
    assert code != 0 and "Traceback" not in err, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def threads(ctx: Context) -> dict[str, int]:
    """Tickets in German, French and Japanese, one with an attachment, one plain."""
    return {
        "de": ingest(
            ctx,
            sender="Bernd <bernd@bigcorp.example>",
            subject="Kartenterminal Störung in der Filiale",
            body="Das Terminal zeigt seit heute früh eine Störung an.\n",
        ),
        "fr": ingest(
            ctx,
            sender="Zoé <zoe@client.example>",
            subject="Problème de paiement",
            body="Le terminal de paiement ne fonctionne plus depuis lundi.\n",
        ),
        "ja": ingest(
            ctx,
            sender="Yuki <yuki@shop.example>",
            subject="お問い合わせ",
            body="カード端末が動きません。東京の店舗です。\n",
        ),
        "file": ingest(
            ctx,
            sender="Ann <ann@bigcorp.example>",
            subject="Receipt attached",
            body="See the file.\n",
            attachments=[("Kassenbeleg_Mai.pdf", "application/pdf", b"%PDF-1.4")],
        ),
        "plain": ingest(ctx, subject="Password reset", body="I forgot my password.\n"),
    }


def test_text_search_finds_words_prefixes_phrases_and_non_ascii_scripts(
    ctx: Context, threads: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    def found(text: str) -> set[int]:
        return set(listed(ctx, capsys, "--text", text)[0])

    assert found("termin*") == {threads["de"], threads["fr"]}
    assert found("kartenterminal") == {threads["de"]}
    assert found("Störung") == {threads["de"]}
    assert found('"ne fonctionne plus"') == {threads["fr"]}
    assert found('"fonctionne ne"') == set()
    assert found("terminal paiement") == {threads["fr"]}  # every word must match
    assert found("端末") == {threads["ja"]}  # Japanese: a substring of a longer run
    assert found("東京") == {threads["ja"]}
    assert found("kassenbeleg") == {threads["file"]}  # attachment names
    assert found("password") == {threads["plain"]}
    assert found("nothinglikethis") == set()


def test_text_search_finds_a_ticket_by_number_or_any_message_id_of_its_thread(
    ctx: Context, capsys: pytest.CaptureFixture[str]
) -> None:
    number = ingest(ctx, message_id="<first.mail@customer.example>", subject="About my card")
    ingest(ctx, subject="Something else")
    assert listed(ctx, capsys, "--text", "<first.mail@customer.example>")[0] == [number]
    assert listed(ctx, capsys, "--text", "first.mail@customer.example")[0] == [number]
    assert listed(ctx, capsys, "--text", f"#{number}")[0] == [number]
    assert listed(ctx, capsys, "--text", f"[EB#{number}]")[0] == [number]


def test_filters_combine_and_pages_say_how_many_match(
    ctx: Context, threads: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["--config", str(ctx.config.path), "tickets", "assign", str(threads["de"]), "jane"])
        == 0
    )
    assert (
        main(
            [
                "--config",
                str(ctx.config.path),
                "tickets",
                "priority",
                str(threads["fr"]),
                "emergency",
            ]
        )
        == 0
    )
    capsys.readouterr()
    numbers, _, err = listed(ctx, capsys, "--requester", "bigcorp.example")
    assert set(numbers) == {threads["de"], threads["file"]} and err == ""
    assert listed(ctx, capsys, "--assignee", "jane")[0] == [threads["de"]]
    assert listed(ctx, capsys, "--assignee", "me", "--as", "jane")[0] == [threads["de"]]
    assert threads["de"] not in listed(ctx, capsys, "--assignee", "none")[0]
    assert listed(ctx, capsys, "--status", "open")[0] == [threads["de"]]
    assert len(listed(ctx, capsys, "--status", "new,open")[0]) == 5
    assert listed(ctx, capsys, "--sort", "-priority", "--limit", "1")[0] == [threads["fr"]]
    assert listed(ctx, capsys, "--requester", "bigcorp.example", "--text", "termin*")[0] == [
        threads["de"]
    ]
    assert (
        listed(
            ctx,
            capsys,
            "--created-after",
            "2000-01-01",
            "--created-before",
            "2000-01-02",
            "--text",
            "termin*",
        )[0]
        == []
    )
    # Pages: no silent cap, every ticket exactly once.
    first, _, err = listed(ctx, capsys, "--sort", "created", "--limit", "2")
    assert err.strip() == "showing 2 of 5"
    second = listed(ctx, capsys, "--sort", "created", "--limit", "2", "--offset", "2")[0]
    third = listed(ctx, capsys, "--sort", "created", "--limit", "2", "--offset", "4")[0]
    assert sorted(first + second + third) == sorted(threads.values())
    assert first + second + third == listed(ctx, capsys, "--sort", "created", "--all")[0]
    everything, _, err = listed(ctx, capsys, "--all")
    assert len(everything) == 5 and err == ""
    code = main(["--config", str(ctx.config.path), "tickets", "list", "--limit", "3"])
    out = capsys.readouterr().out
    assert code == 0 and out.splitlines()[-1] == "showing 3 of 5"
    code = main(["--config", str(ctx.config.path), "tickets", "list", "--csv", "--limit", "1"])
    out, err = capsys.readouterr()
    assert out.splitlines()[0].startswith("number,tag,status") and len(out.splitlines()) == 2
    assert err.strip() == "showing 1 of 5"


def test_bad_filter_values_are_one_line_naming_what_exists(
    ctx: Context, threads: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert "known: alice, bob, carol, jane, none" in failing(ctx, capsys, "--assignee", "zed")
    assert "level1" in failing(ctx, capsys, "--team", "nosuchteam")
    assert "one of new, open, pending" in failing(ctx, capsys, "--status", "open,gone")
    assert "YYYY-MM-DD" in failing(ctx, capsys, "--created-after", "last tuesday")
    assert "phrase is not closed" in failing(ctx, capsys, "--text", '"card terminal')
    assert "end of a word" in failing(ctx, capsys, "--text", "ter*min")
    assert "nothing to search for" in failing(ctx, capsys, "--text", " ,; ")
    assert "--as" in failing(ctx, capsys, "--assignee", "me")
    assert "unknown field" in failing(ctx, capsys, "--sort", "colour")
    assert "support" in failing(ctx, capsys, "--mailbox", "sales")


def test_a_search_matching_more_than_it_ranks_says_so(
    ctx: Context, threads: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    """Ranking a million matches of a common word would take seconds: the newest are searched,
    and the count says "at least"."""
    from mailgate import search

    for n in range(3):
        ingest(ctx, subject=f"Terminal {n}", body="The terminal again.")
    wide = search.find(ctx.config, search.Options(text="terminal", searched=3))
    assert not wide.complete and len(wide.rows) >= 1
    narrow = search.find(ctx.config, search.Options(text="kartenterminal", searched=3))
    assert narrow.complete and narrow.total == 1
    assert search.find(ctx.config, search.Options(text="terminal")).total == 5


def test_a_visibility_scope_limits_the_list_in_the_query(ctx: Context) -> None:
    """The web desk's rule (mailgate.web.access): an agent's teams and their own tickets."""
    from mailgate import search
    from mailgate.admin import tickets

    level1 = ingest(ctx, subject="Card broken", body="My card is broken.\n")
    banking = ingest(
        ctx, to="banking@example.org", subject="Card login", body="My card login fails.\n"
    )
    mine = ingest(ctx, subject="Card again", body="Another card problem.\n")
    tickets.assign(ctx, mine, "jane", "admin")

    def seen(teams: tuple[str, ...] | None, agent: str = "", text: str = "") -> set[int]:
        options = search.Options(text=text, visible_to_teams=teams, visible_to_agent=agent)
        found = search.find(ctx.config, options)
        assert found.total == len(found.rows)
        return {row["number"] for row in found.rows}

    assert seen(None) == {level1, banking, mine}
    assert seen(("sysadmins",), "jane") == {mine}
    assert seen(("sysadmins",), "jane", text="card") == {mine}
    assert seen(("level1",), "alice") == {level1, mine}
    assert seen(("level1", "online-banking"), "bob", text="card") == {level1, banking, mine}
    assert seen((), "") == set()


def test_every_sort_field_sorts_both_ways(
    ctx: Context, threads: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    """``--sort due`` (a subquery) failed with an AttributeError before issue 15's API."""
    from mailgate.search import SORTS

    for field in SORTS:
        for sort in (field, f"-{field}"):
            numbers = listed(ctx, capsys, "--sort", sort, "--all")[0]
            assert sorted(numbers) == sorted(threads.values()), sort


def test_a_list_can_count_up_to_a_number_and_say_it_is_at_least(
    ctx: Context, threads: dict[str, int]
) -> None:
    """The web desk counts a queue up to 10,000: the scan of an agent's scope stops there."""
    from mailgate import search

    def found(up_to: int | None, **options: Any) -> tuple[int, bool, int]:
        got = search.find(ctx.config, search.Options(count_up_to=up_to, limit=2, **options))
        return got.total, got.complete, len(got.rows)

    assert found(None) == (5, True, 2)
    assert found(5) == (5, True, 2)
    assert found(3) == (3, False, 2)
    assert found(3, visible_to_teams=("level1",), visible_to_agent="alice") == (3, False, 2)
    assert found(4, requester="bigcorp.example") == (2, True, 2)


SLA_BY_PRIORITY: dict[str, Any] = {
    "sla": [
        {"key": "urgent", "name": "Urgent", "priorities": ["emergency"], "resolution": "1h"},
        {"key": "normal", "name": "Normal", "priorities": ["normal", "high"],
         "first_response": "2h", "resolution": "8h"},
        {"key": "low", "name": "Low", "priorities": ["low"], "resolution": "3d"},
    ],
}  # fmt: skip


@pytest.mark.config(SLA_BY_PRIORITY)
def test_the_due_sort_follows_the_running_clocks_and_puts_tickets_without_one_last(
    ctx: Context,
) -> None:
    """The next due time is kept on the ticket with its clocks (migration 0015): the
    "due" sort reads it from an index, and a resolved ticket leaves the front of it."""
    from mailgate import search
    from mailgate.admin import tickets as admin
    from mailgate.store import models as m
    from mailgate.store import sla as clock_rows

    low, normal, urgent, resolved = (ingest(ctx, subject=s) for s in ("low", "n", "u", "r"))
    for number, priority in ((low, "low"), (urgent, "emergency")):
        assert admin.set_priority(ctx, number, priority, "agent:alice")
    admin.set_status(ctx, resolved, "resolved", "agent:alice")

    def order(sort: str, **options: Any) -> list[int]:
        found = search.find(ctx.config, search.Options(sort=sort, **options))
        return [r["number"] for r in found.rows]

    assert order("due") == [urgent, normal, low, resolved]  # 1 h, 2 h, 3 days, none
    assert order("-due") == [low, normal, urgent, resolved]  # none last, either way
    assert order("due", limit=2, offset=1) == [normal, low]
    assert order("-due", limit=2, offset=2) == [urgent, resolved]
    for number in (low, normal, urgent, resolved):
        ticket = m.Ticket.get(m.Ticket.number == number)
        running = [
            c.due_at for c in clock_rows.clocks_of(ticket.id) if c.met_at is None and not c.paused
        ]
        assert ticket.next_due_at == (min(running) if running else None), number
    shown = search.find(ctx.config, search.Options(sort="due", limit=1)).rows[0]
    assert shown["number"] == urgent and shown["due_at"] is not None
    admin.set_status(ctx, urgent, "resolved", "agent:alice")
    assert order("due") == [normal, low, urgent, resolved]


def test_sorts_by_priority_and_status_page_through_every_ticket_once(
    ctx: Context, threads: dict[str, int]
) -> None:
    """Priority and status sorts read one index range per value: pages still cover
    every ticket once, in the order of the values, and a filter skips other values."""
    from mailgate import search
    from mailgate.admin import tickets as admin
    from mailgate.config import PRIORITIES, STATUSES
    from mailgate.store.search import PRIORITY_RANK, STATUS_RANK

    assert set(PRIORITY_RANK) == set(PRIORITIES) and set(STATUS_RANK) == set(STATUSES)
    numbers = sorted(threads.values())
    admin.set_priority(ctx, numbers[0], "high", "agent:alice")
    admin.set_priority(ctx, numbers[1], "low", "agent:alice")
    admin.set_status(ctx, numbers[2], "pending", "agent:alice")
    for sort in ("priority", "-priority", "status", "-status"):
        pages = [
            [r["number"] for r in search.find(ctx.config, search.Options(
                sort=sort, limit=2, offset=offset)).rows]
            for offset in (0, 2, 4)
        ]  # fmt: skip
        every = [n for page in pages for n in page]
        assert sorted(every) == numbers, sort
        whole = search.find(ctx.config, search.Options(sort=sort)).rows
        assert [r["number"] for r in whole] == every, sort
    top = search.find(ctx.config, search.Options(sort="-priority")).rows
    assert top[0]["number"] == numbers[0] and top[-1]["number"] == numbers[1]
    ranks = [STATUS_RANK[r["status"]]
             for r in search.find(ctx.config, search.Options(sort="status")).rows]
    assert ranks == sorted(ranks) and len(set(ranks)) > 1  # fmt: skip
    only = search.find(ctx.config, search.Options(sort="status", status="pending"))
    assert [r["number"] for r in only.rows] == [numbers[2]] and only.total == 1


def test_a_common_word_lists_the_tickets_of_its_newest_matches_newest_first(
    ctx: Context, threads: dict[str, int]
) -> None:
    """When more messages match than are ranked, ranking an arbitrary few of them is
    costly and says little: the newest matches are shown newest first, and the page
    says how it was cut; a rarer word is ranked, best match first."""
    from mailgate import search

    older = ingest(ctx, subject="Terminal terminal terminal", body="terminal terminal")
    newer = [ingest(ctx, subject=f"Case {n}", body=f"The terminal {n}.") for n in range(3)]
    wide = search.find(ctx.config, search.Options(text="terminal", searched=3))
    assert wide.cut == "newest" and not wide.complete
    assert [r["number"] for r in wide.rows] == newer[::-1]  # older is not among the newest 3
    ranked = search.find(ctx.config, search.Options(text="terminal", searched=100))
    assert ranked.cut == "" and ranked.complete
    assert ranked.rows[0]["number"] == older  # the best match, though the oldest


def test_words_without_spaces_are_looked_for_in_the_newest_messages_only(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Japanese word is a scan of the messages (no tokenizer splits it): of the newest
    ``SCANNED`` messages only, and the page says so when there are older ones."""
    from mailgate import search
    from mailgate.store import textsearch

    old = ingest(ctx, subject="カード端末が動きません", body="東京の店舗です")
    for n in range(3):
        ingest(ctx, subject=f"Other {n}", body="nothing in Japanese")
    new = ingest(ctx, subject="端末 again", body="支払いができません")
    everything = search.find(ctx.config, search.Options(text="端末"))
    assert {r["number"] for r in everything.rows} == {old, new} and everything.cut == ""
    from mailgate.store import models as m

    ticket = m.Ticket.get(m.Ticket.number == new)
    first = m.Message.select(m.Message.id).where(m.Message.ticket == ticket.id).order_by(
        m.Message.id).first()  # fmt: skip
    newest = m.Message.select(m.Message.id).order_by(m.Message.id.desc()).first()
    assert first is not None and newest is not None
    monkeypatch.setattr(textsearch, "SCANNED", newest.id - first.id + 1)  # the new ticket's
    recent = search.find(ctx.config, search.Options(text="端末"))
    assert [r["number"] for r in recent.rows] == [new]
    assert recent.cut == "window" and not recent.complete


@pytest.mark.config({"route": [{"name": "vip", "subject": ["refund"], "tags": ["vip", "50%_off"]}]})
def test_a_tag_a_routing_rule_set_finds_its_tickets(
    ctx: Context, capsys: pytest.CaptureFixture[str]
) -> None:
    tagged = ingest(ctx, subject="A refund please", body="Order 1")
    ingest(ctx, subject="Where is my parcel", body="Order 2")
    assert listed(ctx, capsys, "--tag", "vip")[0] == [tagged]
    assert listed(ctx, capsys, "--tag", "50%_off")[0] == [tagged]
    assert listed(ctx, capsys, "--tag", "50")[0] == []  # a whole tag, not a part of one
