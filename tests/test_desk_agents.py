"""Agents know what happens on their tickets (issue 13): notes, colleagues' answers, handovers.

Every mail goes in through the listener; every notice comes out through the relay, and
each test reads what each person found in their inbox — nothing else counts.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from mailgate.store import views as queries
from tests.desk import Desk, kinds, number_of, plain, to
from tests.support import compose, reply_to, via_our_mta

CARLA = "Carla Rossi <carla@customer.example>"


def opened(desk: Desk, **kwargs: object) -> int:
    code, answer = desk.send(compose(sender=CARLA, **kwargs), "carla@customer.example")  # type: ignore[arg-type]
    assert code == 250 and "created" in answer, answer
    return number_of(answer)


def answer(desk: Desk, notice: object, sender: str, body: str) -> str:
    raw = reply_to(bytes(notice), sender=sender, body=body)  # type: ignore[call-overload]
    code, text = desk.send(raw, sender.split("<")[-1].strip(">"))
    assert code == 250, text
    return text


def queue_notices(desk: Desk) -> dict[str, bytes]:
    """Each agent's mail about the new ticket, by address (as their client keeps it)."""
    return {
        rcpt: r.content
        for r in desk.deliver()
        for rcpt in r.rcpt_tos
        if r.message["X-Mailgate-Notice"] == "assignment"
    }


def test_a_note_reaches_the_assignee_never_its_author_and_never_the_customer(desk: Desk) -> None:
    number = opened(desk)
    inbox = queue_notices(desk)
    answer(desk, inbox["alice@example.org"], "Alice Smith <alice@example.org>", "#assign me")
    desk.deliver()
    answer(desk, inbox["bob@example.org"], "Bob Jones <bob@example.org>",
           "#note\nCarla called: the app shows error 503 since 08:00.")  # fmt: skip
    mails = desk.deliver()
    assert kinds(mails) == [("note", "alice@example.org")]
    (note,) = to(mails, "alice@example.org", "note")
    assert "Carla called: the app shows error 503 since 08:00." in plain(note)
    assert "Bob Jones" in str(note["Subject"]) and f"#{number}]" in str(note["Subject"])
    assert "Carla Rossi <carla@customer.example>" in plain(note)
    # A note written with the CLI reaches her the same way; her own notes reach nobody.
    result = desk.cli("tickets", "note", str(number), "--as", "bob", "--text", "Called back.")
    assert result.returncode == 0, result.stderr
    answer(desk, inbox["alice@example.org"], "alice@example.org", "#note\nMy own reminder.")
    mails = desk.deliver()
    assert kinds(mails) == [("note", "alice@example.org")]
    assert "Called back." in plain(to(mails, "alice@example.org")[0])


def test_a_note_on_an_unassigned_ticket_reaches_the_team_but_not_its_author(desk: Desk) -> None:
    opened(desk)
    inbox = queue_notices(desk)
    answer(desk, inbox["bob@example.org"], "bob@example.org", "#note\nLooks like the outage.")
    mails = desk.deliver()
    assert kinds(mails) == [("note", "alice@example.org")]


def test_the_assignee_gets_a_copy_when_another_agent_answers_the_customer(desk: Desk) -> None:
    number = opened(desk)
    inbox = queue_notices(desk)
    answer(desk, inbox["alice@example.org"], "alice@example.org", "#assign me")
    desk.deliver()
    answer(desk, inbox["bob@example.org"], "Bob Jones <bob@example.org>",
           "Dear Carla,\n\nthe service is back since 09:12.\n\nBob")  # fmt: skip
    mails = desk.deliver()
    assert kinds(mails) == [
        ("agent_activity", "alice@example.org"),
        ("agent_reply", "carla@customer.example"),
    ]
    (copy,) = to(mails, "alice@example.org")
    assert "the service is back since 09:12." in plain(copy)
    assert "Bob Jones answered the customer" in str(copy["Subject"])
    assert desk.ticket(number)["assignee"] == "alice"  # a colleague's answer takes nothing
    # Her own answer is no news to her.
    answer(desk, inbox["alice@example.org"], "alice@example.org", "Anything else, Carla?")
    assert kinds(desk.deliver()) == [("agent_reply", "carla@customer.example")]


def test_the_note_of_an_assign_is_in_the_assignment_and_the_previous_assignee_is_told(
    desk: Desk,
) -> None:
    number = opened(desk)
    inbox = queue_notices(desk)
    answer(desk, inbox["alice@example.org"], "alice@example.org", "#assign me")
    desk.deliver()
    answer(desk, inbox["bob@example.org"], "Bob Jones <bob@example.org>",
           "#assign jane\n#note\nJane, please take over: it is the payment gateway.")  # fmt: skip
    mails = desk.deliver()
    assert kinds(mails) == [
        ("assignment", "jane.doe@example.org"),
        ("reassigned", "alice@example.org"),
    ]
    (assignment,) = to(mails, "jane.doe@example.org")
    assert "Jane, please take over: it is the payment gateway." in plain(assignment)
    (taken,) = to(mails, "alice@example.org")
    assert "Bob Jones assigned it to Jane Doe" in plain(taken)
    assert "Reassigned to Jane Doe" in str(taken["Subject"])
    events = [(e["kind"], e["old"], e["new"]) for e in desk.ticket(number)["events"]]
    assert ("assignee", "alice", "jane") in events
    # Jane giving it back to the queue herself: she is not told; the team is.
    answer(desk, to(mails, "jane.doe@example.org")[0].as_bytes(), "jane.doe@example.org",
           "#assign none")  # fmt: skip
    mails = desk.deliver()
    assert ("reassigned", "jane.doe@example.org") not in kinds(mails)
    assert ("assignment", "alice@example.org") in kinds(mails)


def test_the_requester_is_greeted_by_the_name_in_her_mail_and_agents_see_it(desk: Desk) -> None:
    opened(desk)
    mails = desk.deliver()
    (ack,) = to(mails, "carla@customer.example", "acknowledgement")
    assert plain(ack).startswith("Hello Carla Rossi,")
    (queue,) = to(mails, "alice@example.org", "assignment")
    assert "Requester: Carla Rossi <carla@customer.example>" in plain(queue)
    # She signs differently now (an encoded name, as most clients send non-ASCII).
    raw = compose(sender="=?utf-8?q?Carla_Ross=C3=AC?= <carla@customer.example>", subject="Card")
    code, text = desk.send(raw, "carla@customer.example")
    assert code == 250, text
    (ack,) = to(desk.deliver(), "carla@customer.example", "acknowledgement")
    assert plain(ack).startswith("Hello Carla Rossì,")
    detail = queries.ticket_detail(desk.ctx.config, queries.ticket(number_of(text)))
    assert detail["requester_name"] == "Carla Rossì"


TRUSTED = {"security": {"trusted_authserv_ids": ["mx.example.org"]}}
DKIM_ALICE = (
    "mx.example.org (Postfix); dkim=pass (2048-bit key) header.d=example.org header.b=abc;"
    " dmarc=pass header.from=example.org"
)


@pytest.mark.config(TRUSTED)
def test_queue_answers_an_agent_with_her_tickets_and_changes_nothing(desk: Desk) -> None:
    first = opened(desk, subject="Card blocked")
    inbox = queue_notices(desk)
    answer(desk, inbox["alice@example.org"], "alice@example.org", "#assign me")
    opened(desk, subject="Transfer missing")  # in the queue, nobody's yet
    desk.deliver()
    before = desk.ticket(first)
    answer(desk, inbox["alice@example.org"], "alice@example.org", "#queue")
    mails = desk.deliver()
    assert kinds(mails) == [("queue", "alice@example.org")]
    listing = plain(to(mails, "alice@example.org")[0])
    assert f"[EB#{first}]  open, normal" in listing and "Card blocked" in listing
    assert "Transfer missing" not in listing
    assert "Your queue: 1 ticket" in str(to(mails, "alice@example.org")[0]["Subject"])
    assert desk.ticket(first)["messages"] == before["messages"]  # nothing on the ticket
    # A new mail to the mailbox, authenticated by our MTA's DKIM check: no ticket either.
    tickets = len(queries.ticket_list(desk.ctx.config))
    raw = via_our_mta(compose(sender="Alice Smith <alice@example.org>", subject="queue",
                              body="#queue\n"), DKIM_ALICE)  # fmt: skip
    result = desk.pipe(raw)
    assert result.returncode == 0 and result.stdout.startswith("queue"), result.stdout
    assert len(queries.ticket_list(desk.ctx.config)) == tickets
    assert kinds(desk.deliver()) == [("queue", "alice@example.org")]
    # Without proof it is not Alice: no list for whoever wrote it.
    code, text = desk.send(compose(sender="alice@example.org", subject="q", body="#queue\n"),
                           "alice@example.org", ["support@example.org"])  # fmt: skip
    assert code == 250 and "created" in text, text  # an outside mail like any other
    assert ("queue", "alice@example.org") not in kinds(desk.deliver())


BERLIN = ZoneInfo("Europe/Berlin")
AGENTS_WITH_DIGEST = {
    "gateway": {"timezone": "Europe/Berlin"},
    "agent": [
        {"key": "alice", "name": "Alice Smith", "emails": ["alice@example.org"]},
        {"key": "bob", "name": "Bob Jones", "emails": ["bob@example.org"]},
        {"key": "carol", "name": "Carol White", "emails": ["carol@example.org"]},
        {"key": "jane", "name": "Jane Doe", "emails": ["jane.doe@example.org"],
         "digest": "08:00"},
    ],
}  # fmt: skip


@pytest.mark.config(AGENTS_WITH_DIGEST)
def test_a_daily_digest_at_the_agents_hour_once_a_day(desk: Desk) -> None:
    number = opened(desk)
    queue_notices(desk)
    assert desk.cli("tickets", "assign", str(number), "jane").returncode == 0
    desk.deliver()

    # Tomorrow and the day after, in Berlin (the ticket was opened now: the runs come after).
    tomorrow = dt.datetime.now(BERLIN).date() + dt.timedelta(days=1)

    def run(day: int, berlin: str) -> str:
        local = dt.datetime.combine(tomorrow + dt.timedelta(days=day), dt.time.fromisoformat(berlin))
        at = local.replace(tzinfo=BERLIN).astimezone(dt.UTC).isoformat()
        result = desk.cli("jobs", "run", "--at", at)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "digest" not in run(0, "07:30")  # not yet
    assert desk.deliver() == []
    assert "daily digest queued for jane" in run(0, "08:05")
    mails = desk.deliver()
    assert kinds(mails) == [("queue", "jane.doe@example.org")]
    assert f"[EB#{number}]" in plain(to(mails, "jane.doe@example.org")[0])
    assert "digest" not in run(0, "16:00")  # once a day
    assert "daily digest queued for jane" in run(1, "08:01")
