"""Nobody receives a ticket's answers by writing a header (issue 9).

New collaborators come from the first mail of a new ticket, an agent's ``#cc``, or a
reply authentic for the requester (sent to the reply address signed for the requester,
or DKIM/DMARC pass for the requester's domain in our MTA's Authentication-Results).
Every mail goes in by the pipe (``mailgate ingest -`` in its own process, as Postfix
runs it); what is asserted is what people see on the ticket and in their notices.
"""

from __future__ import annotations

import datetime as dt
import email
import email.utils
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mailgate.context import Context
from mailgate.store import models as m
from mailgate.store import views
from tests import queued
from tests.support import compose, reply_to, via_our_mta

CUSTOMER = "Carla Customer <carla@customer.example>"


def pipe(config_path: Path, raw: bytes) -> tuple[str, int]:
    """One mail through ``mailgate ingest -``; its outcome line and ticket number."""
    done = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(config_path), "ingest", "-"],
        input=raw,
        capture_output=True,
        timeout=60,
        cwd=config_path.parent,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    number = re.search(r"#(\d+)\]", out)
    assert number is not None, out
    return out, int(number.group(1))


def detail(ctx: Context, number: int) -> dict[str, Any]:
    return views.ticket_detail(ctx.config, views.ticket(number))


def notices(number: int, kind: str) -> list[email.message.Message]:
    ticket = views.ticket(number)
    return [
        email.message_from_bytes(queued.mail(item))
        for item in m.OutboxItem.select().where(
            (m.OutboxItem.ticket == ticket.id) & (m.OutboxItem.notice == kind)
        )
    ]


def text_of(message: email.message.Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    return ""


def opened(
    ctx: Context, config_path: Path, cc: str = "Boss <boss@customer.example>", subject: str = ""
) -> int:
    """Carla opens a ticket, Cc her boss: the first mail's Cc join."""
    raw = compose(sender=CUSTOMER, cc=cc, **({"subject": subject} if subject else {}))
    _, number = pipe(config_path, raw)
    assert detail(ctx, number)["collaborators"] == ["boss@customer.example"]
    return number


def test_a_forged_reply_with_a_cc_adds_nobody_and_the_assignee_is_told(
    ctx: Context, config_path: Path
) -> None:
    number = opened(ctx, config_path)
    (ack,) = notices(number, "acknowledgement")
    forged = compose(
        sender=CUSTOMER,
        to="support@example.org",
        cc="Mallory <mallory@attacker.example>",
        subject=f"Re: [EB#{number}] The mobile online banking is down",
        in_reply_to=ack["Message-ID"],
        body="Please keep my assistant in the loop.",
    )
    out, same = pipe(config_path, forged)
    assert out.startswith("appended") and same == number
    ticket = detail(ctx, number)
    assert ticket["collaborators"] == ["boss@customer.example"]
    reply = [x for x in ticket["messages"] if x["direction"] == "in"][-1]
    assert "Mallory <mallory@attacker.example>" in reply["cc"]  # recorded on the message
    assert (
        "Cc not added: mallory@attacker.example (the reply is not authentic for the requester)"
        in reply["trace"]
    )
    told = notices(number, "customer_reply")
    assert told, "the team hears of the reply"
    for notice in told:
        assert "Cc not added: mallory@attacker.example" in text_of(notice)
        assert "mallory" not in str(notice["To"]) + str(notice["Cc"] or "")
    assert "cc_not_added" in [e["kind"] for e in ticket["events"]]


def test_a_reply_to_the_address_signed_for_the_requester_adds_its_cc(
    ctx: Context, config_path: Path
) -> None:
    number = opened(ctx, config_path)
    (ack,) = notices(number, "acknowledgement")
    reply_address = email.utils.parseaddr(str(ack["Reply-To"]))[1]
    assert re.fullmatch(rf"support\+{number}-[a-z0-9]+@example\.org", reply_address)
    answer = reply_to(
        ack.as_bytes(),
        sender=CUSTOMER,
        body="My colleague Dave takes over.",
        cc="Dave <dave@customer.example>",
    )
    out, same = pipe(config_path, answer)
    assert out.startswith("appended") and same == number
    ticket = detail(ctx, number)
    assert ticket["collaborators"] == ["boss@customer.example", "dave@customer.example"]
    assert not any("Cc not added" in text_of(n) for n in notices(number, "customer_reply"))


def test_a_token_signed_for_another_ticket_proves_nothing(ctx: Context, config_path: Path) -> None:
    # Two questions (the same text in the same second would be one mail sent twice).
    first = opened(ctx, config_path, subject="Card blocked")
    other = opened(ctx, config_path, subject="Online banking is down")
    assert first != other
    (ack,) = notices(first, "acknowledgement")
    token = email.utils.parseaddr(str(ack["Reply-To"]))[1].split("@")[0].split("-", 1)[1]
    forged = compose(
        sender=CUSTOMER,
        to=f"support+{other}-{token}@example.org",
        cc="mallory@attacker.example",
        subject="Re: help",
    )
    _, same = pipe(config_path, forged)
    assert same == other
    assert detail(ctx, other)["collaborators"] == ["boss@customer.example"]


@pytest.mark.config({"security": {"trusted_authserv_ids": ["mx.example.org"]}})
def test_dkim_pass_for_the_requesters_domain_lets_a_reply_add_its_cc(
    ctx: Context, config_path: Path
) -> None:
    number = opened(ctx, config_path)
    raw = compose(
        sender=CUSTOMER,
        cc="Dave <dave@customer.example>",
        subject=f"Re: [EB#{number}] The mobile online banking is down",
    )
    passed = via_our_mta(raw, "mx.example.org; dkim=pass header.d=customer.example")
    pipe(config_path, passed)
    assert detail(ctx, number)["collaborators"] == [
        "boss@customer.example",
        "dave@customer.example",
    ]
    spf_only = compose(
        sender=CUSTOMER,
        cc="mallory@attacker.example",
        subject=f"Re: [EB#{number}] The mobile online banking is down",
    )
    pipe(
        config_path,
        via_our_mta(spf_only, "mx.example.org; spf=pass smtp.mailfrom=customer.example"),
    )
    assert "mallory@attacker.example" not in detail(ctx, number)["collaborators"]


@pytest.mark.config({"lifecycle": {"max_collaborators": 3}})
def test_collaborators_per_ticket_are_capped(ctx: Context, config_path: Path) -> None:
    many = ", ".join(f"person{i}@customer.example" for i in range(40))
    _, number = pipe(config_path, compose(sender=CUSTOMER, cc=many))
    ticket = detail(ctx, number)
    assert ticket["collaborators"] == [f"person{i}@customer.example" for i in range(3)]
    capped = [e for e in ticket["events"] if e["kind"] == "collaborators_capped"]
    assert len(capped) == 1


def agent_answers(config_path: Path, number: int, body: str) -> None:
    """Alice answers the assignment notice she got (its Reply-To is signed for her)."""
    ticket = views.ticket(number)
    (assignment,) = [
        n for n in notices(number, "assignment") if "alice@example.org" in str(n["To"])
    ]
    assert ticket is not None
    answer = reply_to(assignment.as_bytes(), sender="Alice Smith <alice@example.org>", body=body)
    out, same = pipe(config_path, answer)
    assert same == number, out


@pytest.mark.config({"lifecycle": {"max_collaborators": 100}, "outbound": {"max_recipients": 10}})
def test_an_agent_reply_goes_to_at_most_max_recipients(ctx: Context, config_path: Path) -> None:
    many = ", ".join(f"person{i}@customer.example" for i in range(30))
    _, number = pipe(config_path, compose(sender=CUSTOMER, cc=many))
    assert len(detail(ctx, number)["collaborators"]) == 30
    agent_answers(config_path, number, "We are on it.")
    (answer,) = notices(number, "agent_reply")
    recipients = email.utils.getaddresses([str(answer["To"]), str(answer["Cc"] or "")])
    assert len([a for _, a in recipients if a]) == 10
    assert recipients[0][1] == "carla@customer.example"  # the requester always first
    events = detail(ctx, number)["events"]
    assert any(e["kind"] == "recipients_capped" and e["new"] == "21" for e in events), events


@pytest.mark.config({"outbound": {"limits": {"per_ticket": ["3/1h"]}}})
def test_an_agent_reply_held_by_the_ticket_breaker_is_queued_and_the_agent_told(
    ctx: Context, config_path: Path
) -> None:
    _, number = pipe(config_path, compose(sender=CUSTOMER))  # ack + assignment to the team
    agent_answers(config_path, number, "Here is the fix.")
    (held,) = [
        i
        for i in m.OutboxItem.select().where(m.OutboxItem.notice == "agent_reply")
        if i.ticket_id == views.ticket(number).id
    ]
    assert held.status == "queued"
    assert held.next_attempt_at > m.utcnow() + dt.timedelta(minutes=50)  # when the window opens
    (told,) = notices(number, "reply_held")
    assert "alice@example.org" in str(told["To"])
    assert "queued, it goes out by itself at" in text_of(told)
    events = detail(ctx, number)["events"]
    assert any(e["kind"] == "notice_held" for e in events)
