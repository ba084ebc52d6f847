"""An agent's answer is never silently lost (issue 17), through the pipe and the listener.

Agents answer notices with s-nail or BSD mailx, which quote with a TAB or spaces
instead of ``>`` — with an attribution line, without one, or (``~m``) with the
notice's headers and its undecoded quoted-printable body. The replies are built by
``tests/mailx.py``, which writes byte for byte what the real clients wrote
(``tests/data/mailx``). Whatever quoting is not recognised, an answer that comes out
empty (no text, no command) is told to the agent and kept on the ticket.
"""

from __future__ import annotations

import email
import email.utils
import json
import smtplib
import subprocess
import sys
from email import policy
from pathlib import Path
from typing import Any

import pytest

from mailgate import outbox
from mailgate.context import Context
from mailgate.store import models as m
from tests import mailx, queued
from tests.conftest import open_gateway
from tests.relay import free_port
from tests.support import compose, config_data, load_config, write_config

CUSTOMER = "carla@customer.example"


def mailgate(config: Path, *args: str, stdin: bytes | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(config), *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        cwd=config.parent,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.decode()


def pipe(config: Path, raw: bytes, *, sender: str, recipient: str) -> str:
    """The mail as Postfix's pipe hands it over (master.cf of the README)."""
    return mailgate(
        config, "ingest", f"--sender={sender}", f"--recipient={recipient}", "-", stdin=raw
    )


def notice(kind: str, to: str) -> bytes:
    items = [
        i
        for i in m.OutboxItem.select().where(m.OutboxItem.notice == kind).order_by(m.OutboxItem.id)
        if to in i.recipients
    ]
    assert items, f"no {kind} notice for {to}"
    return queued.mail(items[-1])


def text_of(raw: bytes) -> str:
    part = email.message_from_bytes(raw, policy=policy.default).get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def reply_address(raw: bytes) -> str:
    return email.utils.parseaddr(str(email.message_from_bytes(raw)["Reply-To"]))[1]


def show(config: Path, number: int) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(mailgate(config, "tickets", "show", str(number), "--json"))
    return result


@pytest.fixture
def gateway(config_path: Path, ctx: Context) -> tuple[Path, int, bytes]:
    """A ticket of Carla's, opened through the pipe, and alice's assignment notice."""
    out = pipe(config_path, compose(), sender=CUSTOMER, recipient="support@example.org")
    assert out.startswith("created [EB#"), out
    number = int(out.split("#", 1)[1].split("]", 1)[0])
    # Alice answers the notice she got: it is sent (composed, its text in the thread).
    assert outbox.deliver(ctx.config).sent >= 2
    return config_path, number, notice("assignment", "alice@example.org")


def test_an_answer_below_a_tab_indented_notice_without_attribution_reaches_the_customer(
    gateway: tuple[Path, int, bytes],
) -> None:
    config, number, assignment = gateway
    answer = "#priority high\nWe restarted the gateway, please try again.\n\nAlice"
    body = mailx.s_nail_body(assignment, answer, heading=False)  # quote-inject-head empty
    out = pipe(
        config,
        mailx.reply(assignment, body),
        sender="alice@example.org",
        recipient=reply_address(assignment),
    )
    assert out.startswith(f"appended [EB#{number}]"), out
    relayed = text_of(notice("agent_reply", CUSTOMER))
    assert "We restarted the gateway, please try again." in relayed
    assert "waits in the Level 1 queue" not in relayed and "#priority" not in relayed
    ticket = show(config, number)
    assert ticket["priority"] == "high"  # the command stood at the top once the quote went
    assert [x["kind"] for x in ticket["messages"] if x["direction"] == "in"][-1] == "agent"


def test_an_answer_below_a_bsd_mailx_tilde_m_quote_reaches_the_customer(
    gateway: tuple[Path, int, bytes],
) -> None:
    config, _number, assignment = gateway
    body = mailx.bsd_mailx_tilde_m_body(assignment, "Fixed, the card is unblocked.\n\nAlice")
    # bsd-mailx leaves From, Date and Message-ID to the MTA: Postfix's cleanup adds them.
    raw = mailx.reply(assignment, body)
    pipe(config, raw, sender="alice@example.org", recipient=reply_address(assignment))
    relayed = text_of(notice("agent_reply", CUSTOMER))
    assert "Fixed, the card is unblocked." in relayed
    assert "Content-Transfer-Encoding" not in relayed and "waits in the" not in relayed


def test_an_agent_answer_that_comes_out_empty_is_told_to_the_agent_and_kept_on_the_ticket(
    gateway: tuple[Path, int, bytes],
) -> None:
    config, number, assignment = gateway
    # Sent before anything was typed below the quote: only the quoted notice.
    body = mailx.s_nail_body(assignment, "")
    pipe(
        config,
        mailx.reply(assignment, body),
        sender="alice@example.org",
        recipient=reply_address(assignment),
    )
    error = text_of(notice("command_error", "alice@example.org"))
    assert "no answer and no command found" in error
    assert "> Example Bank Helpdesk <support@example.org> wrote:" in error  # what arrived
    assert not [i for i in m.OutboxItem.select() if i.notice == "agent_reply"]
    ticket = show(config, number)
    kept = [x for x in ticket["messages"] if x["direction"] == "in"][-1]
    assert kept["kind"] == "note" and "waits in the Level 1 queue" in kept["text"]
    assert "command_error" in [e["kind"] for e in ticket["events"]]


def test_an_s_nail_answer_through_the_listener_reaches_the_customer(
    tmp_path: Path, database_url: str, serve_in_thread: Any
) -> None:
    data = config_data(tmp_path, database_url, {"listener": {"port": free_port()}})
    ctx = open_gateway(load_config(write_config(tmp_path / "mailgate.toml", data)))
    serve_in_thread(ctx, imap=False)
    host, port = ctx.config.listener.host, ctx.config.listener.port
    with smtplib.SMTP(host, port, timeout=10) as client:
        client.sendmail(CUSTOMER, ["support@example.org"], compose())
    assignment = notice("assignment", "alice@example.org")
    body = mailx.s_nail_body(assignment, "Your limit is raised.\n\nAlice", indent="    ")
    with smtplib.SMTP(host, port, timeout=10) as client:
        client.sendmail(
            "alice@example.org", [reply_address(assignment)], mailx.reply(assignment, body)
        )
    relayed = text_of(notice("agent_reply", CUSTOMER))
    assert "Your limit is raised." in relayed and "wrote:" not in relayed
    assert "waits in the Level 1 queue" not in relayed
