"""The whole story of a ticket, on real transports: customer, agents, resolution, reopening.

The gateway runs as `mailgate serve` does (SMTP listener, outbox job); every mail goes in
over SMTP like an MTA delivers it, every notice comes out through a real SMTP relay, and
every reply is built from the notice as the recipient's mail client would build it.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import smtplib
import time
from email.message import Message
from pathlib import Path
from typing import Any

from mailgate.context import Context
from mailgate.store import views as queries
from tests.conftest import open_gateway
from tests.relay import Relay, free_port
from tests.support import compose, config_data, load_config, reply_to, write_config


def deliver_in(ctx: Context, raw: bytes, sender: str) -> None:
    """Hand a mail to the listener the way an MTA would (envelope = its To addresses)."""
    parsed = email.message_from_bytes(raw)
    recipients = [
        a for _, a in email.utils.getaddresses([str(h) for h in parsed.get_all("To", [])])
    ]
    with smtplib.SMTP("127.0.0.1", ctx.config.listener.port, timeout=10) as client:
        client.ehlo("mx.customer.example")
        client.sendmail(sender, recipients, raw)


def await_mail(relay: Relay, to: str, subject_part: str, timeout: float = 15.0) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for received in relay.received:
            if to in received.rcpt_tos and subject_part in str(received.message["Subject"]):
                return received.content
        time.sleep(0.05)
    seen = [(r.rcpt_tos, str(r.message["Subject"])) for r in relay.received]
    raise AssertionError(f"no mail to {to} about {subject_part!r}; relay got {seen}")


def ticket(ctx: Context, number: int) -> dict[str, Any]:
    return queries.ticket_detail(ctx.config, queries.ticket(number))


def plain(raw: bytes) -> str:
    message: Message = email.message_from_bytes(raw, policy=email.policy.default)
    return message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_the_whole_story_from_intake_to_reopening(
    tmp_path: Path, database_url: str, relay: Relay, serve_in_thread: Any
) -> None:
    data = config_data(
        tmp_path,
        database_url,
        {
            "listener": {"port": free_port()},
            "jobs": {"outbox_seconds": 1},
            "outbound": {
                "transport": "smtp",
                "smtp": {"host": relay.host, "port": relay.port, "security": "none"},
            },
        },
    )
    ctx = open_gateway(load_config(write_config(tmp_path / "mailgate.toml", data)))
    serve_in_thread(ctx, imap=False)
    customer = "Carla Customer <carla@customer.example>"

    # 1. The customer writes; the ticket lands in Level 1, normal priority; an acknowledgement.
    first = compose(
        sender=customer,
        subject="Mobile banking down",
        body="Hello,\n\nthe entire mobile online banking system is down.\n\nCarla\n",
    )
    deliver_in(ctx, first, "carla@customer.example")
    ack = await_mail(relay, "carla@customer.example", "Mobile banking down")
    number = int(str(email.message_from_bytes(ack)["Subject"]).split("#")[1].split("]")[0])
    state = ticket(ctx, number)
    assert (state["team"], state["priority"], state["status"]) == ("level1", "normal", "new")

    # 2. Alice of Level 1 answers her queue notice: emergency, to Jane of the sysadmins.
    queue_notice = await_mail(relay, "alice@example.org", "New in the Level 1 queue")
    escalate = reply_to(
        queue_notice,
        sender="Alice Smith <alice@example.org>",
        body="#priority emergency\n#team sysadmins\n#assign jane\n#note\n"
        "Jane, the whole mobile banking is down, please take over.",
    )
    deliver_in(ctx, escalate, "alice@example.org")

    # 3. Jane gets the assignment notice, signed for her.
    assignment = await_mail(relay, "jane.doe@example.org", "Assigned to you")
    assert "the entire mobile online banking system is down" in plain(assignment)
    state = ticket(ctx, number)
    assert (state["priority"], state["team"], state["assignee"]) == (
        "emergency",
        "sysadmins",
        "jane",
    )

    # 4. Jane writes an internal note from her mail client, then resolves.
    note = reply_to(
        assignment,
        sender="Jane Doe <jane.doe@example.org>",
        body="#note\nThe API gateway lost its certificate at 09:02.",
    )
    deliver_in(ctx, note, "jane.doe@example.org")
    resolve = reply_to(
        assignment,
        sender="Jane Doe <jane.doe@example.org>",
        body="#resolve\nWe renewed the certificate of the API gateway; the mobile "
        "banking works again. Sorry for the trouble!",
    )
    deliver_in(ctx, resolve, "jane.doe@example.org")

    # 5. The customer gets the resolution — and never saw the note.
    resolution = await_mail(relay, "carla@customer.example", "Resolved")
    assert "renewed the certificate" in plain(resolution)
    to_customer = b"".join(
        r.content for r in relay.received if "carla@customer.example" in r.rcpt_tos
    )
    assert b"lost its certificate" not in to_customer and b"#resolve" not in to_customer
    assert ticket(ctx, number)["status"] == "resolved"

    # 6. An auto-reply to the resolution does not reopen; the customer's real reply does.
    out_of_office = reply_to(
        resolution,
        sender=customer,
        body="I am on holiday until Monday.",
        subject="Automatic reply: resolved",
        headers={"Auto-Submitted": "auto-replied"},
    )
    deliver_in(ctx, out_of_office, "carla@customer.example")
    time.sleep(0.3)
    assert ticket(ctx, number)["status"] == "resolved"
    thanks = reply_to(resolution, sender=customer, body="thanks, works again")
    deliver_in(ctx, thanks, "carla@customer.example")
    deadline = time.monotonic() + 10
    while ticket(ctx, number)["status"] != "open" and time.monotonic() < deadline:
        time.sleep(0.05)
    state = ticket(ctx, number)
    assert state["status"] == "open"
    await_mail(relay, "jane.doe@example.org", "Reopened")

    # 7. The audit trail shows every step, with actor and time.
    trail = [(e["kind"], e["actor"], e["old"], e["new"]) for e in state["events"]]

    def step(kind: str, actor: str) -> int:
        found = [i for i, (k, a, _, _) in enumerate(trail) if k == kind and a == actor]
        assert found, f"no {kind} by {actor} in {trail}"
        return found[0]

    created = step("created", "customer:carla@customer.example")
    escalation = [step(kind, "agent:alice") for kind in ("priority", "team", "assignee", "note")]
    jane = [
        step("note", "agent:jane"),
        step("resolution", "agent:jane"),
        step("status", "agent:jane"),
    ]
    reopened = step("reopened", "customer:carla@customer.example")
    assert created < min(escalation) and max(escalation) < min(jane) and max(jane) < reopened
    assert ("priority", "agent:alice", "normal", "emergency") in trail
    assert ("status", "agent:jane", "open", "resolved") in trail or (
        "status",
        "agent:jane",
        "new",
        "resolved",
    ) in trail
    assert all(e["at"] for e in state["events"])
    thread = [(x["direction"], x["kind"]) for x in state["messages"]]
    assert ("in", "note") in thread and ("in", "auto_reply") in thread
