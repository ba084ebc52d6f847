"""Agents work from their mail client: replies, notes, commands, routing — and no impersonation."""

from __future__ import annotations

import email
import json
import smtplib
import ssl
import subprocess
import sys
from email import policy
from pathlib import Path
from typing import Any

import pytest

from mailgate import outbox, store
from mailgate.context import Context
from mailgate.intake import explain, ingest
from mailgate.store import models as m
from mailgate.store import views as queries
from tests import queued
from tests.conftest import open_gateway
from tests.relay import Relay, free_port
from tests.support import (
    compose,
    config_data,
    load_config,
    reply_to,
    self_signed_certificate,
    via_our_mta,
    write_config,
)


def detail(ctx: Context, number: int) -> dict[str, Any]:
    return queries.ticket_detail(ctx.config, queries.ticket(number))


def notice_for(address: str, kind: str | None = None) -> bytes:
    """The newest notice queued for ``address`` (what lands in that agent's inbox)."""
    query = m.OutboxItem.select().order_by(m.OutboxItem.id.desc())
    for item in query:
        if address in item.recipients and (kind is None or item.notice == kind):
            return queued.mail(item)
    raise AssertionError(f"no {kind or 'notice'} for {address}")


def sent_to(relay: Relay, address: str) -> list[email.message.Message]:
    return [r.message for r in relay.received if address in r.rcpt_tos]


def events(ctx: Context, number: int) -> list[tuple[str, str, str, str]]:
    return [(e["kind"], e["actor"], e["old"], e["new"]) for e in detail(ctx, number)["events"]]


def customer_ticket(ctx: Context, **kwargs: Any) -> int:
    outcome = ingest(ctx, compose(**kwargs), source="smtp")
    assert outcome.action == "created" and outcome.ticket is not None
    return outcome.ticket


def agent_reply(ctx: Context, notice: bytes, sender: str, body: str, **kwargs: Any) -> Any:
    return ingest(ctx, reply_to(notice, sender=sender, body=body, **kwargs), source="smtp")


def test_a_signed_agent_reply_reaches_the_customer_threaded_and_quote_free(
    smtp_ctx: Context, relay: Relay
) -> None:
    number = customer_ticket(smtp_ctx)
    notice = notice_for("alice@example.org", "assignment")
    outcome = agent_reply(
        smtp_ctx,
        notice,
        "Alice Smith <alice@example.org>",
        "Hello Carla,\n\nwe are restarting the service now.\n\n-- \nAlice, Level 1",
    )
    assert outcome.action == "appended"
    ticket = detail(smtp_ctx, number)
    assert ticket["status"] == "open"
    assert ticket["first_response_at"] is not None
    agent_message = [x for x in ticket["messages"] if x["direction"] == "in"][-1]
    assert (agent_message["kind"], agent_message["verified"]) == ("agent", True)
    outbox.deliver(smtp_ctx.config)
    (relayed,) = [x for x in sent_to(relay, "carla@customer.example") if "Re:" in str(x["Subject"])]
    text = relayed.get_body(("plain",)).get_content()
    assert "we are restarting the service now." in text
    assert "Alice, Level 1" in text  # signatures are kept by default
    assert "> " not in text and "wrote:" not in text  # the quoted notice is not
    (first,) = [x for x in ticket["messages"] if x["direction"] == "in"][:1]
    assert relayed["In-Reply-To"] == first["message_id"]  # one conversation for the customer
    assert relayed["Auto-Submitted"] is None  # a person wrote it
    kinds = [e[0] for e in events(smtp_ctx, number)]
    assert "agent_reply" in kinds and "first_response" in kinds


def test_a_note_stays_internal(smtp_ctx: Context, relay: Relay) -> None:
    number = customer_ticket(smtp_ctx)
    notice = notice_for("alice@example.org", "assignment")
    agent_reply(smtp_ctx, notice, "alice@example.org", "#note\nThe customer called as well.")
    # The notes address works without any command.
    agent_reply(
        smtp_ctx,
        notice,
        "alice@example.org",
        "Second note.",
        to=f"support+note-{number}@example.org",
        cc=_reply_address(notice),
    )
    outbox.deliver(smtp_ctx.config)
    notes = [x for x in detail(smtp_ctx, number)["messages"] if x["kind"] == "note"]
    assert [x["text"] for x in notes] == ["The customer called as well.", "Second note."]
    assert not [x for x in sent_to(relay, "carla@customer.example") if "Re:" in str(x["Subject"])]


def _reply_address(notice: bytes) -> str:
    return str(email.message_from_bytes(notice)["Reply-To"]).split("<")[-1].strip(">")


def test_commands_assign_escalate_and_move_teams(smtp_ctx: Context) -> None:
    number = customer_ticket(smtp_ctx, subject="The entire mobile online banking system is down")
    notice = notice_for("alice@example.org", "assignment")
    agent_reply(
        smtp_ctx,
        notice,
        "alice@example.org",
        "#priority emergency\n#team System Administrators\n#assign jane\n\n"
        "Jane, please have a look, this is big.",
    )
    ticket = detail(smtp_ctx, number)
    assert (ticket["priority"], ticket["team"], ticket["assignee"]) == (
        "emergency",
        "sysadmins",
        "jane",
    )
    assert ("priority", "agent:alice", "normal", "emergency") in events(smtp_ctx, number)
    assert ("team", "agent:alice", "level1", "sysadmins") in events(smtp_ctx, number)
    assert ("assignee", "agent:alice", "", "jane") in events(smtp_ctx, number)
    jane = email.message_from_bytes(notice_for("jane.doe@example.org", "assignment"))
    assert "Assigned to you" in str(jane["Subject"])
    assert f"support+{number}-" in str(jane["Reply-To"])  # signed for Jane


def test_commands_not_understood_do_nothing_and_answer_the_agent(
    smtp_ctx: Context, relay: Relay
) -> None:
    number = customer_ticket(smtp_ctx)
    notice = notice_for("alice@example.org", "assignment")
    agent_reply(
        smtp_ctx,
        notice,
        "alice@example.org",
        "#asign jane\n#priority urgent\n#team nowhere\n\nDear customer, done!",
    )
    ticket = detail(smtp_ctx, number)
    assert (ticket["priority"], ticket["assignee"], ticket["status"]) == ("normal", None, "new")
    assert [x["kind"] for x in ticket["messages"] if x["direction"] == "in"][-1] == "note"
    outbox.deliver(smtp_ctx.config)
    (answer,) = sent_to(relay, "alice@example.org")[-1:]
    assert "Not understood" in str(answer["Subject"])
    body = answer.get_body(("plain",)).get_content()
    assert "'#asign jane'" in body and "urgent" in body and "nowhere" in body
    assert not [x for x in sent_to(relay, "carla@customer.example") if "done!" in x.as_string()]


def test_resolve_sends_the_resolution_text_to_the_customer(smtp_ctx: Context, relay: Relay) -> None:
    number = customer_ticket(smtp_ctx, cc="boss@customer.example")
    notice = notice_for("alice@example.org", "assignment")
    agent_reply(
        smtp_ctx,
        notice,
        "alice@example.org",
        "#resolve\nWe replaced the failed load balancer; everything works again.",
    )
    assert detail(smtp_ctx, number)["status"] == "resolved"
    outbox.deliver(smtp_ctx.config)
    (resolution,) = [
        x for x in sent_to(relay, "carla@customer.example") if "Resolved" in str(x["Subject"])
    ]
    body = resolution.get_body(("plain",)).get_content()
    assert "replaced the failed load balancer" in body and "#resolve" not in body
    assert "boss@customer.example" in str(resolution["Cc"])


def test_pending_waits_for_the_customer(smtp_ctx: Context) -> None:
    original = compose()
    number = ingest(smtp_ctx, original, source="smtp").ticket
    assert number is not None
    agent_reply(
        smtp_ctx,
        notice_for("alice@example.org", "assignment"),
        "alice@example.org",
        "#status pending\nCould you send us a screenshot?",
    )
    assert detail(smtp_ctx, number)["status"] == "pending"
    ingest(
        smtp_ctx,
        reply_to(
            notice_for("carla@customer.example", "agent_reply"),
            sender="carla@customer.example",
            body="Here it is.",
        ),
        source="smtp",
    )
    assert detail(smtp_ctx, number)["status"] == "open"


def direct_mail(number: int, body: str) -> bytes:
    """Alice answers Carla herself, support@ in Cc, DKIM-verified by our MTA."""
    return via_our_mta(
        compose(
            sender="Alice Smith <alice@example.org>",
            to="carla@customer.example",
            cc="support@example.org",
            subject=f"Re: [EB#{number}] The mobile online banking is down",
            body=body,
        ),
        "mx.example.org; dkim=pass header.d=example.org; spf=pass smtp.mailfrom=alice@example.org",
    )


@pytest.mark.config({"security": {"trusted_authserv_ids": ["mx.example.org"]}})
def test_an_agent_writing_to_the_customer_directly_is_recorded_not_resent(
    smtp_ctx: Context, relay: Relay
) -> None:
    number = customer_ticket(smtp_ctx)
    raw = direct_mail(number, "Carla, it is fixed.")
    assert ingest(smtp_ctx, raw, source="smtp").action == "appended"
    outbox.deliver(smtp_ctx.config)
    assert not [x for x in sent_to(relay, "carla@customer.example") if "fixed" in x.as_string()]
    ticket = detail(smtp_ctx, number)
    assert "agent_reply_direct" in [e["kind"] for e in ticket["events"]]
    assert ticket["first_response_at"] is not None


@pytest.mark.config({"security": {"trusted_authserv_ids": ["mx.example.org"]}})
def test_resolving_in_a_direct_mail_resolves_without_sending_the_text_again(
    smtp_ctx: Context, relay: Relay
) -> None:
    number = customer_ticket(smtp_ctx)
    raw = direct_mail(number, "#resolve\nCarla, it is fixed.")
    trace = explain(smtp_ctx, raw)["trace"]
    assert "written to the customer directly: would be recorded, not sent again" in trace
    assert "would resolve; the customer gets the resolution notice without the text" in trace
    assert ingest(smtp_ctx, raw, source="smtp").action == "appended"
    assert detail(smtp_ctx, number)["status"] == "resolved"
    outbox.deliver(smtp_ctx.config)
    to_carla = sent_to(relay, "carla@customer.example")
    (resolution,) = [x for x in to_carla if "Resolved" in str(x["Subject"])]
    assert not [x for x in to_carla if "it is fixed" in x.as_string()]
    assert "#resolve" not in resolution.as_string()


def test_a_command_that_fails_when_applied_is_reported_not_quarantined(
    smtp_ctx: Context,
) -> None:
    from mailgate import agents, reactions
    from mailgate.admin import tickets as actions
    from mailgate.events import Journal
    from mailgate.mail.parse import parse
    from mailgate.store import messages
    from mailgate.store import tickets as ticket_rows

    first = customer_ticket(smtp_ctx)
    second = customer_ticket(smtp_ctx, sender="b@customer.example", subject="b")
    notice = notice_for("alice@example.org", "assignment")  # for `second`
    raw = reply_to(notice, sender="alice@example.org", body=f"#merge {first}\n#priority high\nDup.")
    mail = parse(raw, smtp_ctx.blobs)
    ticket = queries.ticket(second)
    identity = agents.identify(smtp_ctx, mail, ticket, [a.email for a in mail.recipients])
    assert identity is not None and identity.verified
    request = agents.read_mail(smtp_ctx, ticket, identity, mail, ())
    assert request.problems == ()
    # Between reading the mail and applying it, an admin merged the target into this ticket.
    actions.merge(smtp_ctx, first, second, actor="admin:cli")
    trace: list[str] = []
    with store.write_transaction():
        changes = Journal()
        locked = ticket_rows.lock(ticket.id)
        assert mail.sender is not None
        message = messages.add(
            locked.id,
            direction="in",
            kind="agent",
            message_id="<race@example.org>",
            from_addr=mail.sender.email,
            from_name=mail.sender.name,
            subject="Re",
            text="Dup.",
            full_text="Dup.",
            verified=True,
            trace=[],
        )
        locked = agents.handle_mail(smtp_ctx, locked, identity, request, message, changes, trace)
        assert changes.kinds()[-2:] == ["commands_rejected", "command_error"]
        assert locked.priority == "normal" and not locked.merged_into_id
        reactions.finish(smtp_ctx, changes)
    after = detail(smtp_ctx, second)
    assert after["priority"] == "normal" and after["status"] != "closed"
    assert [x["kind"] for x in after["messages"] if x["message_id"] == "<race@example.org>"] == [
        "note"
    ]
    assert "commands not understood (1): nothing applied or sent" in trace
    error = email.message_from_bytes(
        notice_for("alice@example.org", "command_error"), policy=policy.default
    )
    assert "into itself" in error.get_body(("plain",)).get_content()


@pytest.mark.parametrize(
    "authentication_results",
    [
        None,
        "evil.example; dkim=pass header.d=example.org",  # a server we do not trust
        "mx.example.org; dkim=fail header.d=example.org",
        "mx.example.org; dkim=pass header.d=evil.example",  # passes, but for another domain
    ],
)
@pytest.mark.config({"security": {"trusted_authserv_ids": ["mx.example.org"]}})
def test_a_forged_from_with_a_valid_tag_cannot_act_as_an_agent(
    smtp_ctx: Context, relay: Relay, authentication_results: str | None
) -> None:
    number = customer_ticket(smtp_ctx)
    forged = compose(
        sender="Alice Smith <alice@example.org>",
        subject=f"Re: [EB#{number}] The mobile online banking is down",
        body="#status resolved\n#assign none\nPlease pay the fee to IBAN XY00 now.",
    )
    if authentication_results:  # as our MTA would have added them: still not enough
        forged = via_our_mta(forged, authentication_results)
    assert ingest(smtp_ctx, forged, source="smtp").action == "appended"
    ticket = detail(smtp_ctx, number)
    assert ticket["status"] == "new" and ticket["priority"] == "normal"
    last = [x for x in ticket["messages"] if x["direction"] == "in"][-1]
    assert (last["kind"], last["verified"]) == ("external", False)
    assert any("unverified" in line for line in last["trace"])
    outbox.deliver(smtp_ctx.config)
    assert not [x for x in sent_to(relay, "carla@customer.example") if "IBAN" in x.as_string()]
    # The team hears of it, marked, so a human can look.
    (warning,) = [x for x in sent_to(relay, "alice@example.org") if "IBAN" in x.as_string()]
    assert "New reply from Alice Smith" in str(warning["Subject"])
    # customer_reply is text and HTML now (issue 11): both parts say it.
    for part in ("plain", "html"):
        body = warning.get_body((part,))
        assert body is not None and "UNVERIFIED" in body.get_payload(decode=True).decode()


def test_a_token_for_another_ticket_or_agent_proves_nothing(smtp_ctx: Context) -> None:
    first = customer_ticket(smtp_ctx)
    second = customer_ticket(smtp_ctx, sender="other@customer.example", subject="Other issue")
    alice_first = _reply_address(notice_for("alice@example.org", "assignment"))  # second ticket
    bob_token = _reply_address(notice_for("bob@example.org", "assignment"))
    # Alice's token of ticket `second`, reused on ticket `first`; Bob's token used by "Alice".
    wrong_ticket = compose(
        sender="alice@example.org",
        to=alice_first.replace(str(second), str(first)),
        subject=f"Re: [EB#{first}] x",
        body="#priority high",
    )
    wrong_agent = compose(
        sender="alice@example.org",
        to=bob_token,
        subject=f"Re: [EB#{second}] x",
        body="#priority high",
    )
    ingest(smtp_ctx, wrong_ticket, source="smtp")
    ingest(smtp_ctx, wrong_agent, source="smtp")
    assert detail(smtp_ctx, first)["priority"] == "normal"
    assert detail(smtp_ctx, second)["priority"] == "normal"


@pytest.mark.config({"security": {"trusted_authserv_ids": ["mx.example.org"]}})
def test_dkim_pass_at_our_server_is_enough(smtp_ctx: Context) -> None:
    number = customer_ticket(smtp_ctx)
    raw = via_our_mta(
        compose(sender="alice@example.org", subject=f"Re: [EB#{number}] x", body="#priority high\nOn it."),
        "mx.example.org (Postfix); dkim=pass (2048-bit key) header.d=example.org"
        " header.b=abc; dmarc=pass header.from=example.org",
    )
    ingest(smtp_ctx, raw, source="smtp")
    assert detail(smtp_ctx, number)["priority"] == "high"


def test_automatic_answers_to_a_broken_agent_client_are_rate_limited(smtp_ctx: Context) -> None:
    number = customer_ticket(smtp_ctx)
    notice = notice_for("alice@example.org", "assignment")
    for i in range(15):
        agent_reply(smtp_ctx, notice, "alice@example.org", f"#bogus {i}")
    errors = [i for i in m.OutboxItem.select() if i.notice == "command_error"]
    assert 1 <= len(errors) <= 10
    held = [e for e in detail(smtp_ctx, number)["events"] if e["kind"] == "notice_suppressed"]
    assert held and "circuit breaker" in held[0]["detail"]


ROUTES = {
    "route": [
        {
            "name": "outages from VIPs",
            "sender": ["vip.example"],
            "subject": ["outage", "down"],
            "priority": "emergency",
            "tags": ["vip"],
        },
        {"name": "banking address", "to": ["banking@example.org"], "team": "online-banking"},
        {
            "name": "invoices",
            "subject": ["invoice"],
            "team": "level1",
            "category": "billing",
            "assignee": "bob",
        },
    ],
}


@pytest.mark.config(ROUTES)
def test_routing_rules_first_match_wins(smtp_ctx: Context) -> None:
    vip = customer_ticket(smtp_ctx, sender="ceo@vip.example", subject="Total outage in Berlin")
    banking = customer_ticket(smtp_ctx, to="banking@example.org", subject="Question")
    invoice = customer_ticket(smtp_ctx, subject="Invoice 2026-11 wrong")
    plain = customer_ticket(smtp_ctx, subject="Downloads are slow")  # "down" is not a word here
    assert detail(smtp_ctx, vip)["priority"] == "emergency"
    assert detail(smtp_ctx, banking)["team"] == "online-banking"
    assert (detail(smtp_ctx, invoice)["assignee"], detail(smtp_ctx, invoice)["team"]) == (
        "bob",
        "level1",
    )
    assert detail(smtp_ctx, plain)["priority"] == "normal"
    vip_ticket = m.Ticket.get(m.Ticket.number == vip)
    assert vip_ticket.tags == ["vip"]
    trace = next(x for x in detail(smtp_ctx, vip)["messages"] if x["direction"] == "in")["trace"]
    assert any("route 'outages from VIPs'" in line for line in trace)


def test_round_robin_and_least_open_assignment(smtp_ctx: Context) -> None:
    # Online Banking: round robin over bob, carol.
    assignees = [
        detail(smtp_ctx, customer_ticket(smtp_ctx, to="banking@example.org", subject=f"q{i}"))[
            "assignee"
        ]
        for i in range(4)
    ]
    assert assignees == ["bob", "carol", "bob", "carol"]
    # System Administrators: least open tickets between jane and carol (carol has 2 already).
    number = customer_ticket(smtp_ctx, subject="disk full")
    alice = notice_for("alice@example.org", "assignment")
    agent_reply(smtp_ctx, alice, "alice@example.org", "#team sysadmins\nFor the admins.")
    assert detail(smtp_ctx, number)["assignee"] == "jane"


def test_cli_reply_note_and_merge_use_the_same_core(smtp_ctx: Context, relay: Relay) -> None:
    first = customer_ticket(smtp_ctx)
    second = customer_ticket(smtp_ctx, subject="Same problem again")
    run = [sys.executable, "-m", "mailgate", "--config", str(smtp_ctx.config.path), "tickets"]
    done = subprocess.run(
        [*run, "reply", str(first), "--as", "alice", "--text", "We are on it."],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    subprocess.run(
        [*run, "note", str(first), "--text", "Called the customer."],
        check=True,
        capture_output=True,
        timeout=60,
    )
    merged = subprocess.run(
        [*run, "merge", str(second), str(first)], capture_output=True, text=True, timeout=60
    )
    assert merged.returncode == 0, merged.stderr
    ticket = detail(smtp_ctx, first)
    kinds = [x["kind"] for x in ticket["messages"] if x["direction"] == "in"]
    assert kinds.count("agent") == 1 and kinds.count("note") == 1
    assert ("agent_reply", "agent:alice") in [(e["kind"], e["actor"]) for e in ticket["events"]]
    assert {"kind": "merged_from", "ticket": second} in ticket["links"]
    outbox.deliver(smtp_ctx.config)
    assert [x for x in sent_to(relay, "carla@customer.example") if "We are on it." in x.as_string()]
    bad = subprocess.run(
        [*run, "reply", str(first), "--as", "mallory", "--text", "x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and "no agent 'mallory'" in bad.stderr


def test_agents_and_teams_lists(smtp_ctx: Context) -> None:
    customer_ticket(smtp_ctx, to="banking@example.org")
    run = [sys.executable, "-m", "mailgate", "--config", str(smtp_ctx.config.path)]

    def listing(what: str) -> list[dict[str, Any]]:
        done = subprocess.run(
            [*run, what, "list", "--json"], capture_output=True, text=True, timeout=60, check=True
        )
        return list(json.loads(done.stdout))

    agents = listing("agents")
    assert {a["key"]: a["open_tickets"] for a in agents}["bob"] == 1
    teams = listing("teams")
    assert {t["key"]: t["members"] for t in teams}["sysadmins"] == ["jane", "carol"]


def test_smtp_auth_over_tls_makes_a_submission_authentic(
    tmp_path: Path, database_url: str, serve_in_thread: Any
) -> None:
    cert, key = self_signed_certificate(tmp_path)
    (tmp_path / "alice.pw").write_text("correct horse\n")
    data = config_data(
        tmp_path,
        database_url,
        {"listener": {"port": free_port(), "tls_cert": str(cert), "tls_key": str(key)}},
    )
    data["agent"][0]["smtp_password_file"] = str(tmp_path / "alice.pw")
    ctx = open_gateway(load_config(write_config(tmp_path / "mailgate.toml", data)))
    serve_in_thread(ctx, imap=False)
    number = customer_ticket(ctx)
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    mail = compose(
        sender="alice@example.org", subject=f"Re: [EB#{number}] x", body="#priority high\nLooking."
    )
    with smtplib.SMTP("127.0.0.1", ctx.config.listener.port, timeout=10) as client:
        client.starttls(context=context)
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("alice", "wrong")
    with smtplib.SMTP("127.0.0.1", ctx.config.listener.port, timeout=10) as client:
        client.starttls(context=context)
        client.login("alice", "correct horse")
        client.sendmail("alice@example.org", ["support@example.org"], mail)
    assert detail(ctx, number)["priority"] == "high"
    # The same mail without AUTH is just an unverified external message.
    with smtplib.SMTP("127.0.0.1", ctx.config.listener.port, timeout=10) as client:
        client.sendmail(
            "alice@example.org",
            ["support@example.org"],
            mail.replace(b"#priority high", b"#priority low").replace(
                b"Message-ID: <", b"Message-ID: <x"
            ),
        )
    assert detail(ctx, number)["priority"] == "high"


def test_explain_shows_why_an_agent_mail_counts(smtp_ctx: Context) -> None:
    from mailgate.intake import explain

    number = customer_ticket(smtp_ctx)
    notice = notice_for("alice@example.org", "assignment")
    result = explain(smtp_ctx, reply_to(notice, sender="alice@example.org", body="#assign me\nOk."))
    assert any("authentic (signed reply address" in line for line in result["trace"])
    assert detail(smtp_ctx, number)["assignee"] is None  # a dry run


FORGED_RESULTS = "mx.example.org; dkim=pass header.d=example.org"


@pytest.mark.parametrize("protocol", ["smtp", "lmtp"])
def test_authentication_results_count_only_behind_our_mta(
    tmp_path: Path, database_url: str, serve_in_thread: Any, protocol: str
) -> None:
    """Straight from the Internet (SMTP) the header is the sender's word; behind an MTA
    (LMTP) it is the MTA's, which removes forged ones."""
    listener: dict[str, Any] = {"port": free_port(), "protocol": protocol}
    if protocol == "lmtp":
        listener["socket"] = str(tmp_path / "lmtp.sock")
    data = config_data(
        tmp_path,
        database_url,
        {"listener": listener, "security": {"trusted_authserv_ids": ["mx.example.org"]}},
    )
    ctx = open_gateway(load_config(write_config(tmp_path / "mailgate.toml", data)))
    serve_in_thread(ctx, imap=False)
    number = customer_ticket(ctx)
    mail = via_our_mta(
        compose(
            sender="bob@example.org",
            subject=f"Re: [EB#{number}] x",
            body="#priority low\nPlease confirm your login at https://evil.example",
        ),
        FORGED_RESULTS,
    )
    if protocol == "smtp":
        with smtplib.SMTP("127.0.0.1", ctx.config.listener.port, timeout=10) as client:
            client.sendmail("bob@example.org", ["support@example.org"], mail)
    else:
        with smtplib.LMTP(listener["socket"]) as client:
            client.sendmail("bob@example.org", ["support@example.org"], mail)
    expected = "normal" if protocol == "smtp" else "low"
    assert detail(ctx, number)["priority"] == expected


def test_merging_into_a_merged_ticket_follows_the_chain(smtp_ctx: Context) -> None:
    first = customer_ticket(smtp_ctx)
    second = customer_ticket(smtp_ctx, sender="b@customer.example", subject="b")
    third = customer_ticket(smtp_ctx, sender="c@customer.example", subject="c")
    run = [sys.executable, "-m", "mailgate", "--config", str(smtp_ctx.config.path), "tickets"]
    subprocess.run([*run, "merge", str(second), str(third)], check=True, capture_output=True)
    notice = notice_for("alice@example.org", "assignment")  # the newest: ticket `third`
    notice = next(
        queued.mail(i)
        for i in m.OutboxItem.select().order_by(m.OutboxItem.id)
        if i.notice == "assignment"
        and "alice@example.org" in i.recipients
        and f"#{first}]" in queued.mail(i).decode(errors="replace")
    )
    agent_reply(smtp_ctx, notice, "alice@example.org", f"#merge {second}\n#note\nSame outage.")
    assert {"kind": "merged_into", "ticket": third} in detail(smtp_ctx, first)["links"]


def test_an_emergency_reaches_the_teams_escalation_contact(smtp_ctx: Context) -> None:
    number = customer_ticket(smtp_ctx)
    agent_reply(
        smtp_ctx,
        notice_for("alice@example.org", "assignment"),
        "alice@example.org",
        "#priority emergency\n#note\nThis is big.",
    )
    escalation = email.message_from_bytes(notice_for("carol@example.org", "escalation"))
    assert f"[EB#{number}] EMERGENCY" in str(escalation["Subject"])
    assert f"support+{number}-" in str(escalation["Reply-To"])  # carol can act on it


@pytest.mark.config(ROUTES)
def test_a_ticket_routed_to_emergency_reaches_the_escalation_contact(smtp_ctx: Context) -> None:
    number = customer_ticket(smtp_ctx, sender="ceo@vip.example", subject="Total outage")
    escalation = email.message_from_bytes(notice_for("carol@example.org", "escalation"))
    assert f"[EB#{number}] EMERGENCY" in str(escalation["Subject"])


def test_the_team_sees_who_wrote_a_reply_not_always_the_requester(smtp_ctx: Context) -> None:
    number = customer_ticket(smtp_ctx, cc="Bob Boss <boss@customer.example>")
    acknowledgement = notice_for("carla@customer.example", "acknowledgement")
    ingest(
        smtp_ctx,
        reply_to(acknowledgement, sender="Bob Boss <boss@customer.example>", body="Any news?"),
        source="smtp",
    )
    notice = email.message_from_bytes(
        notice_for("alice@example.org", "customer_reply"), policy=policy.default
    )
    assert str(notice["Subject"]).startswith(f"[EB#{number}] New reply from Bob Boss:")
    body = notice.get_body(("plain",)).get_content()
    assert "Any news?" in body and "UNVERIFIED" not in body


def notices(address: str, kind: str, number: int) -> int:
    return sum(
        1
        for i in m.OutboxItem.select().where(m.OutboxItem.notice == kind)
        if address in i.recipients and f"[EB#{number}]" in queued.mail(i).decode(errors="replace")
    )


def test_a_ticket_handed_to_a_queue_is_announced_to_that_team(smtp_ctx: Context) -> None:
    number = customer_ticket(smtp_ctx, to="banking@example.org")
    owner = detail(smtp_ctx, number)["assignee"]  # Online Banking assigns round robin
    address = {"bob": "bob@example.org", "carol": "carol@example.org"}[owner]
    agent_reply(
        smtp_ctx,
        notice_for(address, "assignment"),
        address,
        "#team level1\n#assign none\n#note\nNot a banking problem.",
    )
    after = detail(smtp_ctx, number)
    assert (after["team"], after["assignee"]) == ("level1", None)
    # Level 1 has no automatic assignment: its members hear that the ticket waits for them,
    # except whoever moved it.
    assert notices("alice@example.org", "assignment", number) == 1
    if owner == "bob":
        assert notices("bob@example.org", "assignment", number) == 1  # only the first one


def test_handing_back_into_an_auto_assigning_team_assigns_again(smtp_ctx: Context) -> None:
    number = customer_ticket(smtp_ctx)
    notice = notice_for("alice@example.org", "assignment")
    agent_reply(smtp_ctx, notice, "alice@example.org", "#assign me\n#note\nMine.")
    assert detail(smtp_ctx, number)["assignee"] == "alice"
    agent_reply(
        smtp_ctx, notice, "alice@example.org", "#team online-banking\n#assign none\n#note\nYours."
    )
    assert detail(smtp_ctx, number)["assignee"] in ("bob", "carol")


def test_an_agent_giving_a_ticket_back_tells_the_rest_of_the_team(smtp_ctx: Context) -> None:
    number = customer_ticket(smtp_ctx)
    notice = notice_for("alice@example.org", "assignment")
    agent_reply(smtp_ctx, notice, "alice@example.org", "#assign me\n#note\nMine.")
    before = notices("bob@example.org", "assignment", number)
    agent_reply(smtp_ctx, notice, "alice@example.org", "#assign none\n#note\nOn leave.")
    assert detail(smtp_ctx, number)["assignee"] is None
    assert notices("bob@example.org", "assignment", number) == before + 1


def test_explain_shows_what_an_agent_mail_would_do(smtp_ctx: Context) -> None:
    number = customer_ticket(smtp_ctx)
    notice = notice_for("alice@example.org", "assignment")
    good = reply_to(notice, sender="alice@example.org", body="#priority high\n#resolve\nFixed it.")
    trace = explain(smtp_ctx, good)["trace"]
    assert "commands: #priority high, #resolve" in trace
    assert "would resolve; the text goes to the customer as the resolution" in trace
    bad = reply_to(notice, sender="alice@example.org", body="#asign jane\nDone.")
    trace = explain(smtp_ctx, bad)["trace"]
    assert any(line.startswith("command not understood: '#asign jane'") for line in trace)
    assert "nothing would be applied or sent; the agent would get the problems" in trace
    # Explaining changed nothing.
    assert detail(smtp_ctx, number)["priority"] == "normal"
    assert detail(smtp_ctx, number)["status"] == "new"
