"""Tickets on behalf of someone else (issue 13): an agent's forward, `tickets create`, web forms.

Mail comes in as the MTA hands it over (the pipe, with the Authentication-Results our
MTA adds) or straight to the listener; what leaves is read at the relay.
"""

from __future__ import annotations

import datetime as dt
import json
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from tests.desk import Desk, kinds, number_of, plain, to
from tests.support import compose, reply_to, via_our_mta

TRUSTED = {"security": {"trusted_authserv_ids": ["mx.example.org"]}}
DKIM_ALICE = (
    "mx.example.org (Postfix); dkim=pass (2048-bit key) header.d=example.org header.b=abc;"
    " dmarc=pass header.from=example.org"
)
GMAIL_FORWARD = """\
Carla called as well, she needs the card today. Please look at it.

Alice

---------- Forwarded message ---------
From: Carla Rossi <carla@customer.example>
Date: Mon, Nov 23, 2026 at 9:12 AM
Subject: My card is blocked
To: Alice Smith <alice@example.org>


Hello Alice,

my card was blocked at the airport this morning.

Carla
"""


def piped(desk: Desk, raw: bytes) -> dict[str, object]:
    result = desk.pipe(raw, "--json")
    assert result.returncode == 0, result.stderr
    outcome: dict[str, object] = json.loads(result.stdout)
    return outcome


@pytest.mark.config(TRUSTED)
def test_an_agents_forward_opens_the_ticket_for_the_customer(desk: Desk) -> None:
    raw = compose(sender="Alice Smith <alice@example.org>", subject="Fwd: My card is blocked",
                  body=GMAIL_FORWARD)  # fmt: skip
    outcome = piped(desk, via_our_mta(raw, DKIM_ALICE))
    assert outcome["action"] == "created"
    ticket = desk.ticket(int(str(outcome["ticket"])))
    assert (ticket["requester"], ticket["requester_name"]) == ("carla@customer.example", "Carla Rossi")
    assert ticket["subject"] == "My card is blocked"
    first, note = ticket["messages"][:2]
    assert (first["kind"], first["from"]) == ("customer", "carla@customer.example")
    assert first["text"].startswith("Hello Alice,\n\nmy card was blocked at the airport")
    assert first["date"].startswith("2026-11-23") and "09:12" in first["date"]
    assert note["kind"] == "note" and note["text"].startswith("Carla called as well")
    mails = desk.deliver()
    (ack,) = to(mails, "carla@customer.example")
    assert ack["X-Mailgate-Notice"] == "acknowledgement"
    assert plain(ack).startswith("Hello Carla Rossi,")
    assert "Carla called as well" not in plain(ack)  # the agent's words stay internal
    (queue,) = to(mails, "bob@example.org", "assignment")
    assert "Carla called as well, she needs the card today." in plain(queue)


@pytest.mark.config(TRUSTED)
def test_an_attached_forward_and_requester_line(desk: Desk) -> None:
    inner = EmailMessage(policy=SMTP)
    inner["From"] = "Dave Miller <dave@partner.example>"
    inner["To"] = "alice@example.org"
    inner["Subject"] = "Invoice 2026-11 is wrong"
    inner["Date"] = "Fri, 20 Nov 2026 16:45:00 +0100"
    inner.set_content("Hi Alice,\n\nthe invoice lists twelve accounts, we have ten.\n\nDave\n")
    outer = EmailMessage(policy=SMTP)
    outer["From"] = "Alice Smith <alice@example.org>"
    outer["To"] = "support@example.org"
    outer["Subject"] = "Fwd: Invoice 2026-11 is wrong"
    outer["Message-ID"] = "<fwd-attached@example.org>"
    outer.set_content("For billing.\n")
    outer.add_attachment(inner)
    outcome = piped(desk, via_our_mta(outer.as_bytes(), DKIM_ALICE))
    ticket = desk.ticket(int(str(outcome["ticket"])))
    assert ticket["requester"] == "dave@partner.example"
    first = ticket["messages"][0]
    assert first["text"].startswith("Hi Alice,") and first["date"] == "2026-11-20T15:45:00Z"
    # #requester names the customer explicitly, and wins over the forwarded sender.
    body = "#requester erin@partner.example\nErin asked for this one.\n\n" + GMAIL_FORWARD
    raw = compose(sender="alice@example.org", subject="Fwd: My card is blocked", body=body)
    outcome = piped(desk, via_our_mta(raw, DKIM_ALICE))
    assert desk.ticket(int(str(outcome["ticket"])))["requester"] == "erin@partner.example"
    got = {rcpt for r in desk.deliver() for rcpt in r.rcpt_tos}
    assert {"dave@partner.example", "erin@partner.example"} <= got
    assert "carla@customer.example" not in got


@pytest.mark.config(TRUSTED)
def test_a_forged_agent_or_a_customer_forwarding_opens_their_own_ticket(desk: Desk) -> None:
    # Straight to the listener, Authentication-Results prove nothing: not Alice's mail.
    body = "#requester erin@partner.example\n\n" + GMAIL_FORWARD
    raw = via_our_mta(compose(sender="alice@example.org", subject="Fwd: x", body=body), DKIM_ALICE)
    code, answer = desk.send(raw, "alice@example.org", ["support@example.org"])
    assert code == 250, answer
    assert desk.ticket(number_of(answer))["requester"] != "erin@partner.example"
    # A customer forwarding somebody's mail is the customer of that ticket.
    raw = compose(sender="Dave Miller <dave@partner.example>", subject="Fwd: card", body=GMAIL_FORWARD)
    code, answer = desk.send(raw, "dave@partner.example")
    assert desk.ticket(number_of(answer))["requester"] == "dave@partner.example"
    got = {rcpt for r in desk.deliver() for rcpt in r.rcpt_tos}
    assert "erin@partner.example" not in got and "carla@customer.example" not in got
    assert "dave@partner.example" in got


def test_tickets_create_mails_the_customer_once_and_her_answer_threads(desk: Desk) -> None:
    result = desk.cli(
        "tickets", "create", "--requester", "carla@customer.example", "--subject",
        "Your new card", "--text", "Dear Carla,\n\nyour new card left today.\n\nJane",
        "--as", "jane", "--priority", "high", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["tag"] == f"[EB#{created['number']}]"
    ticket = desk.ticket(created["number"])
    assert (ticket["assignee"], ticket["priority"], ticket["status"]) == ("jane", "high", "open")
    mails = desk.deliver()
    assert kinds(mails) == [("agent_reply", "carla@customer.example")]
    (sent,) = to(mails, "carla@customer.example")
    assert "your new card left today." in plain(sent)
    assert created["tag"] in str(sent["Subject"])
    answer = reply_to(
        mails[0].content, sender="Carla Rossi <carla@customer.example>",
        body="Thanks, it arrived!", subject="Re: your card",
    )  # fmt: skip
    code, text = desk.send(answer, "carla@customer.example", ["support@example.org"])
    assert code == 250 and "appended" in text and created["tag"] in text, text
    assert kinds(desk.deliver()) == [("customer_reply", "jane.doe@example.org")]
    # Bad input: one line, nothing created.
    bad = desk.cli("tickets", "create", "--requester", "not-an-address", "--subject", "x",
                   "--text", "y", "--as", "jane")  # fmt: skip
    assert bad.returncode != 0 and "not a mail address" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_tickets_create_without_an_agent_leaves_it_unassigned_and_signs_as_the_team(
    desk: Desk,
) -> None:
    result = desk.cli(
        "tickets", "create", "--requester", "carla@customer.example", "--subject",
        "Your new card", "--text", "Dear Carla,\n\nyour new card left today.", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    ticket = desk.ticket(created["number"])
    assert (ticket["assignee"], ticket["team"]) == (None, "level1")
    mails = desk.deliver()
    # The customer gets exactly one mail, the message; the team hears of the new ticket.
    (sent,) = to(mails, "carla@customer.example")
    assert [k for k, rcpt in kinds(mails) if rcpt == "carla@customer.example"] == ["agent_reply"]
    body = plain(sent)
    assert "your new card left today." in body and "Level 1, " in body
    assert not [n for n in ("Alice", "Bob", "Jane", "Carol") if n in body]
    assert str(sent["From"]).endswith("<support@example.org>")
    events = desk.cli("tickets", "show", str(created["number"]), "--json")
    actors = {e["actor"] for e in json.loads(events.stdout)["events"]}
    assert actors == {"admin:cli"}, actors
    (received,) = [r for r in mails if "carla@customer.example" in r.rcpt_tos]
    answer = reply_to(
        received.content, sender="Carla Rossi <carla@customer.example>",
        body="Thanks, it arrived!", subject="Re: your card",
    )  # fmt: skip
    code, text = desk.send(answer, "carla@customer.example", ["support@example.org"])
    assert code == 250 and "appended" in text and created["tag"] in text, text
    assert desk.ticket(created["number"])["assignee"] is None
    assert not to(desk.deliver(), "carla@customer.example")  # no acknowledgement either
    # --team with auto-assignment: the team's rule picks the agent.
    result = desk.cli(
        "tickets", "create", "--requester", "carla@customer.example", "--subject", "Online",
        "--text", "Hello", "--team", "online-banking", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    ticket = desk.ticket(json.loads(result.stdout)["number"])
    assert (ticket["team"], ticket["assignee"]) == ("online-banking", "bob")


@pytest.mark.config({"mailbox": [{"name": "support", "address": "support@example.org",
                                  "team": "level1",
                                  "form_senders": ["noreply", "*@forms.example.net"]}]})  # fmt: skip
def test_a_web_forms_mail_belongs_to_the_person_in_reply_to(desk: Desk) -> None:
    raw = compose(
        sender="Example Bank Website <noreply@examplebank.example>",
        subject="Contact form: card question",
        body="Name: Carla Rossi\nMessage: when does my card arrive?\n",
        headers={"Reply-To": "Carla Rossi <carla@customer.example>"},
    )
    code, answer = desk.send(raw, "noreply@examplebank.example", ["support@example.org"])
    assert code == 250, answer
    assert desk.ticket(number_of(answer))["requester"] == "carla@customer.example"
    # A form service without a Reply-To: a ticket, and nothing ever sent to the form.
    raw = compose(sender="contact@forms.example.net", subject="Form entry", body="Call me back")
    code, answer = desk.send(raw, "contact@forms.example.net", ["support@example.org"])
    assert code == 250, answer
    got = [rcpt for r in desk.deliver() for rcpt in r.rcpt_tos]
    assert "carla@customer.example" in got
    assert not [a for a in got if a.endswith(("examplebank.example", "forms.example.net"))]


def test_dates_of_the_inline_forwards_of_common_clients() -> None:
    from mailgate.mail.forwards import read_inline

    outlook = (
        "Please handle.\n\n-----Original Message-----\n"
        "From: Rossi, Carla [mailto:carla@customer.example]\n"
        "Sent: Monday, November 23, 2026 9:12 AM\nTo: Alice\nSubject: Card\n\nHello\n"
    )
    apple = (
        "FYI\n\nBegin forwarded message:\n\n> From: Carla Rossi <carla@customer.example>\n"
        "> Subject: Card\n> Date: 23 November 2026 at 09:12:00 CET\n> To: Alice\n>\n> Hello\n"
    )
    thunderbird = (
        "\n-------- Forwarded Message --------\nSubject: \tCard\n"
        "Date: \tMon, 23 Nov 2026 10:12:00 +0100\nFrom: \tCarla Rossi <carla@customer.example>\n"
        "To: \talice@example.org\n\nHello\n"
    )
    for text in (outlook, apple, thunderbird):
        found = read_inline(text)
        assert found is not None, text
        assert (found.sender.email, found.subject, found.text) == (
            "carla@customer.example", "Card", "Hello",
        )  # fmt: skip
        assert found.date == dt.datetime(2026, 11, 23, 9, 12, tzinfo=dt.UTC)
    assert read_inline("no forward here\nFrom: someone\n") is None


@pytest.mark.config(TRUSTED)
def test_explain_shows_on_whose_behalf(desk: Desk, tmp_path: Path) -> None:
    path = tmp_path / "fwd.eml"
    raw = compose(sender="alice@example.org", subject="Fwd: My card is blocked", body=GMAIL_FORWARD)
    path.write_bytes(via_our_mta(raw, DKIM_ALICE))
    result = desk.cli("explain", str(path), "--json")
    assert result.returncode == 0, result.stderr
    trace = json.loads(result.stdout)["trace"]
    assert "on behalf of carla@customer.example, from the forwarded mail (inline forwarded" \
        " message block)" in trace
